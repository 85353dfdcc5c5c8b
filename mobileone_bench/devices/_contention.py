"""What else the machine did while a model was timed: CPU time of other processes, steal time, load, frequency.

Steady contention makes numbers that are consistent and wrong (a coefficient of variation cannot see it), so every
timed block is bracketed by two readings of the machine:

* **other processes' CPU time**: the machine's busy CPU time (``/proc/stat``: user + nice + system + irq + softirq
  + steal) minus this process's own CPU time (``time.process_time``, all its threads: the runtime's workers
  included), as a fraction of the block's capacity (wall time x logical CPUs). On another OS, with ``psutil``
  installed, the same from ``psutil.cpu_times``;
* **steal**: the share of the machine's CPU time the hypervisor gave to other guests (``/proc/stat``);
* the 1-minute **load average** at the start and the end, and the **CPU frequency** where ``cpufreq`` is readable.

A block is *contended* when other processes used at least :data:`BLOCK_OTHER_CPU` (25%) of the machine or steal was
at least :data:`BLOCK_STEAL` (10%): with ``/proc/stat``'s 10 ms ticks a short block reads a few percent either way,
far below these thresholds, while one busy process on a 2-core machine is 50%. A record is flagged ``contended`` when
more than :data:`RECORD_SHARE` (a third) of its timed runs fell in contended blocks: a median (or a trimmed mean, or a
minimum) over all samples is still sound below that share, which interleaved rounds keep most records under.

:func:`wait_quiet` polls one-second windows until other processes use less than :data:`QUIET_OTHER_CPU` (10%) of the
machine.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from mobileone_bench.errors import MeasurementError

__all__ = ["ContentionSampler", "summarize_contention", "wait_quiet", "BLOCK_OTHER_CPU", "BLOCK_STEAL",
           "RECORD_SHARE", "QUIET_OTHER_CPU", "cpu_times"]

BLOCK_OTHER_CPU = 0.25
BLOCK_STEAL = 0.10
RECORD_SHARE = 1 / 3
QUIET_OTHER_CPU = 0.10

_PROC_STAT = "/proc/stat"


def cpu_times() -> dict[str, float] | None:
    """The machine's cumulative CPU seconds: ``{"busy", "steal", "total"}``, or ``None`` where unreadable."""
    try:
        with open(_PROC_STAT, encoding="ascii") as f:
            first = f.readline().split()
        if first and first[0] == "cpu":
            ticks = [int(v) for v in first[1:]]
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            user, nice, system, idle, iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq + steal
            return {"busy": busy / hz, "steal": steal / hz, "total": (busy + idle + iowait) / hz}
    except (OSError, ValueError):
        pass
    try:
        import psutil

        t = psutil.cpu_times()
        idle = getattr(t, "idle", 0.0) + getattr(t, "iowait", 0.0)
        total = sum(t)
        steal = getattr(t, "steal", 0.0)
        # guest time is already counted in user on Linux; elsewhere psutil has no such field
        return {"busy": total - idle - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0), "steal": steal,
                "total": total - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)}
    except Exception:  # noqa: BLE001 - no psutil, or it cannot read: contention is then unknown, not zero
        return None


def _frequency_mhz() -> float | None:
    """Mean current frequency of the CPUs that expose ``cpufreq`` (many VMs do not), in MHz."""
    base = "/sys/devices/system/cpu"
    values = []
    try:
        for name in os.listdir(base):
            if name.startswith("cpu") and name[3:].isdigit():
                try:
                    with open(f"{base}/{name}/cpufreq/scaling_cur_freq", encoding="ascii") as f:
                        values.append(int(f.read().strip()) / 1000.0)
                except (OSError, ValueError):
                    continue
    except OSError:
        return None
    return round(sum(values) / len(values), 1) if values else None


def _load_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


