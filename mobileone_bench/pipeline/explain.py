"""Where the time goes: a runtime's own per-operator profile of a model, stored as one ``explain`` record.

For each model: build and re-parameterize it, export the artifact its runtime runs (as ``latency`` does), time it
*unprofiled* (the end-to-end median the profile is held against), then run the runtime's profiler on the same
artifact in the same process (the runtime module's ``profile_operators``: onnxruntime's session profiler,
``torch.profiler``, ExecuTorch's ETDump, TensorRT's per-layer profiler, torch-cuda's profiler). Each operator row
gets its category and FLOPs (:mod:`mobileone_bench.complexity_ops`), its share of the operators' total and its
achieved GFLOP/s; the record keeps the rows (:mod:`mobileone_bench.store.operators`), their sums per category, and
the profile's honesty: coverage (the operators' times summed over the unprofiled end-to-end median, flagged outside
:data:`~mobileone_bench.store.operators.COVERAGE_RANGE`) and the profiler's own overhead (the profiled runs' median
over the unprofiled one, minus 1). The record is made by :mod:`mobileone_bench.pipeline.recording`.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench.pipeline.recording import (
    UNAVAILABLE_PREFIX,
    append_record,
    failure_message,
    latency_identity,
    stored,
    weights_sha,
)

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.pipeline.preparing import Prepared
    from mobileone_bench.store.records import ResultsStore

__all__ = ["explain_model", "explain_models", "operator_fields", "profiler_of", "DEFAULT_PROFILED_RUNS"]

#: Profiled runs per model (the median of each operator's time over them); the unprofiled timing uses the job's runs.
DEFAULT_PROFILED_RUNS = 20


def profiler_of(job: LatencyJob) -> Callable[..., dict[str, Any]]:
    """The runtime's ``profile_operators`` (from its module in :data:`~mobileone_bench.devices.RUNTIMES`).

    Raises:
        UsageError: The runtime has no profiler the tool can read (Core ML: its compute plan comes from the Apple
            commands).
        MissingDependencyError: The runtime's library is not installed.
    """
    from mobileone_bench.devices import get_runtime, load_runtime
    from mobileone_bench.errors import UsageError

    rt = get_runtime(job.device, job.runtime)
    if rt.device in ("iphone", "mac"):
        raise UsageError(f"explain profiles host runtimes (cpu, gpu); Core ML's per-operator view on {rt.device} is "
                         f"its compute plan, which the Apple harness records")
    impl = load_runtime(rt)
    found = getattr(impl, "profile_operators", None)
    if not callable(found):
        raise UsageError(f"the {rt.name} runtime has no per-operator profiler")
    return found


def operator_fields(result: dict[str, Any], modules: Any, e2e_ms: float | None,
                    peak_gflops: float | None = None) -> dict[str, Any]:
    """The record fields of a profile: operator rows (category, FLOPs, share, GFLOP/s), per-category sums, coverage
    and overhead.

    Args:
        result: A ``profile_operators`` result (``rows``, ``profiled_ms``, ``notes``).
        modules: The model's :class:`~mobileone_bench.complexity_ops.ModuleMap` (``None``: no FLOPs are mapped).
        e2e_ms: The unprofiled end-to-end median (``None``: no coverage or overhead).
        peak_gflops: The peak the achieved GFLOP/s are held against (a note counts the operators above it).
    """
    from mobileone_bench.complexity_ops import assign_flops, categorize_row, trace_in_order, trace_modules
    from mobileone_bench.store.operators import COVERAGE_RANGE, category_totals, operator_row

    rows = [dict(r) for r in result.get("rows") or []]
    notes = list(result.get("notes") or [])
    unmapped = None
    if modules is not None:
        if rows and all(str(r.get("op_type") or "").startswith("aten::") and not r.get("module")
                        and not r.get("params") for r in rows):
            for r in rows:  # PyTorch eager without module names (torch-cuda): operators run in the modules' order
                r["trace"] = "order"
        trace_in_order(rows, modules)
        trace_modules(rows, modules)
    for row in rows:
        row["category"] = categorize_row(row, modules)
    if modules is not None:
        unmapped = assign_flops(rows, modules)
        if modules.total and abs(unmapped) > 0.01 * modules.total:
            notes.append(f"{unmapped / 1e6:+.2f} MFLOPs of the model's {modules.total / 1e6:.2f} could not be given "
                         f"to an operator")
    timed = [float(r["time_ms"]) for r in rows if r.get("time_ms") is not None]
    total = sum(timed) if timed and len(timed) == len(rows) else None
    costs = [r.get("cost") for r in rows]
    total_cost = sum(float(c) for c in costs if c is not None) if any(c is not None for c in costs) else None
    out_rows = []
    above = 0
    for r in rows:
        time_ms = r.get("time_ms")
        flops = r.get("flops")
        gflops = (2.0 * float(flops) / (float(time_ms) * 1e-3) / 1e9
                  if flops and time_ms and float(time_ms) > 0 else None)
        if gflops is not None and peak_gflops and gflops > peak_gflops:
            above += 1
        share = (float(time_ms) / total if total else None) if time_ms is not None else (
            float(r["cost"]) / total_cost if r.get("cost") is not None and total_cost else None)
        out_rows.append(operator_row(
            name=r.get("name"), op_type=r.get("op_type"), category=r["category"], time_ms=time_ms, share=share,
            flops=flops, gflops_per_s=gflops, device=r.get("device"), supported_devices=r.get("supported_devices"),
            cost=r.get("cost"), precision=r.get("precision")))
    if above:
        notes.append(f"{above} operator(s) above the peak of {peak_gflops:.1f} GFLOP/s: a profiler's per-operator "
                     f"time can miss work done on other threads, or the kernel does fewer operations than counted "
                     f"(Winograd)")
    fields: dict[str, Any] = {"source": "profiler", "operators": out_rows, "categories": category_totals(out_rows),
                              "n_operators": len(out_rows), "total_op_ms": total, "e2e_ms": e2e_ms,
                              "coverage": None, "coverage_ok": None, "profiler_overhead": None,
                              "flops": modules.total if modules is not None else None, "unmapped_flops": unmapped,
                              "peak_gflops": peak_gflops, "coverage_range": list(COVERAGE_RANGE)}
    profiled = [float(v) for v in result.get("profiled_ms") or []]
    if e2e_ms and total is not None:
        fields["coverage"] = total / e2e_ms
        fields["coverage_ok"] = COVERAGE_RANGE[0] <= fields["coverage"] <= COVERAGE_RANGE[1]
        if not fields["coverage_ok"]:
            notes.append(f"coverage {fields['coverage']:.2f} is outside {COVERAGE_RANGE[0]}-{COVERAGE_RANGE[1]}: the "
                         f"operators' times {'miss part of' if fields['coverage'] < 1 else 'overcount'} the "
                         f"end-to-end time; read the shares with that in mind")
    if e2e_ms and profiled:
        fields["profiled_ms"] = statistics.median(profiled)
        fields["profiler_overhead"] = statistics.median(profiled) / e2e_ms - 1.0
    fields["notes"] = notes
    return fields


def _peak(store: ResultsStore, job: LatencyJob) -> float | None:
    if job.device != "cpu" or not job.threads:
        return None
    from mobileone_bench.environment import machine_fingerprint
    from mobileone_bench.pipeline.peak import find_peak

    found = find_peak(store, machine_fingerprint(), int(job.threads))
    return float(found["gflops"]) if found else None


def explain_model(spec: ModelSpec, job: LatencyJob, store: ResultsStore, *, runs: int = DEFAULT_PROFILED_RUNS,
                  force: bool = False, prepared: Prepared | None = None,
                  step: Callable[[str], None] = lambda s: None) -> tuple[dict[str, Any], bool]:
    """Profile one model on the job's runtime and store its ``explain`` record (reused when an identical one is
    stored, unless ``force``). A model that fails is a failed record, and the caller goes on.

    Returns:
        ``(record, reused)``.
    """
    from mobileone_bench.devices import get_runtime, load_runtime
    from mobileone_bench.devices._protocol import time_runs
    from mobileone_bench.environment import collect
    from mobileone_bench.errors import BenchError, UsageError
    from mobileone_bench.pipeline.loading import load_artifact

    identity = latency_identity(spec, job, weights_sha(job.weights), profiled_runs=int(runs))
    found = stored(store, "explain", identity, force=force, spec=spec)
    if found is not None:
        return found, True
    rt = get_runtime(job.device, job.runtime)
    fields: dict[str, Any] = {"status": "ok", "error": None, "paper_name": spec.paper_name}
    started = time.perf_counter()
    samples: list[float] | None = None
    try:
        profiler = profiler_of(job)
        if not spec.available:
            raise BenchError(f"{UNAVAILABLE_PREFIX}{spec.reason}")
        impl = load_runtime(rt)
        prepared, artifact = load_artifact(spec, job, rt.artifact, prepared, fields, force=force, step=step)
        step("time unprofiled")
        runner = impl.make_runner(str(job.runtime), artifact=artifact, model=prepared.model,
                                  input_shape=prepared.input_shape, precision=str(job.precision),
                                  threads=job.threads, options=dict(job.runtime_options))
        try:
            timer = getattr(runner, "time", None)
            samples = (list(timer(int(job.warmup), int(job.runs))) if callable(timer)
                       else time_runs(runner, int(job.warmup), int(job.runs)))
            fields["runtime_settings"] = runner.settings()
        finally:
            runner.close()
        step("profile")
        result = profiler(artifact=artifact, model=prepared.model, input_shape=prepared.input_shape,
                          precision=str(job.precision), threads=job.threads,
                          options={**dict(job.runtime_options), "warmup": min(int(job.warmup), 10)}, runs=int(runs))
        step("count FLOPs per operator")
        from mobileone_bench.complexity_ops import module_map

        modules = module_map(prepared.model, prepared.input_shape)
        peak = _peak(store, job)
        fields.update(operator_fields(result, modules, statistics.median(samples), peak))
        if peak is None and job.device == "cpu":
            fields["notes"].append(f"no peak stored for this machine at {job.threads} thread(s): `mobileone-bench "
                                   f"roofline` measures one; the achieved GFLOP/s are not held against a peak")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data; the sweep goes on
        fields.update(status="failed", error=failure_message(exc))
    fields["seconds"] = round(time.perf_counter() - started, 2)
    return append_record(store, "explain", identity, fields, collect(gpu=job.device == "gpu"), samples), False


def explain_models(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *,
                   runs: int = DEFAULT_PROFILED_RUNS, force: bool = False,
                   progress: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """:func:`explain_model` for each model in turn.

    Returns:
        ``(records, reused)``: one record per model, and the ids of those taken from the store.
    """
    from mobileone_bench._progress import bar

    records, reused = [], []
    with bar(progress, len(specs), "explain") as tick:
        for spec in specs:
            rec, was = explain_model(spec, job, store, runs=runs, force=force,
                                     step=lambda s, name=spec.name: tick(f"{name}: {s}"))
            records.append(rec)
            if was:
                reused.append(rec["record_id"])
            tick(spec.name, advance=1)
    return records, reused
