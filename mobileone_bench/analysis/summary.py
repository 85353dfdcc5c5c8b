"""What ``run`` shows after its sweep: the models' summary and records, the Table 9 layout (the paper's figures
beside ours) and the Spearman correlations (Table 1) of the models just run, each with the reason it could not be
computed instead."""

from __future__ import annotations

from typing import Any, Sequence

from mobileone_bench.analysis.results import Result, correlation_frame, frame
from mobileone_bench.errors import AnalysisError

__all__ = ["SUMMARY_COLUMNS", "RECORD_COLUMNS", "run_report"]

#: The columns of ``run``'s ``models`` rows (``on`` after them on a cluster).
SUMMARY_COLUMNS = ("model", "params_m", "flops_m", "latency_ms", "cv", "paper_latency_ms", "status")
#: The first columns of latency records as a frame.
RECORD_COLUMNS = ("model", "device", "runtime", "latency_ms", "status")


def run_report(store: Any, models: Sequence[str], summary: list[dict[str, Any]], records: list[dict[str, Any]],
               notes: Sequence[str], *, device: str, runtime: str | None, threads: int | None, precision: str | None, as_frame: bool = True,
               **attrs: Any) -> Result:
    """``run``'s result, from the store (only read) and the rows of the sweep.

    Args:
        store: The results store.
        models: The models run.
        summary: One summary row per model (or per model and cluster label).
        records: Their latency records.
        notes: The sweep's notes (the re-measure pass).
        device, runtime, threads, precision: What the records were measured with (the table's and correlations'
            filters).
        as_frame: DataFrames, or the rows as dicts.
        **attrs: More ``attrs`` of the result (the job, the records file).

    Returns:
        ``{"models", "records", "table" (Table 9 rows or None), "agreement", "correlation" (Table 1 rows or None),
        "notes"}``; ``attrs``: ``attrs`` plus ``built_table`` (the table dict as built), ``table_note`` and
        ``correlation_note`` (why one is missing), ``remeasure_notes`` (``notes``).
    """
    from mobileone_bench.analysis.correlate import correlate_records
    from mobileone_bench.analysis.tables import build_table, flat_rows

    built = corr = table_note = corr_note = None
    try:
        built = build_table(store, "table9", models=list(models), compare=True, runtimes=[runtime],
                            threads=threads, precision=precision)
    except AnalysisError as exc:
        table_note = str(exc)
    try:
        corr = correlate_records(store, models=list(models), device=device, runtime=runtime,
                                 threads=threads, precision=precision)
    except AnalysisError as exc:
        corr_note = str(exc)
    table_rows, agreement = (flat_rows(built), built.get("agreement")) if built else (None, None)
    meta = dict(attrs, built_table=built, table_note=table_note, correlation_note=corr_note,
                remeasure_notes=list(notes))
    notes = [*notes, *[f"Table 9 layout: {table_note}"] * bool(table_note),
             *[f"Spearman correlation: {corr_note}"] * bool(corr_note)]
    if not as_frame:
        return Result({"models": summary, "records": records, "table": table_rows, "agreement": agreement,
                       "correlation": corr, "notes": notes}, **meta)
    return Result({
        "models": frame(summary, SUMMARY_COLUMNS),
        "records": frame(records, RECORD_COLUMNS),
        "table": None if table_rows is None else frame(table_rows, (), footnotes=built.get("footnotes", [])),
        "agreement": None if agreement is None else frame(agreement),
        "correlation": None if corr is None else correlation_frame(corr),
        "notes": notes,
    }, **meta)
