"""Was a timed block disturbed? This process's run-queue wait, steal, other processes' CPU, CPU pressure.

Steady contention makes numbers that are consistent and wrong (a coefficient of variation cannot see it), so every
timed block is bracketed by two readings (:class:`ContentionSampler`) and judged on its own.

Signals
-------

* **Run-queue wait** (``runq_wait``, the primary signal): the nanoseconds this process's threads spent runnable but
  waiting for a CPU, from the second field of ``/proc/self/task/<tid>/schedstat`` (the scheduler's ``run_delay``,
  updated at every context switch). ``runq_wait_s`` is the sum over the threads present at the stop of (wait at the
  stop - wait at the start); a thread that started during the block counts with all its wait (its counter started
  at zero), a thread that ended during the block counts nothing (its counter cannot be read any more: the figure is
  then a lower bound). ``runq_wait = runq_wait_s / wall seconds`` is the mean number of this process's threads that
  were waiting for a CPU during the block: 0.1 is one thread kept off the CPUs a tenth of the block, and it can exceed
  1 when several threads wait at once. A timed thread that waits for a CPU is exactly what corrupts a sample, and
  this signal sees that and nothing else: it has no tick to round to, so it is as right for a 1 ms block as for a
  minute, and it cannot read this process's own work, an idle machine, or other processes queueing among themselves
  as contention. It does not see host steal (the guest kernel believes the thread ran).
* **Steal** (``steal``): the share of the machine's CPU time the hypervisor gave to other guests (``/proc/stat``).
* **Other processes' CPU** (``other_cpu``): the machine's busy CPU time (``/proc/stat``: user + nice + system + irq
  + softirq + steal) minus this process's own CPU time (``time.process_time``), as a fraction of the block's capacity
  (wall time x logical CPUs). On another OS, with ``psutil`` installed, the same from ``psutil.cpu_times`` (which
  has no steal there).
* **CPU pressure** (``psi_cpu``): the growth of ``some ... total=`` in ``/proc/pressure/cpu`` (microseconds during
  which at least one task of the machine waited for a CPU) over the block, as a share of its wall time. Recorded, not
  part of the verdict: it is machine-wide and also counts other processes waiting among themselves (two busy
  processes sharing one CPU of two read about 50% while this process has the other CPU to itself and loses nothing),
  so as a verdict it would accuse blocks that ran undisturbed, which is the error the run-queue wait removes; and a
  kernel with PSI (Linux >= 4.20) has ``schedstat`` too, so it is never the only signal. It says whether a record
  was measured on a saturated machine.
* the 1-minute **load average** at the start and the end, and the **CPU frequency** where ``cpufreq`` is readable.

Ticks and the minimum window
----------------------------

``/proc/stat`` counts in ``USER_HZ`` ticks (10 ms), charged at the scheduler tick: a tick period goes to whatever
ran when the tick fired, and steal is credited at ticks. A reading over ``w`` seconds on ``n`` CPUs can be wrong by
up to about ``2n + 2`` ticks (a kernel tick per CPU at each end, one tick of rounding per read) against a capacity of
``100 * n * w`` ticks. Over a 1 ms block on 2 CPUs the capacity is 0.2 ticks, so one tick of this tool's own work
reads as another process using the whole machine: that is how idle machines were read as contended. Other
processes' CPU and steal therefore take part in the verdict only over windows of at least :data:`TICK_MIN_WINDOW_S`
(0.5 s): there the worst case is 6 ticks in 100 on 2 CPUs (6%), 4 in 50 on one (8%) and tends to 2% on many, below
:data:`BLOCK_STEAL` (10%) and a quarter of :data:`BLOCK_OTHER_CPU` (25%). Shorter blocks keep both figures in the
reading (``ticks_used`` false); a record pools them over all its blocks, a figure that means something once its
blocks add up to the minimum window (a record of a few millisecond blocks still reads 10-20% on an idle machine).

Verdict
-------

A block is *contended* when a signal that takes part says so:

* ``runq_wait >= BLOCK_RUNQ_WAIT`` (:data:`BLOCK_RUNQ_WAIT`) and ``runq_wait_s >= RUNQ_WAIT_FLOOR_S``
  (:data:`RUNQ_WAIT_FLOOR_S`);
* over a window of at least :data:`TICK_MIN_WINDOW_S`: ``other_cpu >= BLOCK_OTHER_CPU`` (one busy process on a
  2-core machine is 50%) or ``steal >= BLOCK_STEAL``.

``contention_basis`` names the signals that took part (``"runq_wait+other_cpu+steal"``, ``"runq_wait"``...), and
``contention_source`` where they were read (``"schedstat+/proc/stat"``...). Where none could take part (no ``/proc``,
as on macOS, and a block shorter than the minimum window or no ``psutil``) the basis is ``"none"`` and ``contended``
is ``None``: unknown, never a guess.

Thresholds, from ``benchmarks/contention_signal.py`` on the 2-core development VM (AMD EPYC under KVM, Linux 6.18;
onnxruntime on ``mobileone_tiny`` at 64x64 with 2 threads, 0.08 ms a run; no other process busy in the 10 s before):

* idle, 400 blocks of 1.5 ms: run-queue wait 0 at the median, 40 µs (2.7% of the block) at the 99th percentile;
  the verdict flags 3, which waited 10-86% of the block and whose runs were 23% slower on average (something else
  did run). The old rule (other processes' CPU >= 25% whatever the window) flagged 128 of the 400. Idle blocks of
  about 0.5 s waited 0.9% of their time.
* two ``while True: pass`` processes, 400 blocks of 1.5 ms: the verdict flags 87, each of which waited at least 20%
  of the block (a preemption costs a scheduler slice, 4-8 ms here); their mean run was 0.29 ms, the other 313 blocks'
  0.067 ms, as fast as idle. Blocks of 27 ms and 1 s all waited (0.9 and 1.05 of their time: two threads each kept
  off half the time). CPU pressure was at or above 50% in 168 of the short blocks, twice the 87 this process waited
  in.

So :data:`BLOCK_RUNQ_WAIT` (10%) sits almost 4x above the idle 99th percentile and 2x below the burst waits, and
:data:`RUNQ_WAIT_FLOOR_S` (100 µs) above the idle 99th percentile (40 µs) and far below one preemption.

A record is flagged ``contended`` when more than :data:`RECORD_SHARE` (a third) of its judged timed runs fell in
contended blocks: a median (or a trimmed mean, or a minimum) over all samples is still sound below that share, which
interleaved rounds keep most records under.

:func:`wait_quiet` polls one-second windows (100 ticks per CPU: other processes' CPU means something there) until
other processes use less than :data:`QUIET_OTHER_CPU` (10%) of the machine.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping, Sequence

from mobileone_bench.errors import MeasurementError

__all__ = ["ContentionSampler", "summarize_contention", "wait_quiet", "BLOCK_RUNQ_WAIT", "RUNQ_WAIT_FLOOR_S",
           "BLOCK_OTHER_CPU", "BLOCK_STEAL", "TICK_MIN_WINDOW_S", "RECORD_SHARE", "QUIET_OTHER_CPU", "cpu_times",
           "thread_waits", "cpu_pressure", "parse_schedstat", "parse_pressure"]

#: A block is contended when this process's threads waited for a CPU at least this share of its wall time...
BLOCK_RUNQ_WAIT = 0.10
#: ...and at least this long in all (a few wake-ups' worth of scheduler latency is not contention).
RUNQ_WAIT_FLOOR_S = 100e-6
#: Other processes' share of the machine that makes a block contended (windows of TICK_MIN_WINDOW_S or more).
BLOCK_OTHER_CPU = 0.25
#: Steal share that makes a block contended (windows of TICK_MIN_WINDOW_S or more).
BLOCK_STEAL = 0.10
#: The shortest window over which the 10 ms ticks of /proc/stat take part in the verdict.
TICK_MIN_WINDOW_S = 0.5
#: A record is flagged when more than this share of its judged runs fell in contended blocks.
RECORD_SHARE = 1 / 3
#: wait_quiet returns once other processes use less than this share of the machine.
QUIET_OTHER_CPU = 0.10

_PROC_STAT = "/proc/stat"
_STAT_SOURCE = "/proc/stat"  # its name in contention_source, whatever file was read
_TASKS = "/proc/self/task"
_PSI_CPU = "/proc/pressure/cpu"
_SCHEDSTAT = "schedstat"
_SIGNALS = ("runq_wait", "other_cpu", "steal")
_SOURCES = (_SCHEDSTAT, _STAT_SOURCE, "psutil")


def cpu_times(stat: str = _PROC_STAT) -> dict[str, Any] | None:
    """The machine's cumulative CPU seconds, or ``None`` where unreadable.

    Args:
        stat: The file in ``/proc/stat``'s format to read (tests give another); ``psutil`` where it is unreadable.

    Returns:
        ``{"busy", "steal", "total", "source"}``: seconds, with ``steal`` ``None`` where the source has no such
        figure (``psutil`` outside Linux), and ``source`` ``"/proc/stat"`` or ``"psutil"``.
    """
    try:
        with open(stat, encoding="ascii") as f:
            first = f.readline().split()
        if first and first[0] == "cpu":
            ticks = [int(v) for v in first[1:]]
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            user, nice, system, idle, iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq + steal
            return {"busy": busy / hz, "steal": steal / hz, "total": (busy + idle + iowait) / hz,
                    "source": _STAT_SOURCE}
    except (OSError, ValueError):
        pass
    try:
        import psutil

        t = psutil.cpu_times()
        idle = getattr(t, "idle", 0.0) + getattr(t, "iowait", 0.0)
        guest = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
        total = sum(t) - guest  # guest time is already counted in user on Linux; elsewhere psutil has no such field
        return {"busy": total - idle, "steal": getattr(t, "steal", None), "total": total, "source": "psutil"}
    except Exception:  # noqa: BLE001 - no psutil, or it cannot read: contention is then unknown, not zero
        return None


def parse_schedstat(text: str) -> int:
    """Run-queue wait in nanoseconds from a ``/proc/<pid>/task/<tid>/schedstat`` line (``"on_cpu_ns wait_ns slices"``).

    Raises:
        ValueError: Not three integers.
    """
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"not a schedstat line: {text!r}")
    return int(fields[1])


def parse_pressure(text: str) -> float:
    """Cumulative seconds of ``some`` pressure from the text of ``/proc/pressure/cpu`` (its ``total=`` is in µs).

    Raises:
        ValueError: No ``some`` line with a ``total=`` field.
    """
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "some":
            for f in fields[1:]:
                if f.startswith("total="):
                    return int(f[len("total="):]) / 1e6
    raise ValueError(f"no 'some ... total=' line in {text!r}")


def thread_waits(tasks: str = _TASKS) -> dict[int, int] | None:
    """Cumulative run-queue wait (ns) of each thread of this process, by thread id; ``None`` where unreadable."""
    try:
        names = os.listdir(tasks)
    except OSError:
        return None
    waits: dict[int, int] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(tasks, name, "schedstat"), encoding="ascii") as f:
                waits[int(name)] = parse_schedstat(f.read())
        except (OSError, ValueError):
            continue  # the thread ended between the listing and the read, or the kernel has no schedstat
    return waits or None


def cpu_pressure(path: str = _PSI_CPU) -> float | None:
    """Cumulative seconds during which some task of the machine waited for a CPU (PSI); ``None`` where unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            return parse_pressure(f.read())
    except (OSError, ValueError):  # no such file, or PSI compiled in but disabled (EOPNOTSUPP)
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


