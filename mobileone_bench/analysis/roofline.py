"""How close does each model come to this CPU's arithmetic peak? A compute-only roofline.

The peak is measured, not looked up: a float32 GEMM (``torch.matmul`` of two large square matrices, the best of a
few repetitions within a couple of seconds) at the thread count of the latency records, stored in the results
folder as a record of kind ``peak`` keyed by machine fingerprint and threads, and reused until ``remeasure``.

For a CPU latency record, achieved GFLOP/s = 2 x FLOPs / latency (the paper's "FLOPs" are multiply-adds: two
floating-point operations each), and its fraction of the peak says where the time goes:

* a large fraction (>= :data:`COMPUTE_BOUND` of the peak): the model keeps the arithmetic units busy, and FLOPs are
  a fair predictor of its latency on this CPU;
* a small fraction (< :data:`OVERHEAD_BOUND`): time goes elsewhere (memory traffic of depthwise and 1x1
  convolutions, many small kernels, framework overhead per operator, synchronisation): FLOPs under-predict its
  latency, the paper's point about mobile-friendly designs;
* above 100%: the runtime did fewer operations than counted (e.g. Winograd convolutions) or the GEMM probe is a
  weak reference for this runtime's kernels.

These thresholds are rules of thumb, not a model of the memory hierarchy (a full roofline would also need the
memory bandwidth and each model's bytes moved).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

from mobileone_bench.store.frames import measurements
from mobileone_bench.errors import AnalysisError, UsageError

__all__ = [
    "COMPUTE_BOUND",
    "OVERHEAD_BOUND",
    "measure_peak_gflops",
    "find_peak",
    "peak_gflops",
    "achieved_gflops",
    "verdict",
    "roofline_rows",
    "roofline",
    "ROOFLINE_COLUMNS",
]

COMPUTE_BOUND = 0.40
OVERHEAD_BOUND = 0.15
PEAK_METHOD = "torch.matmul float32"

ROOFLINE_COLUMNS = [("model", "Model"), ("runtime", "Runtime"), ("threads", "Threads"), ("flops_m", "FLOPs (M)"),
                    ("latency_ms", "Latency (ms)"), ("statistic", "Statistic"), ("achieved_gflops", "Achieved GFLOP/s"),
                    ("peak_gflops", "Peak GFLOP/s"), ("fraction", "% of peak"), ("verdict", "Bound"),
                    ("note", "Note")]


def measure_peak_gflops(threads: int, *, size: int = 2048, budget_s: float = 2.0, min_reps: int = 3,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """The best float32 GEMM rate of this machine at ``threads`` threads.

    Args:
        threads: Intra-op threads for the measurement (restored afterwards).
        size: Side of the square matrices (2048: 17 GFLOP per product, large enough for a blocked kernel to reach
            its steady rate on a laptop, small enough for a few seconds on a slow core).
        budget_s: Stop repeating after this many seconds (at least ``min_reps`` timed products).
        min_reps: Fewest timed products.
        clock: Seconds clock (injectable for tests).

    Returns:
        ``{"gflops", "threads", "size", "reps", "best_s", "method"}``.
    """
    import torch

    if threads < 1:
        raise UsageError("threads must be >= 1")
    if size < 16:
        raise UsageError("GEMM size must be >= 16")
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=g, dtype=torch.float32)
        b = torch.randn(size, size, generator=g, dtype=torch.float32)
        out = torch.empty(size, size, dtype=torch.float32)
        torch.matmul(a, b, out=out)  # warm-up: thread pool, caches, page faults
        best, reps, start = math.inf, 0, clock()
        while reps < min_reps or clock() - start < budget_s:
            t0 = clock()
            torch.matmul(a, b, out=out)
            best = min(best, clock() - t0)
            reps += 1
            if reps >= min_reps and clock() - start >= budget_s:
                break
            if reps >= 50:
                break
    finally:
        torch.set_num_threads(before)
    flop = 2.0 * size ** 3
    return {"gflops": flop / best / 1e9 if best > 0 else math.inf, "threads": int(threads), "size": size,
            "reps": reps, "best_s": best, "method": f"{PEAK_METHOD} {size}x{size}"}


def find_peak(store: Any, machine: str, threads: int) -> dict[str, Any] | None:
    """The newest stored peak of a machine at a thread count, or ``None``."""
    found = None
    for rec in store.latest("peak"):
        if rec.get("machine") == machine and rec.get("threads") == threads and rec.get("gflops"):
            if found is None or str(rec.get("created")) >= str(found.get("created")):
                found = rec
    return found


def peak_gflops(store: Any, threads: int, *, remeasure: bool = False, size: int = 2048, budget_s: float = 2.0,
                measure: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """This machine's peak at ``threads`` threads: the stored ``peak`` record, or a new measurement stored as one.

    Args:
        store: The results store (the peak is cached there).
        threads: Thread count.
        remeasure: Measure even if a peak is stored.
        size: GEMM size of a new measurement.
        budget_s: Time budget of a new measurement.
        measure: Replacement for :func:`measure_peak_gflops` (tests).

    Returns:
        The ``peak`` record (``gflops``, ``machine``, ``threads``, ``method``, ``created``...).
    """
    from mobileone_bench.environment import collect, machine_fingerprint
    from mobileone_bench.store.records import new_record

    machine = machine_fingerprint()
    if not remeasure:
        found = find_peak(store, machine, threads)
        if found is not None:
            return found
    check = getattr(store, "check_writable", None)
    if check is not None:
        check()  # before the peak is measured, not after
    result = (measure or measure_peak_gflops)(threads, size=size, budget_s=budget_s)
    env = {k: v for k, v in collect().items() if k in ("env_cpu", "env_cores_logical", "env_cores_physical",
                                                        "env_cpu_flags", "env_torch", "env_os", "env_tool")}
    identity = {"machine": machine, "threads": int(threads), "method": result["method"], "torch": env.get("env_torch")}
    fields = {"status": "ok", "gflops": result["gflops"], "reps": result["reps"], "best_s": result["best_s"],
              "size": result["size"]}
    return store.append(new_record("peak", identity, fields, env))


def achieved_gflops(flops_m: float, latency_ms: float) -> float:
    """GFLOP/s of a model: 2 floating-point operations per multiply-add, ``flops_m`` millions of them."""
    if latency_ms is None or latency_ms <= 0:
        raise AnalysisError("latency must be positive")
    return 2.0 * float(flops_m) * 1e6 / (float(latency_ms) * 1e-3) / 1e9


def verdict(fraction: float | None) -> str | None:
    """``compute-bound`` / ``partly compute-bound`` / ``overhead-bound`` by the module's rules of thumb."""
    if fraction is None or not math.isfinite(fraction):
        return None
    if fraction >= COMPUTE_BOUND:
        return "compute-bound"
    if fraction < OVERHEAD_BOUND:
        return "overhead-bound"
    return "partly compute-bound"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def roofline_rows(frame: Any, peaks: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    """Achieved GFLOP/s and fraction of peak for every CPU row of a long frame.

    Args:
        frame: :func:`~mobileone_bench.store.frames.measurements` output (CPU rows are used).
        peaks: ``(machine, threads) -> peak GFLOP/s``.

    Returns:
        One row per CPU record: ``model``, ``runtime``, ``threads``, ``machine``, ``flops_m``, ``latency_ms``,
        ``statistic``, ``achieved_gflops``, ``peak_gflops``, ``fraction`` (0..1, may exceed 1), ``verdict``,
        ``note``. Values that cannot be computed are ``None`` with a note.
    """
    rows = []
    if frame is None or len(frame) == 0:
        return rows
    cpu = frame[frame["device"] == "cpu"]
    for _, r in cpu.iterrows():
        threads = None if _num(r.get("threads")) is None else int(_num(r.get("threads")))
        row: dict[str, Any] = {"model": r["model"], "runtime": r["runtime"], "threads": threads,
                               "machine": r.get("machine"), "flops_m": _num(r.get("flops_m")),
                               "latency_ms": _num(r.get("latency_ms")), "statistic": r.get("statistic"),
                               "achieved_gflops": None, "peak_gflops": None, "fraction": None, "verdict": None,
                               "note": None}
        if row["flops_m"] is None:
            row["note"] = "no profile record: run `mobileone-bench profile` on it"
        elif not row["latency_ms"]:
            row["note"] = "no latency"
        else:
            row["achieved_gflops"] = achieved_gflops(row["flops_m"], row["latency_ms"])
            peak = peaks.get((str(row["machine"]), threads)) if threads is not None else None
            if peak:
                row["peak_gflops"] = float(peak)
                row["fraction"] = row["achieved_gflops"] / float(peak)
                row["verdict"] = verdict(row["fraction"])
                if row["fraction"] > 1:
                    row["note"] = "above the GEMM peak: fewer operations than counted (e.g. Winograd)?"
            else:
                row["note"] = "no peak for this machine and thread count (measured elsewhere?)"
        rows.append(row)
    rows.sort(key=lambda x: (str(x["runtime"]), x["threads"] or 0, -(x["fraction"] or -1), str(x["model"])))
    return rows


def roofline(store: Any, *, models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
             runtime: str | None = None, threads: int | None = None, remeasure: bool = False,
             peak_override: float | None = None, measure: Callable[..., dict[str, Any]] | None = None,
             size: int = 2048, budget_s: float = 2.0,
             announce: Callable[[int], None] | None = None, include_contended: bool = False) -> dict[str, Any]:
    """Achieved GFLOP/s and fraction of this CPU's measured peak for every stored CPU latency.

    The peak is measured (or reused from the store) once per thread count found in the records of this machine;
    records from other machines use a peak stored for their machine, if any. Each model gets one row per runtime
    and thread count (the newest record of each), so thread scaling shows.

    Args:
        store: The results store.
        models: Names or wildcards to keep.
        exclude: Names or wildcards to drop.
        runtime: Keep this CPU runtime only.
        threads: Keep records with this thread count.
        remeasure: Measure the peak again even if one is stored.
        peak_override: Use this peak (GFLOP/s) for every record instead of measuring.
        measure: Replacement for :func:`measure_peak_gflops` (tests).
        size: GEMM size of a peak measurement.
        budget_s: Time budget of a peak measurement.
        announce: Called with the thread count just before a peak is measured (a progress message).
        include_contended: Keep latency records flagged contended (left out by default, with a note).

    Returns:
        ``{"rows", "peaks": [{"machine", "threads", "gflops", "method", "source"}], "notes", "columns"}``.

    Raises:
        AnalysisError: No CPU latency record.
    """
    from mobileone_bench.environment import machine_fingerprint

    frame, notes = measurements(store, devices=["cpu"], runtime=runtime, threads=threads, models=models,
                                exclude=exclude, by_threads=True, include_contended=include_contended)
    if frame.empty:
        raise AnalysisError(f"no CPU latency in {store.root} with these filters: run `mobileone-bench run` (or "
                            f"`mobileone-bench latency --device cpu MODEL...`) first")
    if peak_override is not None and peak_override <= 0:
        raise UsageError("--peak-gflops must be > 0")
    here = machine_fingerprint()
    peaks: dict[tuple[str, int], float] = {}
    peak_rows: list[dict[str, Any]] = []
    pairs = sorted({(str(m), int(t)) for m, t in zip(frame["machine"], frame["threads"]) if _num(t) is not None})
    for machine, t in pairs:
        if peak_override is not None:
            peaks[(machine, t)] = float(peak_override)
            peak_rows.append({"machine": machine, "threads": t, "gflops": float(peak_override), "method": "given",
                              "source": "--peak-gflops"})
            continue
        if machine == here:
            rec = None if remeasure else find_peak(store, machine, t)
            source = "stored"
            if rec is None:
                if announce is not None:
                    announce(t)
                rec = peak_gflops(store, t, remeasure=True, measure=measure, size=size, budget_s=budget_s)
                source = "measured now"
        else:
            rec = find_peak(store, machine, t)
            source = "stored"
            if rec is None:
                notes.append(f"records of machine {machine} ({t} threads) were measured on another machine and no "
                             f"peak is stored for it: run `mobileone-bench roofline` there")
                continue
        peaks[(machine, t)] = float(rec["gflops"])
        peak_rows.append({"machine": machine, "threads": t, "gflops": float(rec["gflops"]),
                          "method": rec.get("method"), "source": source, "cpu": rec.get("env_cpu")})
    return {"rows": roofline_rows(frame, peaks), "peaks": peak_rows, "notes": notes, "columns": ROOFLINE_COLUMNS,
            "thresholds": {"compute_bound": COMPUTE_BOUND, "overhead_bound": OVERHEAD_BOUND}}

