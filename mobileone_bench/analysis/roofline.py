"""How close does each model come to this CPU's arithmetic peak? A compute-only roofline.

The peak is measured, not looked up: a float32 GEMM at the thread count of the latency records, stored in the
results folder as a record of kind ``peak`` keyed by machine fingerprint and threads
(:mod:`mobileone_bench.pipeline.peak` measures and stores it). This module only reads records: it is given the peaks.

For a CPU latency record, achieved GFLOP/s = 2 x FLOPs / latency (the paper's "FLOPs" are multiply-adds: two
floating-point operations each), and its fraction of the peak says where the time goes:

* a large fraction (>= :data:`COMPUTE_BOUND` of the peak): the model keeps the arithmetic units busy, and FLOPs are
  a fair predictor of its latency on this CPU;
* a small fraction (< :data:`OVERHEAD_BOUND`): time goes elsewhere (memory traffic of depthwise and 1x1
  convolutions, many small kernels, framework overhead per operator, synchronisation): FLOPs under-predict its
  latency, the paper's point about mobile-friendly designs;
* above 100%: the runtime did fewer operations than counted (e.g. Winograd convolutions), or its kernels beat every
  probe of the peak. The peak is the best of several probes (a GEMM, a 1x1 convolution through oneDNN and through
  onnxruntime: :mod:`mobileone_bench.pipeline.peak`), shown beside the theoretical peak of the ISA, cores and clock;
  every row above the peak it is held against carries a note saying so and why it can be.

These thresholds are rules of thumb, not a model of the memory hierarchy (a full roofline would also need the
memory bandwidth and each model's bytes moved).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from mobileone_bench.errors import AnalysisError
from mobileone_bench.store.frames import measurements
from mobileone_bench.stats import finite_or_none

__all__ = [
    "COMPUTE_BOUND",
    "OVERHEAD_BOUND",
    "cpu_latencies",
    "machines_and_threads",
    "report",
    "achieved_gflops",
    "verdict",
    "roofline_rows",
    "roofline",
    "ROOFLINE_COLUMNS",
]

#: The method of a peak measured by a GEMM alone (before the peak was the best of several probes).
PEAK_GEMM_ONLY = "torch.matmul float32"

COMPUTE_BOUND = 0.40
OVERHEAD_BOUND = 0.15

ROOFLINE_COLUMNS = [("model", "Model"), ("runtime", "Runtime"), ("threads", "Threads"), ("flops_m", "FLOPs (M)"),
                    ("latency_ms", "Latency (ms)"), ("statistic", "Statistic"), ("achieved_gflops", "Achieved GFLOP/s"),
                    ("peak_gflops", "Peak GFLOP/s"), ("fraction", "% of peak"), ("verdict", "Bound"),
                    ("note", "Note")]


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


def roofline_rows(frame: Any, peaks: dict[tuple[str, int], float],
                  about: dict[tuple[str, int], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Achieved GFLOP/s and fraction of peak for every CPU row of a long frame.

    Args:
        frame: :func:`~mobileone_bench.store.frames.measurements` output (CPU rows are used).
        peaks: ``(machine, threads) -> peak GFLOP/s``.
        about: ``(machine, threads) -> the peak's entry`` (its ``winner`` probe and ``theoretical_gflops``), for
            the note of a row above the peak.

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
        threads_read = finite_or_none(r.get("threads"))
        threads = None if threads_read is None else int(threads_read)
        row: dict[str, Any] = {"model": r["model"], "runtime": r["runtime"], "threads": threads,
                               "machine": r.get("machine"), "flops_m": finite_or_none(r.get("flops_m")),
                               "latency_ms": finite_or_none(r.get("latency_ms")), "statistic": r.get("statistic"),
                               "achieved_gflops": None, "peak_gflops": None, "fraction": None, "verdict": None,
                               "note": None}
        if row["flops_m"] is None:
            row["note"] = "no profile record: `mobileone-bench profile MODEL --results DIR` stores one (`run` does too)"
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
                    info = (about or {}).get((str(row["machine"]), threads)) or {}
                    won = f" ({info['winner']} won)" if info.get("winner") else ""
                    theory = finite_or_none(info.get("theoretical_gflops"))
                    row["note"] = (f"above the measured peak{won}: the runtime did fewer operations than counted "
                                   f"(e.g. Winograd) or its kernels beat every probe" +
                                   (f"; above the theoretical {theory:.0f} GFLOP/s too, so fewer operations than "
                                    f"counted" if theory and row["achieved_gflops"] > theory else ""))
            else:
                row["note"] = "no peak for this machine and thread count (measured elsewhere?)"
        rows.append(row)
    rows.sort(key=lambda x: (str(x["runtime"]), x["threads"] or 0, -(x["fraction"] or -1), str(x["model"])))
    return rows


def cpu_latencies(store: Any, *, models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                  runtime: str | None = None, threads: int | None = None,
                  include_contended: bool = False) -> tuple[Any, list[str]]:
    """The CPU latency records a roofline is drawn from: the newest per model, runtime and thread count.

    Returns:
        ``(frame, notes)``: :func:`~mobileone_bench.store.frames.measurements`' long frame and its notes.

    Raises:
        AnalysisError: No CPU latency record with these filters.
    """
    frame, notes = measurements(store, devices=["cpu"], runtime=runtime, threads=threads, models=models,
                                exclude=exclude, by_threads=True, include_contended=include_contended)
    if frame.empty:
        raise AnalysisError(f"no CPU latency in {store.root} with these filters: run `mobileone-bench run` (or "
                            f"`mobileone-bench latency --device cpu MODEL...`) first")
    return frame, notes


def machines_and_threads(frame: Any) -> list[tuple[str, int]]:
    """The (machine fingerprint, threads) pairs of a frame's records, sorted: the peaks a roofline needs."""
    return sorted({(str(m), int(t)) for m, t in zip(frame["machine"], frame["threads"])
                   if finite_or_none(t) is not None})