def _wait_delta(before: Mapping[int, int] | None, after: Mapping[int, int] | None) -> tuple[float, int] | None:
    """Seconds of run-queue wait between two :func:`thread_waits` readings, and the threads counted."""
    if before is None or after is None:
        return None
    total = 0
    for tid, ns in after.items():
        prev = before.get(tid)
        # a new thread (or a reused id whose counter restarted) waited all of its counter during the block
        total += ns - prev if prev is not None and ns >= prev else ns
    return total / 1e9, len(after)


class ContentionSampler:
    """Brackets a timed block: ``token = sampler.start()`` ... ``reading = sampler.stop(token)``.

    Every reader is injectable for tests; one that returns ``None`` means "not readable here".

    Args:
        machine: :func:`cpu_times`' dict (``source`` optional).
        own: This process's CPU seconds.
        wall: Wall-clock seconds.
        logical_cpus: The machine's CPUs.
        frequency: Mean CPU frequency in MHz.
        load: 1-minute load average.
        threads: :func:`thread_waits`' mapping of thread id to cumulative run-queue wait in ns.
        pressure: :func:`cpu_pressure`' cumulative seconds of CPU pressure.

    The reading (a flat dict) has ``seconds``; ``runq_wait_s``, ``runq_wait``, ``runq_threads``; ``psi_cpu_s``,
    ``psi_cpu``; ``other_cpu_s``, ``other_cpu``, ``steal``, ``ticks_used``; ``load_1m_start``, ``load_1m_end``,
    ``mhz_start``, ``mhz_end``; ``contention_basis``, ``contention_source`` and ``contended`` (see the module).
    A figure that could not be read is ``None``.
    """

    def __init__(self, *, machine: Callable[[], dict[str, Any] | None] = cpu_times,
                 own: Callable[[], float] = time.process_time, wall: Callable[[], float] = time.perf_counter,
                 logical_cpus: int | None = None, frequency: Callable[[], float | None] = _frequency_mhz,
                 load: Callable[[], float | None] = _load_1m,
                 threads: Callable[[], Mapping[int, int] | None] = thread_waits,
                 pressure: Callable[[], float | None] = cpu_pressure) -> None:
        self._machine, self._own, self._wall = machine, own, wall
        self._frequency, self._load = frequency, load
        self._threads, self._pressure = threads, pressure
        self.logical_cpus = logical_cpus or os.cpu_count() or 1

    def start(self) -> dict[str, Any]:
        token = {"load": self._load(), "mhz": self._frequency(), "machine": self._machine(),
                 "pressure": self._pressure(), "own": self._own(), "wall": self._wall()}
        token["threads"] = self._threads()  # last: the wait window lies inside the wall window
        return token

    def stop(self, token: dict[str, Any]) -> dict[str, Any]:
        threads = self._threads()
        wall, own, pressure, machine = self._wall(), self._own(), self._pressure(), self._machine()
        seconds = max(wall - token["wall"], 1e-9)
        reading: dict[str, Any] = {"seconds": round(seconds, 6), "runq_wait_s": None, "runq_wait": None,
                                   "runq_threads": None, "psi_cpu_s": None, "psi_cpu": None, "other_cpu_s": None,
                                   "other_cpu": None, "steal": None, "ticks_used": None,
                                   "load_1m_start": token["load"], "load_1m_end": self._load(),
                                   "mhz_start": token["mhz"], "mhz_end": self._frequency()}
        wait = _wait_delta(token["threads"], threads)
        if wait is not None:
            reading["runq_wait_s"] = round(wait[0], 9)
            reading["runq_wait"] = round(wait[0] / seconds, 4)
            reading["runq_threads"] = wait[1]
        if token["pressure"] is not None and pressure is not None:
            pressed = max(0.0, pressure - token["pressure"])
            reading["psi_cpu_s"] = round(pressed, 6)
            reading["psi_cpu"] = round(min(1.0, pressed / seconds), 4)
        before = token["machine"]
        ticks_source = None
        if before is not None and machine is not None:
            busy = machine["busy"] - before["busy"]
            total = machine["total"] - before["total"]
            other = max(0.0, busy - (own - token["own"]))
            reading["other_cpu_s"] = round(other, 4)
            reading["other_cpu"] = round(min(1.0, other / (seconds * self.logical_cpus)), 4)
            if machine.get("steal") is not None and before.get("steal") is not None:
                reading["steal"] = round((machine["steal"] - before["steal"]) / total, 4) if total > 0 else 0.0
            reading["ticks_used"] = seconds >= TICK_MIN_WINDOW_S
            ticks_source = machine.get("source") or _legacy_source()
        basis, reading["contended"] = _verdict(reading)
        sources = ([_SCHEDSTAT] if "runq_wait" in basis else []) + \
            ([ticks_source] if reading["ticks_used"] and ticks_source else [])
        reading["contention_basis"] = "+".join(basis) or "none"
        reading["contention_source"] = "+".join(sources) or None
        return reading


