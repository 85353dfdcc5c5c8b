"""Figures of the HTML report as inline SVG: matplotlib figures written by its SVG backend, then made fit to sit
inside one page (private to :mod:`mobileone_bench.analysis.report`).

What the page needs that a saved ``.svg`` file does not:

* no XML prolog, DOCTYPE or RDF metadata (the metadata names ``http://`` vocabularies: the page holds no URL);
* ids unique in the page (each figure's ids get its own prefix, references to them too);
* a ``<title>`` per point of the scatter panels (a browser shows it on hover): the points of the artists whose gid
  is given, in the order they were drawn, each wrapped in a ``<g>`` with its title;
* the size from the page's CSS (``viewBox`` kept, ``width`` / ``height`` removed).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping, Sequence

__all__ = ["to_svg", "samples_figure"]

_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"
_HREF = f"{{{_XLINK}}}href"
_URL = re.compile(r"url\(#([^)]+)\)")


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def to_svg(fig: Any, prefix: str, titles: Mapping[str, Sequence[str]] | None = None,
           label: str | None = None) -> str:
    """The figure as an ``<svg>`` element's text for an HTML page.

    Args:
        fig: A matplotlib Figure (drawn on an Agg canvas, as :func:`mobileone_bench.analysis.plots.draw` makes).
        prefix: Prepended to every id of the figure (unique in the page).
        titles: ``{gid: [title of each point, in drawing order]}``; a gid whose marker count differs from its titles
            gets one title for the whole group (every title, joined) instead.
        label: The figure's accessible name (``aria-label``) and top-level ``<title>``.
    """
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", _XLINK)
    root = ET.fromstring(buf.getvalue())
    for meta in [c for c in root if _tag(c) == "metadata"]:
        root.remove(meta)
    _prefix_ids(root, prefix)
    parents = {child: parent for parent in root.iter() for child in parent}
    for gid, texts in (titles or {}).items():
        group = next((e for e in root.iter() if e.get("id") == f"{prefix}{gid}"), None)
        if group is not None:
            _title_points(group, list(texts), parents)
    for attr in ("width", "height"):
        root.attrib.pop(attr, None)
    root.set("class", "figure-svg")
    root.set("role", "img")
    if label:
        root.set("aria-label", label)
        title = ET.Element(f"{{{_SVG}}}title")
        title.text = label
        root.insert(0, title)
    return ET.tostring(root, encoding="unicode")


def _prefix_ids(root: ET.Element, prefix: str) -> None:
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    for element in root.iter():
        for key, value in list(element.attrib.items()):
            if key == "id":
                element.set(key, prefix + value)
            elif key == _HREF and value.startswith("#") and value[1:] in ids:
                element.set(key, "#" + prefix + value[1:])
            elif "url(#" in value:
                element.set(key, _URL.sub(lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) in ids
                                          else m.group(0), value))


def _title_points(group: ET.Element, texts: list[str], parents: dict[ET.Element, ET.Element]) -> None:
    in_defs = {e for d in group.iter() if _tag(d) == "defs" for e in d.iter()}
    markers = [e for e in group.iter() if _tag(e) in ("use", "path") and e not in in_defs]
    if len(markers) != len(texts):
        title = ET.Element(f"{{{_SVG}}}title")
        title.text = "; ".join(texts)
        group.insert(0, title)
        return
    for marker, text in zip(markers, texts):
        parent = parents[marker]
        wrapper = ET.Element(f"{{{_SVG}}}g", {"class": "point"})
        title = ET.SubElement(wrapper, f"{{{_SVG}}}title")
        title.text = text
        index = list(parent).index(marker)
        parent.remove(marker)
        wrapper.append(marker)
        parent.insert(index, wrapper)


def samples_figure(samples: Sequence[float], *, statistic: float | None, report: str | None,
                   low: float | None, high: float | None, rounds: Sequence[float | None] = (),
                   used: Sequence[bool] = (), bins: int = 30) -> Any:
    """A small figure of one latency record: the histogram of its samples (``bins`` bins: what the page keeps of
    them), the reported statistic and its interval; and, when the record was measured in rounds, each round's
    value (open: a contended round that was replaced and does not count).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with_rounds = bool(rounds)
    fig = Figure(figsize=(6.4 if with_rounds else 4.6, 2.1), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, width_ratios=(3, 1.3)) if with_rounds else [fig.add_subplot()]
    ax = axes[0]
    values = [float(v) for v in samples]
    if values:
        ax.hist(values, bins=min(bins, max(5, len(set(values)))), color="#8fb3d9", edgecolor="#4a7bb0",
                linewidth=0.4)
    if statistic is not None:
        ax.axvline(statistic, color="#c0392b", lw=1.2, label=f"{report or 'statistic'} {statistic:.3g} ms")
    if low is not None and high is not None:
        ax.axvspan(low, high, color="#c0392b", alpha=0.15, lw=0, label="95% interval")
    ax.set_xlabel("latency (ms)", fontsize=7)
    ax.set_ylabel("runs", fontsize=7)
    ax.tick_params(labelsize=6)
    if statistic is not None:
        ax.legend(fontsize=6, loc="upper right", frameon=False)
    ax.set_title(f"{len(values)} samples", fontsize=7)
    if with_rounds:
        rx = axes[1]
        for i, v in enumerate(rounds):
            if v is None:
                continue
            counts = bool(used[i]) if i < len(used) else True
            rx.plot([i + 1], [v], marker="o", ms=4, ls="", color="#2c3e50" if counts else "none",
                    markeredgecolor="#2c3e50")
        rx.set_xlabel("round", fontsize=7)
        rx.set_title("per round (open: replaced)", fontsize=7)
        rx.tick_params(labelsize=6)
        rx.set_xlim(0.5, len(rounds) + 0.5)
        rx.set_xticks(range(1, len(rounds) + 1))
    return fig