def report(frame: Any, peaks: Iterable[dict[str, Any]], notes: Iterable[str] = ()) -> dict[str, Any]:
    """The roofline of a frame of CPU latencies, given the peaks (read from the store or measured by
    :mod:`mobileone_bench.pipeline.peak`).

    Args:
        frame: :func:`cpu_latencies`' frame.
        peaks: ``{"machine", "threads", "gflops", ...}`` entries; a pair without one gets a note and no fraction.
        notes: Notes so far (the records left out...).

    Returns:
        ``{"rows", "peaks", "notes", "columns", "thresholds"}``.
    """
    peaks = list(peaks)
    notes = list(notes)
    by_pair = {(str(p["machine"]), int(p["threads"])): float(p["gflops"]) for p in peaks}
    about = {(str(p["machine"]), int(p["threads"])): p for p in peaks}
    for p in peaks:
        theory = finite_or_none(p.get("theoretical_gflops"))
        if theory and float(p["gflops"]) > theory:
            notes.append(f"the measured peak ({float(p['gflops']):.1f} GFLOP/s at {p['threads']} thread(s)) is above "
                         f"the theoretical {theory:.1f}: the clock read is below the boost clock, or the core is not "
                         f"the one the CPU reports (a virtual machine)")
        if p.get("source") == "stored" and p.get("method") and str(p["method"]).startswith(PEAK_GEMM_ONLY):
            notes.append(f"the stored peak at {p['threads']} thread(s) is a GEMM alone (measured before the peak "
                         f"took the best of several kernels): `roofline --remeasure` measures it again")
    for machine, t in machines_and_threads(frame):
        if (machine, t) not in by_pair:
            notes.append(f"records of machine {machine} ({t} threads) were measured on another machine and no "
                         f"peak is stored for it: run `mobileone-bench roofline` there")
    return {"rows": roofline_rows(frame, by_pair, about), "peaks": peaks, "notes": notes, "columns": ROOFLINE_COLUMNS,
            "thresholds": {"compute_bound": COMPUTE_BOUND, "overhead_bound": OVERHEAD_BOUND}}


def roofline(store: Any, peaks: Iterable[dict[str, Any]] = (), *, models: Iterable[str] | None = None,
             exclude: Iterable[str] | None = None, runtime: str | None = None, threads: int | None = None,
             include_contended: bool = False) -> dict[str, Any]:
    """Achieved GFLOP/s and fraction of the peak for every stored CPU latency, each model once per runtime and thread
    count (the newest record of each), so thread scaling shows.

    Args:
        store: The results store (only read).
        peaks: The peaks of the records' (machine, threads) pairs (:func:`mobileone_bench.pipeline.peak.peaks`);
            a record without one gets no fraction.
        models: Names or wildcards to keep.
        exclude: Names or wildcards to drop.
        runtime: Keep this CPU runtime only.
        threads: Keep records with this thread count.
        include_contended: Keep latency records flagged contended (left out by default, with a note).

    Returns:
        As :func:`report`.

    Raises:
        AnalysisError: No CPU latency record.
    """
    frame, notes = cpu_latencies(store, models=models, exclude=exclude, runtime=runtime, threads=threads,
                                 include_contended=include_contended)
    return report(frame, peaks, notes)