def _legacy_source() -> str:
    return _STAT_SOURCE if os.path.exists(_PROC_STAT) else "psutil"


def _verdict(reading: Mapping[str, Any]) -> tuple[list[str], bool | None]:
    """The signals that take part in a block's verdict, and the verdict (``None``: none could take part)."""
    basis: list[str] = []
    contended = False
    if reading.get("runq_wait") is not None:
        basis.append("runq_wait")
        contended |= reading["runq_wait"] >= BLOCK_RUNQ_WAIT and reading["runq_wait_s"] >= RUNQ_WAIT_FLOOR_S
    if reading.get("other_cpu") is not None and reading.get("ticks_used"):
        basis.append("other_cpu")
        contended |= reading["other_cpu"] >= BLOCK_OTHER_CPU
        if reading.get("steal") is not None:
            basis.append("steal")
            contended |= reading["steal"] >= BLOCK_STEAL
    return basis, (bool(contended) if basis else None)


def _basis_of(reading: Mapping[str, Any]) -> list[str]:
    """The signals a reading was judged on (a reading from before ``contention_basis``: other CPU and steal)."""
    if "contention_basis" in reading:
        return [s for s in str(reading["contention_basis"]).split("+") if s in _SIGNALS]
    return ["other_cpu", "steal"] if reading.get("other_cpu") is not None else []


