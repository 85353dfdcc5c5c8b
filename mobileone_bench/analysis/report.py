"""One self-contained HTML page of a study: what was measured, how, under which conditions, and what it says.

:func:`build_report` reads the store (it never writes to it) and gathers every part of the page as plain values;
:func:`render_html` fills the Jinja2 template ``mobileone_bench/data/report/report.html.j2`` with them, the CSS and
the small sorting script inlined; :func:`write_report` does both and writes the file.

The page works offline: no request of any kind (styles, script and figures are in the file; figures are inline SVG
drawn by matplotlib, each point of a scatter titled with its model and record). It holds:

* the header: the records, models, devices, runtimes and statistics, when they were made, the library versions and
  machines, the conditions (contended records and whether they are used, replaced rounds), the flagged and failed
  records and why, and what the store lacks for each part of the page;
* Table 1 with intervals and Kendall's tau, the proxy ranking, Tables 9 and 14 beside the paper's figures with the
  rank agreement (every table sortable by a click on a header; every latency cell links to its record);
* Figures 1 and 2 and latency against each other proxy, per device and runtime, with the paper's points;
* per model: each latency record's sample histogram and per-round values, statistics, identity, environment and
  artifact hashes; its profile; its per-operator breakdowns where stored.

What is summarised so that a store of hundreds of records stays a page of a few megabytes: a record's samples are
kept as a histogram (:data:`~mobileone_bench.analysis._report_models.HISTOGRAM_BINS` bins' counts, drawn as a
small inline SVG by the template, not the samples), a breakdown as its category totals and its
:data:`~mobileone_bench.analysis._report_models.TOP_OPERATORS` costliest operators, and only the newest record of
each key is shown (the store keeps the history).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from mobileone_bench.analysis import _report_tables as tables
from mobileone_bench.analysis._report_models import header, model_sections
from mobileone_bench.analysis._report_svg import to_svg
from mobileone_bench.errors import AnalysisError, UsageError
from mobileone_bench.store.frames import DEVICE_LABELS

__all__ = ["build_report", "render_html", "write_report", "TEMPLATE", "ASSETS"]

#: The page's template and the files inlined into it, under ``mobileone_bench/data/report/``.
TEMPLATE = "report.html.j2"
ASSETS = ("report.css", "report.js")


def _asset(name: str) -> str:
    from importlib.resources import files

    return (files("mobileone_bench") / "data" / "report" / name).read_text(encoding="utf-8")


def _figures(store: Any, by_record: Mapping[tuple[str, str, str], Mapping[str, Any]],
             include_contended: bool) -> tuple[list[dict[str, Any]], list[str]]:
    from mobileone_bench.analysis.plots import FIGURES, OURS_GID, PAPER_GID, draw, figure_panels

    # the scatter panels of latency records (figures drawn from other kinds of record have no x and y)
    scatter = [name for name, spec in FIGURES.items() if "x" in spec and "y" in spec and not spec.get("source")]
    panels, why = tables.safe(figure_panels, store, scatter, reference="paper", include_contended=include_contended)
    missing = [] if panels is not None else [f"figures: {why}"]
    out = []
    for i, panel in enumerate(panels or []):
        if panel["runtime"] is None:  # the paper's points alone: not this store's figure
            continue
        spec = FIGURES[panel["figure"]]
        ours = []
        for p in panel["points"]:
            rec = by_record.get((p["model"], panel["device"], panel["runtime"])) or {}
            ours.append(f"{p['label']} ({p['model']}): x {p['x']:.4g}, y {p['y']:.4g}; record "
                        f"{rec.get('record_id', '?')}")
        theirs = [f"paper: {p['label']}: x {p['x']:.4g}, y {p['y']:.4g}" for p in panel["reference_points"]]
        fig = draw(panel)
        label = panel["title"]
        notes = [n for n in panel["notes"] if spec.get("paper") or not n.startswith("the paper has no")]
        out.append({"id": f"fig-{i}", "figure": panel["figure"], "paper": spec.get("paper"), "kind": "scatter",
                    "device": DEVICE_LABELS.get(panel["device"], panel["device"]), "runtime": panel["runtime"],
                    "title": label, "notes": notes, "points": len(ours),
                    "svg": to_svg(fig, f"f{i}-", {OURS_GID: ours, PAPER_GID: theirs}, label=label)})
        fig.clear()
    return out + _operator_figures(store, len(out)), missing


def _operator_figures(store: Any, start: int) -> list[dict[str, Any]]:
    """Where the time goes, per device and runtime (``plot --figure time-by-category`` and ``time-vs-flop-share``),
    when the store holds ``explain`` records."""
    from mobileone_bench.analysis.operators import operator_plots

    drawn, _ = tables.safe(operator_plots, store)
    out = []
    for i, entry in enumerate(drawn or [], start=start):
        fig = entry["fig"]
        label = fig.axes[0].get_title() if fig.axes else entry["name"]
        out.append({"id": f"fig-{i}", "figure": entry["figure"], "paper": None, "kind": "operators",
                    "device": DEVICE_LABELS.get(entry["device"], entry["device"]), "runtime": entry["runtime"],
                    "title": label, "notes": entry["notes"], "points": entry["points"],
                    "svg": to_svg(fig, f"f{i}-", None, label=label)})
        fig.clear()
    return out


def build_report(store: Any, *, include_contended: bool = False) -> dict[str, Any]:
    """Every part of the page, as plain values (the template's context; see the module docstring).

    Raises:
        AnalysisError: The store holds no record (or its folder does not exist).
    """
    from mobileone_bench.analysis.correlate import correlate_records
    from mobileone_bench.analysis.tables import build_table
    from mobileone_bench.store.frames import latency_frame

    roots = [Path(s.root) for s in getattr(store, "stores", [store])]
    if not any((r / "records.jsonl").exists() for r in roots):
        raise AnalysisError(f"no results folder with records at {store.root}: run `mobileone-bench run` first, or "
                            f"point --results at a folder it wrote")
    records = store.records()
    if not records:
        raise AnalysisError(f"{store.root} holds no usable record: run `mobileone-bench run` first")
    latency = store.latest("latency", ok_only=False)
    profiles = store.latest("profile")
    explains = store.latest("explain")
    missing, notes = [], []
    frame, why = tables.safe(latency_frame, store, include_contended=include_contended)
    if frame is None:
        frame, lat_notes = None, []
        missing.append(f"latency: {why}" if latency else "latency: no latency record (run `mobileone-bench run` "
                                                         "or `mobileone-bench latency MODEL...`)")
    else:
        frame, lat_notes = frame
    notes += lat_notes
    by_record: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    if frame is not None:
        for _, row in frame.iterrows():
            by_record[(str(row["model"]), str(row["device"]), str(row["runtime"]))] = dict(row)
    if not profiles:
        missing.append("profile: no profile record, so no FLOPs or params: Table 1, the proxy ranking and the "
                       "figures need them (run `mobileone-bench profile MODEL...` or `run`)")
    sections: list[dict[str, Any]] = []
    correlation, why = tables.safe(correlate_records, store, include_contended=include_contended) \
        if frame is not None else (None, None)
    if correlation is not None:
        sections.append(tables.table_one(correlation, by_record))
        if correlation.get("ranking"):
            sections.append(tables.ranking_table(correlation["ranking"]))
    elif why:
        missing.append(f"Table 1: {why}")
    for layout in ("table9", "table14"):
        built, why = tables.safe(build_table, store, layout, compare=True, include_contended=include_contended)
        if built is not None:
            sections.append(tables.paper_table(built, frame))
        else:
            missing.append(f"{layout.replace('table', 'Table ')}: {why}")
    figures: list[dict[str, Any]] = []
    if frame is not None:
        figures, fig_missing = _figures(store, by_record, include_contended)
        missing += fig_missing
    if not explains:
        missing.append("per-operator breakdown: no `explain` record (where the time goes inside each model)")
    from mobileone_bench._version import __version__

    return {"title": "mobileone-bench report", "tool_version": __version__, "results": str(store.root),
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "header": header(store, records, notes, include_contended), "missing": missing,
            "tables": sections, "figures": figures,
            "models": model_sections(store, _shown(store, latency, by_record), profiles, explains)}


def _shown(store: Any, latest: list[dict[str, Any]], used: Mapping[Any, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The newest record of each key, and the older ones the tables use instead of a newer contended one."""
    ids = {r.get("record_id") for r in latest}
    wanted = {str(r.get("record_id")) for r in used.values()} - ids
    older = [r for r in store.records("latency") if r.get("record_id") in wanted] if wanted else []
    return latest + older


def render_html(context: Mapping[str, Any]) -> str:
    """The page: the template filled with ``context`` (:func:`build_report`), CSS and script inlined.

    Raises:
        MissingDependencyError: Jinja2 is not installed.
    """
    try:
        import jinja2
    except ImportError:  # pragma: no cover - a dependency of the package
        from mobileone_bench.errors import MissingDependencyError

        raise MissingDependencyError("the HTML report needs Jinja2: pip install jinja2") from None
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.from_string(_asset(TEMPLATE))
    figures = [{**f, "svg": Markup(f["svg"])} for f in context["figures"]]
    return template.render(**{**context, "figures": figures}, css=Markup(_asset("report.css")),
                           js=Markup(_asset("report.js")))


def write_report(store: Any, out: str | Path, *, include_contended: bool = False) -> dict[str, Any]:
    """Build the page (:func:`build_report`) and write it to ``out``.

    Returns:
        ``{"out", "bytes", "records", "models", "tables", "figures", "missing"}``.

    Raises:
        AnalysisError: Nothing to report. UsageError: ``out`` cannot be written.
    """
    context = build_report(store, include_contended=include_contended)
    html = render_html(context)
    path = Path(out)
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return {"out": str(path), "bytes": len(html.encode("utf-8")), "records": context["header"]["records"],
            "models": len(context["models"]), "tables": [t["id"] for t in context["tables"]],
            "figures": len(context["figures"]), "missing": context["missing"]}
