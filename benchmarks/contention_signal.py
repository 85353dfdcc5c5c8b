"""Which timed blocks each contention signal flags, on an idle machine and with CPU burners, for short and long blocks.

Run it alone (no test run, no other benchmark): it makes its own contention. It times repeated blocks of a tiny
workload (by default onnxruntime on ``mobileone_tiny`` at 64x64, as the tool times it; ``--workload numpy``: a small
matmul loop) bracketed by :class:`~mobileone_bench.devices._contention.ContentionSampler`, in three block lengths
(short: ``--short-ms``, about 1-2 ms; medium; long: ``--long-s``, 1 s, over the tick window), first on the idle machine,
then with ``--burners`` processes spinning ``while True: pass``. For each phase and block length it prints how many
blocks each signal flags (the old rule, other processes' CPU >= 25% or steal >= 10% whatever the window, next to the
run-queue wait at several thresholds, CPU pressure, and the module's verdict), the quantiles of each signal, and the
per-run latency of flagged and unflagged blocks (a flag is right when the flagged blocks are the slow ones):
``run_ms_median`` is the median over blocks of each block's median run, ``run_ms_mean`` of each block's mean run
(a stall shows in the mean; the median hides it). The module docstring of ``mobileone_bench/devices/_contention.py``
gives the figures its thresholds were chosen from.

The burners end by themselves after ``--burn-limit-s`` and are killed on any exit of this script (an exception,
Ctrl-C, SIGTERM).

    python benchmarks/contention_signal.py [--workload ort|numpy] [--threads N] [--burners 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

RUNQ_THRESHOLDS = (0.02, 0.05, 0.10, 0.20)
PSI_THRESHOLDS = (0.10, 0.25, 0.50)
BURNER = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


class Burners:
    """``n`` busy processes that stop by themselves after ``limit_s`` and are killed by :meth:`stop` (or ``with``)."""

    def __init__(self, n: int, limit_s: float) -> None:
        self.n, self.limit_s = n, limit_s
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Burners":
        try:
            for _ in range(self.n):
                self.procs.append(subprocess.Popen([sys.executable, "-c", BURNER, str(self.limit_s)]))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


def ort_workload(model: str, input_size: tuple[int, int], threads: int, models_dir: Path) -> tuple[Any, str]:
    """The project's onnxruntime runner on ``model`` (built, re-parameterized, exported to ``models_dir``)."""
    from mobileone_bench import pipeline
    from mobileone_bench.devices.onnxruntime import OnnxRuntimeRunner
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one

    prepared = pipeline.prepare(model, input_size=input_size)
    artifact = export_one(prepared, FORMATS["onnx"], models_dir, ExportOptions())
    if not artifact.ok:
        raise SystemExit(f"onnx export failed: {artifact.error}")
    runner = OnnxRuntimeRunner(Path(artifact.path), prepared.input_shape, threads)
    return runner, f"onnxruntime {model} {input_size[0]}x{input_size[1]}, {threads} thread(s)"


def numpy_workload(size: int = 96) -> tuple[Callable[[], Any], str]:
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    return (lambda: a @ b), f"numpy {size}x{size} matmul"


def _quantiles(values: list[float], scale: float = 1.0, digits: int = 4) -> dict[str, float] | None:
    if not values:
        return None
    s = sorted(values)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * scale, digits)

    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": round(s[-1] * scale, digits)}


class _RecordingWaits:
    """A :func:`thread_waits` reader that keeps its last two snapshots (per-thread detail for this report)."""

    def __init__(self) -> None:
        from mobileone_bench.devices._contention import thread_waits

        self._read = thread_waits
        self.snapshots: list[dict[int, int] | None] = [None, None]

    def __call__(self) -> dict[int, int] | None:
        snap = self._read()
        self.snapshots = [self.snapshots[1], snap]
        return snap


