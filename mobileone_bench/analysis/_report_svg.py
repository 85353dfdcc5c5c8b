"""Figures of the HTML report as inline SVG: matplotlib figures written by its SVG backend, then made fit to sit
inside one page (private to :mod:`mobileone_bench.analysis.report`).

What the page needs that a saved ``.svg`` file does not:

* no XML prolog, DOCTYPE or RDF metadata (the metadata names ``http://`` vocabularies: the page holds no URL);
* ids unique in the page (each figure's ids get its own prefix, references to them too);
* a ``<title>`` per point of the scatter panels (a browser shows it on hover): the points of the artists whose gid
  is given, in the order they were drawn, each wrapped in a ``<g>`` with its title;
* the size from the page's CSS (``viewBox`` kept, ``width`` / ``height`` removed).

The small figure of each latency record (:func:`distribution`) is not drawn by matplotlib: a page of hundreds of
records would carry hundreds of full SVG figures (tens of kB each). Its geometry is computed here (numpy's histogram)
and the template draws a few ``<rect>`` and ``<circle>`` elements, a couple of kB per record.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping, Sequence

__all__ = ["to_svg", "distribution"]

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


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    import math

    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= raw:
            step *= m
            break
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(count + 2) if first + i * step <= high + 1e-12]


def distribution(samples: Sequence[float], *, statistic: float | None, report: str | None, low: float | None,
                 high: float | None, rounds: Sequence[float | None] = (), used: Sequence[bool] = (),
                 bins: int = 30) -> dict[str, Any]:
    """The geometry of one latency record's small figure, which the template draws as inline SVG: the histogram of
    its samples in ``bins`` bins (what the page keeps of them: the counts, not the samples), the reported statistic
    and its interval, and, measured in rounds, each round's value (``open``: a replaced round that does not count).

    Coordinates are in the figure's own units (``width`` x ``height``); every bar and round has a ``title``.
    """
    import numpy as np

    width, height, left, bottom, top = 560.0, 150.0, 34.0, 22.0, 8.0
    hist_right = 390.0 if rounds else width - 8
    values = np.asarray([float(v) for v in samples], dtype=np.float64)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    for v in (statistic, low, high):
        if v is not None:
            lo, hi = min(lo, float(v)), max(hi, float(v))
    if hi <= lo:
        lo, hi = lo * 0.99 - 1e-6, hi * 1.01 + 1e-6
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi)) if values.size else (np.zeros(bins), np.linspace(
        lo, hi, bins + 1))
    peak = max(int(counts.max()), 1)
    plot_h = height - bottom - top

    def x_of(v: float) -> float:
        return round(left + (v - lo) / (hi - lo) * (hist_right - left), 2)

    bars = []
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c:
            h = round(plot_h * int(c) / peak, 2)
            bars.append({"x": x_of(a), "w": max(round(x_of(b) - x_of(a) - 0.5, 2), 0.5), "y": round(top + plot_h - h, 2),
                         "h": h, "title": f"{a:.4g}-{b:.4g} ms: {int(c)} run(s)"})
    out: dict[str, Any] = {
        "width": width, "height": height, "left": left, "right": hist_right, "top": top, "base": top + plot_h,
        "bars": bars, "peak": peak, "n": int(values.size),
        "ticks": [{"x": x_of(t), "label": f"{t:g}"} for t in _nice_ticks(lo, hi)],
        "stat": None if statistic is None else {"x": x_of(float(statistic)),
                                                "title": f"{report or 'statistic'}: {float(statistic):.4g} ms"},
        "ci": None if low is None or high is None else {"x": x_of(float(low)),
                                                        "w": max(x_of(float(high)) - x_of(float(low)), 1.0),
                                                        "title": f"95% interval {float(low):.4g}-{float(high):.4g} ms"},
        "rounds": [],
    }
    known = [float(v) for v in rounds if v is not None]
    if known:
        r_lo, r_hi = min(known), max(known)
        pad = (r_hi - r_lo) * 0.15 or max(abs(r_hi) * 0.05, 1e-6)
        r_lo, r_hi = r_lo - pad, r_hi + pad
        x0, x1 = hist_right + 40, width - 10
        step = (x1 - x0) / max(len(rounds), 1)
        out["rounds_box"] = {"x0": x0, "x1": x1, "label_hi": f"{r_hi:.3g}", "label_lo": f"{r_lo:.3g}"}
        for i, v in enumerate(rounds):
            if v is None:
                continue
            counts_ = bool(used[i]) if i < len(used) else True
            out["rounds"].append({"cx": round(x0 + step * (i + 0.5), 2),
                                  "cy": round(top + plot_h - (float(v) - r_lo) / (r_hi - r_lo) * plot_h, 2),
                                  "open": not counts_, "label": str(i + 1),
                                  "title": f"round {i + 1}: {float(v):.4g} ms" + ("" if counts_ else
                                                                                 " (replaced: does not count)")})
    return out