class ContentionSampler:
    """Brackets a timed block: ``token = sampler.start()`` ... ``reading = sampler.stop(token)``.

    The clocks are injectable for tests: ``machine`` returns :func:`cpu_times`' dict, ``own`` this process's CPU
    seconds, ``wall`` seconds, ``logical_cpus`` the machine's CPUs.
    """

    def __init__(self, *, machine: Callable[[], dict[str, float] | None] = cpu_times,
                 own: Callable[[], float] = time.process_time, wall: Callable[[], float] = time.perf_counter,
                 logical_cpus: int | None = None, frequency: Callable[[], float | None] = _frequency_mhz,
                 load: Callable[[], float | None] = _load_1m) -> None:
        self._machine, self._own, self._wall = machine, own, wall
        self._frequency, self._load = frequency, load
        self.logical_cpus = logical_cpus or os.cpu_count() or 1

    def start(self) -> dict[str, Any]:
        return {"machine": self._machine(), "own": self._own(), "wall": self._wall(), "load": self._load(),
                "mhz": self._frequency()}

    def stop(self, token: dict[str, Any]) -> dict[str, Any]:
        wall, own, machine = self._wall(), self._own(), self._machine()
        seconds = max(wall - token["wall"], 1e-9)
        reading: dict[str, Any] = {"seconds": round(seconds, 4), "load_1m_start": token["load"],
                                   "load_1m_end": self._load(), "mhz_start": token["mhz"], "mhz_end": self._frequency(),
                                   "other_cpu_s": None, "other_cpu": None, "steal": None}
        before = token["machine"]
        if before is not None and machine is not None:
            busy = machine["busy"] - before["busy"]
            total = machine["total"] - before["total"]
            other = max(0.0, busy - (own - token["own"]))
            reading["other_cpu_s"] = round(other, 4)
            reading["other_cpu"] = round(min(1.0, other / (seconds * self.logical_cpus)), 4)
            reading["steal"] = round((machine["steal"] - before["steal"]) / total, 4) if total > 0 else 0.0
        reading["contended"] = _block_contended(reading)
        return reading


def _block_contended(reading: dict[str, Any]) -> bool | None:
    if reading.get("other_cpu") is None:
        return None
    return bool(reading["other_cpu"] >= BLOCK_OTHER_CPU or (reading.get("steal") or 0.0) >= BLOCK_STEAL)


def summarize_contention(readings: Sequence[dict[str, Any]], block_sizes: Sequence[int]) -> dict[str, Any]:
    """Flat record fields from the readings of a model's blocks (``block_sizes[i]`` timed runs in block ``i``).

    ``contended`` is ``None`` when the machine could not be read (unknown, not quiet).
    """
    readings = list(readings)
    if not readings or all(r.get("other_cpu") is None for r in readings):
        return {"contention_source": None, "contended": None, "contended_share": None, "other_cpu": None,
                "other_cpu_max": None, "steal": None, "load_1m": None, "cpu_mhz_min": None, "cpu_mhz_max": None,
                "round_contended": [r.get("contended") for r in readings]}
    known = [(r, n) for r, n in zip(readings, block_sizes) if r.get("other_cpu") is not None]
    seconds = sum(r["seconds"] for r, _ in known) or 1e-9
    other = sum(r["other_cpu"] * r["seconds"] for r, _ in known) / seconds
    steal = sum((r.get("steal") or 0.0) * r["seconds"] for r, _ in known) / seconds
    runs = sum(n for _, n in known) or 1
    share = sum(n for r, n in known if r.get("contended")) / runs
    loads = [v for r in readings for v in (r.get("load_1m_start"), r.get("load_1m_end")) if v is not None]
    mhz = [v for r in readings for v in (r.get("mhz_start"), r.get("mhz_end")) if v is not None]
    return {
        "contention_source": "/proc/stat" if os.path.exists(_PROC_STAT) else "psutil",
        "contended": bool(share > RECORD_SHARE),
        "contended_share": round(share, 4),
        "other_cpu": round(other, 4),
        "other_cpu_max": max(r["other_cpu"] for r, _ in known),
        "steal": round(steal, 4),
        "load_1m": max(loads) if loads else None,
        "cpu_mhz_min": min(mhz) if mhz else None,
        "cpu_mhz_max": max(mhz) if mhz else None,
        "round_contended": [r.get("contended") for r in readings],
    }


def wait_quiet(timeout_s: float, *, window_s: float = 1.0, threshold: float = QUIET_OTHER_CPU,
               sampler: ContentionSampler | None = None, sleep: Callable[[float], None] = time.sleep,
               on_wait: Callable[[float, float], None] | None = None) -> float:
    """Wait until other processes use less than ``threshold`` of the machine over a ``window_s`` window.

    Returns:
        Seconds waited.

    Raises:
        MeasurementError: Still busy after ``timeout_s`` (one line with the last reading), or the machine's CPU time
            cannot be read here.
    """
    sampler = sampler or ContentionSampler()
    waited = 0.0
    while True:
        token = sampler.start()
        sleep(window_s)
        reading = sampler.stop(token)
        if reading["other_cpu"] is None:
            raise MeasurementError("--wait-quiet: this machine's CPU time cannot be read (no /proc/stat, no psutil)")
        if reading["other_cpu"] < threshold:
            return waited
        waited += window_s
        if on_wait is not None:
            on_wait(waited, reading["other_cpu"])
        if waited >= timeout_s:
            raise MeasurementError(
                f"--wait-quiet: the machine is still busy after {timeout_s:g} s (other processes used "
                f"{reading['other_cpu']:.0%} of its CPUs in the last second; quiet means < {threshold:.0%})")