def time_blocks(step: Callable[[], Any], runs: int, blocks: int) -> list[dict[str, Any]]:
    """``blocks`` timed blocks of ``runs`` runs each, each bracketed by a sampler; one row per block."""
    from mobileone_bench.devices._contention import ContentionSampler
    from mobileone_bench.devices._protocol import time_runs

    waits = _RecordingWaits()
    sampler = ContentionSampler(threads=waits)
    caller = threading.get_native_id()
    rows = []
    for _ in range(blocks):
        token = sampler.start()
        samples = time_runs(step, 0, runs)
        reading = sampler.stop(token)
        before, after = waits.snapshots
        per_thread = {tid: ns - (before or {}).get(tid, 0) for tid, ns in (after or {}).items()}
        seconds = reading["seconds"]
        rows.append({**reading, "run_ms": statistics.median(samples), "run_ms_mean": statistics.fmean(samples),
                     "thread_max": max(per_thread.values(), default=0) / 1e9 / seconds,
                     "caller": per_thread.get(caller, 0) / 1e9 / seconds})
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Flag counts per signal, quantiles, and the latency of flagged vs unflagged blocks."""
    from mobileone_bench.devices._contention import BLOCK_OTHER_CPU, BLOCK_STEAL, RUNQ_WAIT_FLOOR_S

    def count(pred: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for r in rows if pred(r))

    flags: dict[str, int] = {
        "old_rule(other_cpu>=0.25|steal>=0.1, any window)": count(
            lambda r: r["other_cpu"] is not None and (r["other_cpu"] >= BLOCK_OTHER_CPU
                                                      or (r["steal"] or 0.0) >= BLOCK_STEAL)),
    }
    for t in RUNQ_THRESHOLDS:
        flags[f"runq_wait>={t:g}"] = count(lambda r, t=t: r["runq_wait"] is not None and r["runq_wait"] >= t)
        flags[f"runq_wait>={t:g}&floor"] = count(lambda r, t=t: r["runq_wait"] is not None and r["runq_wait"] >= t
                                                 and r["runq_wait_s"] >= RUNQ_WAIT_FLOOR_S)
        flags[f"caller_wait>={t:g}"] = count(lambda r, t=t: r["caller"] >= t)
    for t in PSI_THRESHOLDS:
        flags[f"psi_cpu>={t:g}"] = count(lambda r, t=t: r["psi_cpu"] is not None and r["psi_cpu"] >= t)
    flags["verdict_contended"] = count(lambda r: r["contended"] is True)
    flags["verdict_unknown"] = count(lambda r: r["contended"] is None)
    def split(key: str, contended: bool) -> float | None:
        values = [r[key] for r in rows if r["contended"] is contended]
        return round(statistics.median(values), 4) if values else None

    return {
        "blocks": len(rows),
        "block_ms_median": round(statistics.median(r["seconds"] for r in rows) * 1e3, 3),
        "basis": sorted({r["contention_basis"] for r in rows}),
        "flags": flags,
        "runq_wait": _quantiles([r["runq_wait"] for r in rows if r["runq_wait"] is not None]),
        "runq_wait_us": _quantiles([r["runq_wait_s"] for r in rows if r["runq_wait_s"] is not None], 1e6, 1),
        "thread_max_wait": _quantiles([r["thread_max"] for r in rows]),
        "caller_wait": _quantiles([r["caller"] for r in rows]),
        "psi_cpu": _quantiles([r["psi_cpu"] for r in rows if r["psi_cpu"] is not None]),
        "other_cpu": _quantiles([r["other_cpu"] for r in rows if r["other_cpu"] is not None]),
        "steal": _quantiles([r["steal"] for r in rows if r["steal"] is not None]),
        # per block: the median run and the mean run (a stall shows in the mean); medians over blocks
        "run_ms_median": {"all": round(statistics.median(r["run_ms"] for r in rows), 4),
                          "flagged": split("run_ms", True), "unflagged": split("run_ms", False)},
        "run_ms_mean": {"all": round(statistics.median(r["run_ms_mean"] for r in rows), 4),
                        "flagged": split("run_ms_mean", True), "unflagged": split("run_ms_mean", False)},
    }


def phase(step: Callable[[], Any], sizes: dict[str, tuple[int, int]]) -> dict[str, Any]:
    return {kind: summarize(time_blocks(step, runs, blocks)) for kind, (runs, blocks) in sizes.items()}


def _loadavg() -> str | None:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("ort", "numpy"), default="ort")
    parser.add_argument("--model", default="mobileone_tiny")
    parser.add_argument("--input-size", type=int, nargs=2, default=(64, 64))
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: cores)")
    parser.add_argument("--short-ms", type=float, default=1.5)
    parser.add_argument("--short-blocks", type=int, default=400)
    parser.add_argument("--medium-ms", type=float, default=20.0)
    parser.add_argument("--medium-blocks", type=int, default=40)
    parser.add_argument("--long-s", type=float, default=1.0)
    parser.add_argument("--long-blocks", type=int, default=4)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--burn-limit-s", type=float, default=60.0, help="burners end by themselves after this")
    args = parser.parse_args()

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)  # so that the burners' finally runs on kill <pid> too
    from mobileone_bench.devices import default_threads

    with tempfile.TemporaryDirectory(prefix="mobileone-bench-signal-") as tmp:
        if args.workload == "ort":
            step, workload = ort_workload(args.model, tuple(args.input_size), args.threads or default_threads(),
                                          Path(tmp))
        else:
            step, workload = numpy_workload()
        from mobileone_bench.devices._protocol import time_runs

        time_runs(step, 50, 1)
        per_run_ms = statistics.median(time_runs(step, 0, 200))
        sizes = {"short": (max(1, round(args.short_ms / per_run_ms)), args.short_blocks),
                 "medium": (max(1, round(args.medium_ms / per_run_ms)), args.medium_blocks),
                 "long": (max(1, round(args.long_s * 1e3 / per_run_ms)), args.long_blocks)}
        load_before = _loadavg()
        idle = phase(step, sizes)
        load_idle = _loadavg()
        with Burners(args.burners, args.burn_limit_s):
            time.sleep(0.5)  # let them start
            burst = phase(step, sizes)
        load_after = _loadavg()
    from mobileone_bench.devices import _contention as c

    print(json.dumps({
        "workload": workload, "cpus": os.cpu_count(), "per_run_ms": round(per_run_ms, 4),
        "runs_per_block": {k: v[0] for k, v in sizes.items()},
        "loadavg": {"before": load_before, "after_idle": load_idle, "after_burst": load_after},
        "burners": args.burners,
        "constants": {"BLOCK_RUNQ_WAIT": c.BLOCK_RUNQ_WAIT, "RUNQ_WAIT_FLOOR_S": c.RUNQ_WAIT_FLOOR_S,
                      "BLOCK_OTHER_CPU": c.BLOCK_OTHER_CPU, "BLOCK_STEAL": c.BLOCK_STEAL,
                      "TICK_MIN_WINDOW_S": c.TICK_MIN_WINDOW_S},
        "idle": idle, "burst": burst,
    }, indent=1))


if __name__ == "__main__":
    main()