def _sources_of(reading: Mapping[str, Any]) -> list[str]:
    if "contention_source" in reading:
        return [s for s in str(reading["contention_source"] or "").split("+") if s]
    return [_legacy_source()] if reading.get("other_cpu") is not None else []


def _weighted(readings: Sequence[Mapping[str, Any]], seconds_key: str | None, share_key: str) -> float | None:
    """Time-weighted mean of a share over the readings that have it (``seconds_key``: its seconds, if recorded)."""
    have = [r for r in readings if r.get(share_key) is not None]
    wall = sum(r["seconds"] for r in have)
    if not have or wall <= 0:
        return None
    if seconds_key is not None and all(r.get(seconds_key) is not None for r in have):
        return sum(r[seconds_key] for r in have) / wall
    return sum(r[share_key] * r["seconds"] for r in have) / wall


def summarize_contention(readings: Sequence[dict[str, Any]], block_sizes: Sequence[int]) -> dict[str, Any]:
    """Flat record fields from the readings of a model's blocks (``block_sizes[i]`` timed runs in block ``i``).

    Returns:
        ``contended`` (more than :data:`RECORD_SHARE` of the judged runs in contended blocks; ``None`` when no block
        could be judged: unknown, not quiet), ``contended_share``, ``round_contended`` (each block's verdict);
        ``contention_basis`` (the signals that took part in any block, or ``"none"``) and ``contention_source``
        (where they were read, ``None`` when nothing was); time-weighted over the blocks: ``runq_wait_share``,
        ``psi_cpu_share``, ``other_cpu`` and ``steal`` (pooled over all blocks, short ones included: figures, not
        verdicts, and tick-rounded unless the blocks add up to :data:`TICK_MIN_WINDOW_S`), with ``runq_wait_max``
        (the worst block) and ``other_cpu_max`` (the worst block whose window was long enough for ticks; ``None``
        when none was); ``load_1m`` (the highest), ``cpu_mhz_min`` and ``cpu_mhz_max``.
    """
    readings = list(readings)
    judged = [(r, n) for r, n in zip(readings, block_sizes) if r.get("contended") is not None]
    runs = sum(n for _, n in judged)
    share = sum(n for r, n in judged if r.get("contended")) / runs if runs else None
    basis = {s for r in readings for s in _basis_of(r)}
    sources = {s for r in readings for s in _sources_of(r)}
    other = _weighted(readings, None, "other_cpu")
    runq = _weighted(readings, "runq_wait_s", "runq_wait")
    psi = _weighted(readings, "psi_cpu_s", "psi_cpu")
    steal = _weighted(readings, None, "steal")
    ticked = [r["other_cpu"] for r in readings if r.get("other_cpu") is not None and r.get("ticks_used", True)]
    runq_max = [r["runq_wait"] for r in readings if r.get("runq_wait") is not None]
    loads = [v for r in readings for v in (r.get("load_1m_start"), r.get("load_1m_end")) if v is not None]
    mhz = [v for r in readings for v in (r.get("mhz_start"), r.get("mhz_end")) if v is not None]
    return {
        "contention_source": "+".join(s for s in _SOURCES if s in sources) or None,
        "contention_basis": "+".join(s for s in _SIGNALS if s in basis) or "none",
        "contended": None if share is None else bool(share > RECORD_SHARE),
        "contended_share": None if share is None else round(share, 4),
        "runq_wait_share": None if runq is None else round(runq, 4),
        "runq_wait_max": max(runq_max) if runq_max else None,
        "psi_cpu_share": None if psi is None else round(min(1.0, psi), 4),
        "other_cpu": None if other is None else round(other, 4),
        "other_cpu_max": max(ticked) if ticked else None,
        "steal": None if steal is None else round(steal, 4),
        "load_1m": max(loads) if loads else None,
        "cpu_mhz_min": min(mhz) if mhz else None,
        "cpu_mhz_max": max(mhz) if mhz else None,
        "round_contended": [r.get("contended") for r in readings],
    }


def wait_quiet(timeout_s: float, *, window_s: float = 1.0, threshold: float = QUIET_OTHER_CPU,
               sampler: ContentionSampler | None = None, sleep: Callable[[float], None] = time.sleep,
               on_wait: Callable[[float, float], None] | None = None) -> float:
    """Wait until other processes use less than ``threshold`` of the machine over a ``window_s`` window.

    Other processes' CPU is the right signal here (this process sleeps, so its run-queue wait says nothing), and a
    one-second window holds enough ticks for it (see the module). CPU pressure is not needed on top: below 10% of
    the machine busy, tasks rarely queue.

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
