"""The tables of the HTML report as plain cells (private to :mod:`mobileone_bench.analysis.report`).

A table is ``{"id", "title", "columns": [{"header", "numeric"}], "rows": [[cell, ...]], "notes"}``; a cell is
``{"text", "sort", "href", "title", "links"}``: what it shows, the value a click on its header sorts by (a number
for numeric columns), the record it comes from (``#rec-<record id>``), a hover text, and for a cell that comes from
several records the links to each of them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from mobileone_bench.analysis.table_text import _clean, format_cell, format_p
from mobileone_bench.errors import AnalysisError
from mobileone_bench.store.frames import DEVICE_LABELS, normalize_name

__all__ = ["cell", "anchor", "table_one", "ranking_table", "paper_table", "agreement_table", "records_cell"]


def anchor(record_id: Any) -> str | None:
    """The page anchor of a record (``#rec-<id>``), ``None`` without an id."""
    return f"#rec-{record_id}" if record_id else None


def _num(value: Any) -> float | None:
    value = _clean(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def cell(value: Any, *, text: str | None = None, digits: int = 2, record: Any = None,
         title: str | None = None, links: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """One cell: numbers shown with ``digits`` decimals (``-`` when missing), sorted by their value."""
    number = _num(value)
    if text is None:
        if number is not None:
            text = str(int(number)) if isinstance(_clean(value), int) else f"{number:.{digits}f}"
        else:
            value = _clean(value)
            text = "-" if value is None else str(value)
    return {"text": text, "sort": number if number is not None else text, "href": anchor(record),
            "title": title, "links": list(links)}


def records_cell(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A cell linking to each record a figure comes from (model name -> its record)."""
    links = [(str(r.get("model")), anchor(r.get("record_id"))) for r in records if r.get("record_id")]
    return {"text": f"{len(links)} record(s)", "sort": len(links), "href": None, "title": None, "links": links}


def _columns(pairs: Sequence[tuple[str, bool]]) -> list[dict[str, Any]]:
    return [{"header": h, "numeric": n} for h, n in pairs]


def table_one(result: Mapping[str, Any], by_model: Mapping[tuple[str, str, str], Mapping[str, Any]]
              ) -> dict[str, Any]:
    """Table 1 (:func:`mobileone_bench.analysis.correlate.correlate_records`): rho with its interval, p-value and
    Kendall's tau per proxy, and the records each row was computed from."""
    against = list(result["against"])
    cols = [("Type", False), ("Runtime", False), ("Statistic", False)]
    for a in against:
        name = {"flops": "FLOPs", "params": "Params"}.get(a, a)
        cols += [(f"{name} rho", True), (f"{name} 95% CI", False), (f"{name} p", True), (f"{name} Kendall tau", True)]
    cols += [("n", True), ("Records", True), ("Note", False)]
    rows = []
    for r in result["rows"]:
        recs = [by_model[(m, r["device"], r["runtime"])] for m in r.get("models", [])
                if (m, r["device"], r["runtime"]) in by_model]
        row = [cell(r["type"], title=r.get("hardware")), cell(r["runtime"]), cell(r.get("statistic"))]
        for a in against:
            row += [cell(r.get(f"{a}_rho")), cell(r.get(f"{a}_ci"), text=r.get(f"{a}_ci") or "-"),
                    cell(r.get(f"{a}_p"), text=format_p(r.get(f"{a}_p"))), cell(r.get(f"{a}_tau"))]
        row += [cell(r.get("n")), records_cell(recs), cell(r.get("note") or "")]
        rows.append(row)
    return {"id": "table-1", "title": "Table 1: Spearman rank correlation of latency with FLOPs and params",
            "columns": _columns(cols), "rows": rows, "notes": list(result.get("notes") or []) + [
                "rho: Spearman's rank correlation; 95% CI: percentile bootstrap over the models; tau: Kendall's "
                "tau-b. Records: the latency records each row was computed from (with the profile record of the "
                "same model and input)."]}


def ranking_table(ranking: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Which proxy predicts latency best, per device and runtime (:func:`~mobileone_bench.analysis.correlate.proxy_ranking`)."""
    cols = [("Type", False), ("Runtime", False), ("#", True), ("Proxy", False), ("rho", True), ("95% CI", False),
            ("p", True), ("Kendall tau", True), ("n", True)]
    rows = [[cell(r["type"]), cell(r["runtime"]), cell(r["rank"]), cell(r["proxy"]), cell(r["rho"]),
             cell(r.get("ci"), text=r.get("ci") or "-"), cell(r["p"], text=format_p(r["p"])), cell(r["tau"]),
             cell(r["n"])] for r in ranking]
    return {"id": "proxy-ranking", "title": "Proxy ranking: which count predicts latency best (by |rho|)",
            "columns": _columns(cols), "rows": rows,
            "notes": ["Proxies: FLOPs, params, activations (elements written), memory traffic at the record's "
                      "precision, depth (longest chain of compute layers)."]}


def paper_table(built: Mapping[str, Any], latency: Any) -> dict[str, Any]:
    """A Table 9 / Table 14 layout (:func:`~mobileone_bench.analysis.tables.build_table` with ``compare``): one
    row per model, its group in the first column, every latency cell linked to its record.

    Args:
        built: The table.
        latency: The latency frame the table was filled from (model, device, runtime, latency_ms, record_id).
    """
    cols = [("Group", False)] + [(c["header"], c["key"] != "name") for c in built["columns"]]
    by_value: dict[tuple[str, str], list[tuple[float, str]]] = {}
    if latency is not None and len(latency):
        for m, d, v, rid in zip(latency["model"], latency["device"], latency["latency_ms"], latency["record_id"]):
            if _num(v) is not None:
                by_value.setdefault((normalize_name(m), str(d)), []).append((float(v), str(rid)))
    rows = []
    for group in built["groups"]:
        for r in group["rows"]:
            row = [cell(group["name"] or "")]
            for c in built["columns"]:
                key = c["key"]
                record = None
                if key.endswith("_ms") and not key.startswith("paper_") and _num(r.get(key)) is not None:
                    device = key.split("_", 1)[0]
                    record = next((rid for v, rid in by_value.get((normalize_name(r["model"]), device), [])
                                   if abs(v - float(r[key])) <= 1e-9 * max(1.0, v)), None)
                text = format_cell(key, r.get(key)) if key != "name" else str(r.get("name"))
                low, high = r.get(f"{key[:-3]}_ci_low_ms"), r.get(f"{key[:-3]}_ci_high_ms")
                title = f"95% interval {low:.3g}-{high:.3g} ms" if _num(low) is not None and _num(high) is not None \
                    else None
                row.append(cell(r.get(key), text=text, record=record, title=title))
            rows.append(row)
    agreement = built.get("agreement")
    return {"id": built["layout"], "title": built["title"] + " (ours beside the paper's)", "columns": _columns(cols),
            "rows": rows, "notes": list(built.get("footnotes") or []),
            "agreement": agreement_table(built["layout"], agreement) if agreement else None}


def agreement_table(layout: str, agreement: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The rank agreement of our latencies with the paper's column (Spearman and Kendall over shared models)."""
    cols = [("Device", False), ("Runtime", False), ("Paper column", False), ("n", True), ("rho", True),
            ("95% CI", False), ("p", True), ("Kendall tau", True), ("Note", False)]
    rows = []
    for a in agreement:
        ci = f"{a['rho_low']:.2f} to {a['rho_high']:.2f}" if _num(a.get("rho_low")) is not None and \
            _num(a.get("rho_high")) is not None else "-"
        rows.append([cell(DEVICE_LABELS.get(a["device"], a["device"])), cell(a["runtime"]),
                     cell(a.get("paper_column") or "-"), cell(a.get("n")), cell(a.get("rho")), cell(None, text=ci),
                     cell(a.get("p_value"), text=format_p(a.get("p_value"))), cell(a.get("tau")),
                     cell(a.get("note") or "")])
    return {"id": f"{layout}-agreement", "title": "Rank agreement with the paper", "columns": _columns(cols),
            "rows": rows, "notes": ["Spearman's rho (and Kendall's tau) between our latencies and the paper's "
                                    "column, over the models both have."]}


def safe(builder: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``(builder(...), None)``, or ``(None, why)`` when the analysis cannot be made from this store."""
    try:
        return builder(*args, **kwargs), None
    except AnalysisError as exc:
        return None, str(exc)
