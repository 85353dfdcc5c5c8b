"""This CPU's arithmetic peak, for ``roofline`` and ``explain``: the best float32 rate of the fastest kernels the
installed runtimes have, at a thread count, measured once and stored as a record of kind ``peak`` (keyed by machine
fingerprint and threads), reused until asked again.

The peak is measured, not looked up, and it is the best of several probes (:data:`PROBES`), because no single
library is fastest everywhere: MKL's GEMM (``torch.matmul``) takes a slower path on AMD CPUs while oneDNN's
convolutions do not, so a GEMM-only peak put RepVGG-B1 at 154% of "peak" on a Zen CPU. The probes: ``torch.matmul``
of two large square matrices (MKL or OpenBLAS), a large 1x1 convolution in PyTorch (oneDNN), and the same
convolution in onnxruntime (MLAS) when it is installed; each the best of a few repetitions within its share of the
time budget. The record keeps every probe's rate, which one won, and the theoretical peak of the ISA, cores and
clock (:func:`mobileone_bench.environment.theoretical_peak`) with where each factor comes from.

The analysis (:mod:`mobileone_bench.analysis.roofline`) only reads: the API asks :func:`peaks` for the peaks of the
(machine, threads) pairs its records have, then hands them to the analysis.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.store.records import ResultsStore

__all__ = ["PEAK_METHOD", "PROBES", "measure_peak_gflops", "probe_conv_torch", "probe_conv_onnxruntime",
           "measure_peak", "find_peak", "peak_gflops", "peaks"]

PEAK_METHOD = "torch.matmul float32"

#: The peak probes, in the order they run: name -> what it times.
PROBES = {"gemm": "torch.matmul float32 (MKL / OpenBLAS GEMM)",
          "conv1x1-torch": "torch conv2d 1x1 float32 (oneDNN)",
          "conv1x1-onnxruntime": "onnxruntime Conv 1x1 float32 (MLAS)"}

#: The 1x1 convolution of the convolution probes: 512 -> 512 channels on a 56x56 map (822 M multiply-adds, the
#: shape of a wide pointwise layer of a large CNN: big enough for a blocked kernel's steady rate).
CONV_SHAPE = (512, 512, 56)


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


def _best_rate(step: Callable[[], Any], flop: float, budget_s: float, min_reps: int,
               clock: Callable[[], float]) -> tuple[float, int, float]:
    """(GFLOP/s, reps, best seconds) of the fastest of repeated ``step`` calls after one warm-up."""
    step()
    best, reps, start = math.inf, 0, clock()
    while True:
        t0 = clock()
        step()
        best = min(best, clock() - t0)
        reps += 1
        if (reps >= min_reps and clock() - start >= budget_s) or reps >= 50:
            break
    return (flop / best / 1e9 if best > 0 else math.inf), reps, best


def probe_conv_torch(threads: int, *, budget_s: float = 1.0, min_reps: int = 3,
                     shape: tuple[int, int, int] = CONV_SHAPE, clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """The rate of a large float32 1x1 convolution in PyTorch (oneDNN on x86), ``inference_mode``."""
    import torch

    cin, cout, side = shape
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, cin, side, side, generator=g)
        w = torch.randn(cout, cin, 1, 1, generator=g)
        with torch.inference_mode():
            rate, reps, best = _best_rate(lambda: torch.nn.functional.conv2d(x, w), 2.0 * cin * cout * side * side,
                                          budget_s, min_reps, clock)
    finally:
        torch.set_num_threads(before)
    return {"name": "conv1x1-torch", "gflops": rate, "reps": reps, "best_s": best,
            "method": f"{PROBES['conv1x1-torch']} {cin}->{cout} {side}x{side}"}


def probe_conv_onnxruntime(threads: int, *, budget_s: float = 1.0, min_reps: int = 3,
                           shape: tuple[int, int, int] = CONV_SHAPE,
                           clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """The rate of the same 1x1 convolution as a one-node ONNX graph in onnxruntime (its CPU provider)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    cin, cout, side = shape
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((cout, cin, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "peak",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, side, side])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, side, side])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"x": rng.standard_normal((1, cin, side, side)).astype(np.float32)}
    rate, reps, best = _best_rate(lambda: session.run(["y"], feed), 2.0 * cin * cout * side * side, budget_s,
                                  min_reps, clock)
    return {"name": "conv1x1-onnxruntime", "gflops": rate, "reps": reps, "best_s": best,
            "method": f"{PROBES['conv1x1-onnxruntime']} {cin}->{cout} {side}x{side}"}


