"""This CPU's arithmetic peak, for ``roofline``: the best float32 GEMM rate at a thread count, measured once and
stored as a record of kind ``peak`` (keyed by machine fingerprint and threads), reused until asked again.

The peak is measured, not looked up: ``torch.matmul`` of two large square matrices, the best of a few repetitions
within a couple of seconds. The analysis (:mod:`mobileone_bench.analysis.roofline`) only reads: the API asks
:func:`peaks` for the peaks of the (machine, threads) pairs its records have, then hands them to the analysis.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.store.records import ResultsStore

__all__ = ["PEAK_METHOD", "measure_peak_gflops", "find_peak", "peak_gflops", "peaks"]

PEAK_METHOD = "torch.matmul float32"


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

    from mobileone_bench.errors import UsageError

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


def find_peak(store: ResultsStore, machine: str, threads: int) -> dict[str, Any] | None:
    """The newest stored peak of a machine at a thread count, or ``None``."""
    found = None
    for rec in store.latest("peak"):
        if rec.get("machine") == machine and rec.get("threads") == threads and rec.get("gflops"):
            if found is None or str(rec.get("created")) >= str(found.get("created")):
                found = rec
    return found


def peak_gflops(store: ResultsStore, threads: int, *, remeasure: bool = False, size: int = 2048,
                budget_s: float = 2.0, measure: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
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
    from mobileone_bench.pipeline.recording import append_record

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
    return append_record(store, "peak", identity, fields, env)


def peaks(store: ResultsStore, pairs: Iterable[tuple[str, int]], *, remeasure: bool = False,
          given: float | None = None, measure: Callable[..., dict[str, Any]] | None = None, size: int = 2048,
          budget_s: float = 2.0, announce: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """The peak of every (machine, threads) pair the latency records have, where one can be had.

    This machine's peak is the stored one, or measured now and stored (``remeasure``: measured now in any case);
    another machine's is the one stored for it, if any (it cannot be measured from here); ``given`` is used for
    every pair instead (``--peak-gflops``).

    Args:
        store: The results store (read, and written when a peak is measured).
        pairs: ``(machine fingerprint, threads)`` pairs, in the order the peaks are listed.
        remeasure: Measure this machine's peaks again even if stored.
        given: A peak (GFLOP/s) to use for every pair instead of measuring.
        measure: Replacement for :func:`measure_peak_gflops` (tests).
        size: GEMM size of a peak measurement.
        budget_s: Time budget of a peak measurement.
        announce: Called with the thread count just before a peak is measured (a progress message).

    Returns:
        One entry per pair that has a peak: ``{"machine", "threads", "gflops", "method", "source"}`` (source:
        ``stored``, ``measured now`` or ``--peak-gflops``) and ``cpu`` (the record's CPU) for a stored or measured
        one. A pair of another machine without a stored peak has none.

    Raises:
        UsageError: ``given`` is not positive.
    """
    from mobileone_bench.environment import machine_fingerprint
    from mobileone_bench.errors import UsageError

    if given is not None and given <= 0:
        raise UsageError("--peak-gflops must be > 0")
    here = machine_fingerprint()
    found: list[dict[str, Any]] = []
    for machine, threads in pairs:
        if given is not None:
            found.append({"machine": machine, "threads": threads, "gflops": float(given), "method": "given",
                          "source": "--peak-gflops"})
            continue
        rec = None if (remeasure and machine == here) else find_peak(store, machine, threads)
        source = "stored"
        if rec is None and machine == here:
            if announce is not None:
                announce(threads)
            rec = peak_gflops(store, threads, remeasure=True, measure=measure, size=size, budget_s=budget_s)
            source = "measured now"
        if rec is not None:
            found.append({"machine": machine, "threads": threads, "gflops": float(rec["gflops"]),
                          "method": rec.get("method"), "source": source, "cpu": rec.get("env_cpu")})
    return found
