"""``explain``: where a model's time goes on a runtime, operator by operator, by category, against FLOPs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mobileone_bench import _args
from mobileone_bench._args import DEFAULT_MODELS_DIR, DEFAULT_RESULTS, select
from mobileone_bench.analysis.results import rows_or_frame

__all__ = ["explain"]


def explain(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
            runtime: str | None = None, warmup: int | None = None, runs: int | None = None,
            threads: int | None = None, precision: str | None = None, profiled_runs: int = 20,
            ort_opt: str = "all", ort_spinning: bool | None = None, cuda_graphs: bool = True,
            input_size: tuple[int, int] | None = None, weights: str | None = None, reparameterize: bool = True,
            results: str | Path = DEFAULT_RESULTS, models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False,
            progress: bool = False, as_frame: bool = True, yes: bool = False) -> Any:
    """Run the runtime's own profiler on each model's inference-time artifact and store one ``explain`` record per
    model, as ``mobileone-bench explain``.

    Each model is timed unprofiled first (``warmup`` / ``runs``: the runtime's defaults, as ``latency``), then
    profiled ``profiled_runs`` times in the same process: onnxruntime's session profiler, ``torch.profiler`` (the
    ``torch`` runtime), ExecuTorch's ETDump, TensorRT's per-layer profiler, torch-cuda's profiler. Every operator
    row has the runtime's node name and op type, a category (dense / depthwise / pointwise conv, linear, attention,
    normalization, activation, gating, dynamic activation, element-wise merges, pooling, data movement, other), its
    median time and share, its FLOPs (``profile``'s counting, mapped to the runtime's nodes) and achieved GFLOP/s.
    The record says how honest the profile is: ``coverage`` (operators' sum / unprofiled median; flagged outside
    :data:`mobileone_bench.store.operators.COVERAGE_RANGE`) and ``profiler_overhead``. An identical profile already
    stored is reused unless ``force``.

    Returns:
        One row per model ("where the time goes", :data:`mobileone_bench.analysis.operators.WHERE_COLUMNS`): the
        profile's coverage and overhead, the top operators, and ``share_<category>`` columns. ``attrs``: ``records``
        (the stored records, operator rows included), ``categories`` (one row per model and category: time share
        and FLOP share), ``notes``, ``reused``, ``results``.

    Example:
        >>> import mobileone_bench as mb
        >>> frame = mb.explain("mobileone_s0", runtime="torch", threads=1)      # doctest: +SKIP
        >>> frame[["model", "coverage", "share_depthwise-conv", "share_gating"]]  # doctest: +SKIP
    """
    _args.check(locals(), results=_args.ONE_FOLDER)
    from mobileone_bench.analysis.operators import WHERE_COLUMNS, category_rows, where_time_goes
    from mobileone_bench.pipeline.explain import explain_models
    from mobileone_bench.store.operators import operator_rows
    from mobileone_bench.store.records import ResultsStore

    job = _args.latency_job(device, runtime, warmup=warmup, runs=runs, threads=threads, precision=precision,
                            ort_opt=ort_opt, ort_spinning=ort_spinning, cuda_graphs=cuda_graphs,
                            input_size=input_size, weights=weights, reparameterize=reparameterize,
                            models_dir=models_dir, protocol="blocked")
    specs = select(models, zoo, yes=yes)
    store = ResultsStore(results)
    records, reused = explain_models(specs, job, store, runs=profiled_runs, force=force, progress=progress)
    ok = [r for r in records if r.get("status") == "ok"]
    rows = where_time_goes(ok)
    notes = [f"{r.get('model')}: {r.get('error')}" for r in records if r.get("status") != "ok"]
    for rec in ok:
        from mobileone_bench.store.records import as_list

        notes += [f"{rec.get('model')}: {n}" for n in as_list(rec.get("notes"))]
    full = [{**r, "operators": operator_rows(r)} for r in records]
    return rows_or_frame(rows, as_frame, WHERE_COLUMNS, records=full, categories=category_rows(ok), notes=notes,
                         reused=sorted(reused), results=str(store.records_path))