def measure_peak(threads: int, *, size: int = 2048, budget_s: float = 2.0, min_reps: int = 3,
                 clock: Callable[[], float] = time.perf_counter,
                 probes: Sequence[str] | None = None) -> dict[str, Any]:
    """The best float32 rate of every probe (:data:`PROBES`) at ``threads`` threads: the machine's measured peak.

    Args:
        threads: Intra-op threads.
        size: Side of the GEMM probe's matrices.
        budget_s: Time for all probes together (each gets an equal share, at least ``min_reps`` repetitions).
        min_reps: Fewest timed repetitions of each probe.
        clock: Seconds clock (tests).
        probes: Names of the probes to run (default: all; a probe whose library is missing is skipped, said).

    Returns:
        ``{"gflops", "winner", "method", "probes": [{"name", "gflops", "reps", "best_s", "method"} or
        {"name", "error"}], "threads", "size", "reps", "best_s", "theoretical"}`` (``theoretical``:
        :func:`mobileone_bench.environment.theoretical_peak`).
    """
    from mobileone_bench.environment import theoretical_peak
    from mobileone_bench.errors import UsageError

    names = list(probes or PROBES)
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise UsageError(f"unknown peak probe(s) {', '.join(unknown)}; choose from {', '.join(PROBES)}")
    share = budget_s / max(1, len(names))
    results: list[dict[str, Any]] = []
    for name in names:
        try:
            if name == "gemm":
                r = measure_peak_gflops(threads, size=size, budget_s=share, min_reps=min_reps, clock=clock)
                r = {"name": "gemm", **{k: r[k] for k in ("gflops", "reps", "best_s", "method")}}
            elif name == "conv1x1-torch":
                r = probe_conv_torch(threads, budget_s=share, min_reps=min_reps, clock=clock)
            else:
                r = probe_conv_onnxruntime(threads, budget_s=share, min_reps=min_reps, clock=clock)
        except ImportError as exc:
            r = {"name": name, "error": f"not installed: {exc.name or exc}"}
        results.append(r)
    timed = [r for r in results if r.get("gflops")]
    if not timed:
        raise UsageError("no peak probe could run")
    best = max(timed, key=lambda r: r["gflops"])
    return {"gflops": best["gflops"], "winner": best["name"], "method": f"best of {', '.join(names)}",
            "probes": results, "threads": int(threads), "size": size, "reps": best["reps"], "best_s": best["best_s"],
            "theoretical": theoretical_peak(int(threads))}


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
    result = (measure or measure_peak)(threads, size=size, budget_s=budget_s)
    env = {k: v for k, v in collect().items() if k in ("env_cpu", "env_cores_logical", "env_cores_physical",
                                                        "env_cpu_flags", "env_torch", "env_os", "env_tool")}
    identity = {"machine": machine, "threads": int(threads), "method": result["method"], "torch": env.get("env_torch")}
    fields = {"status": "ok", "gflops": result["gflops"], "reps": result["reps"], "best_s": result["best_s"],
              "size": result["size"], "winner": result.get("winner"), "probes": result.get("probes"),
              "theoretical_gflops": (result.get("theoretical") or {}).get("gflops"),
              "theoretical": result.get("theoretical")}
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
                          "method": rec.get("method"), "source": source, "cpu": rec.get("env_cpu"),
                          "winner": rec.get("winner"), "theoretical_gflops": rec.get("theoretical_gflops")})
    return found
