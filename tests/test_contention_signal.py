"""The per-block contention verdict: run-queue wait first, ticks only over long windows, unknown where unreadable.

Every reader is injected (a fake /proc/stat in its real format, fake schedstat and PSI readings, fake clocks), so no
test depends on this machine's load or speed; only the last one reads the real machine, and checks types only.
"""

from __future__ import annotations

import os

import pytest

from mobileone_bench.devices._contention import (
    BLOCK_OTHER_CPU,
    BLOCK_RUNQ_WAIT,
    BLOCK_STEAL,
    RECORD_SHARE,
    RUNQ_WAIT_FLOOR_S,
    TICK_MIN_WINDOW_S,
    ContentionSampler,
    cpu_pressure,
    cpu_times,
    parse_pressure,
    parse_schedstat,
    summarize_contention,
    thread_waits,
)

HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

OLD_FIELDS = {"contention_source", "contended", "contended_share", "other_cpu", "other_cpu_max", "steal", "load_1m",
              "cpu_mhz_min", "cpu_mhz_max", "round_contended"}
NEW_FIELDS = {"runq_wait_share", "runq_wait_max", "psi_cpu_share", "contention_basis"}
READING_FIELDS = {"seconds", "runq_wait_s", "runq_wait", "runq_threads", "psi_cpu_s", "psi_cpu", "other_cpu_s",
                  "other_cpu", "steal", "ticks_used", "load_1m_start", "load_1m_end", "mhz_start", "mhz_end",
                  "contention_basis", "contention_source", "contended"}


class FakeMachine:
    """A 2-CPU machine whose /proc/stat is a real-format file counting whole ticks, with this process's clocks,
    its threads' run-queue waits (ns) and the machine's CPU pressure (s)."""

    def __init__(self, path, cpus=2):
        self.path = path
        self.cpus = cpus
        self.wall = 100.0
        self.own = 5.0
        self.ticks = {"user": 10_000, "system": 4_000, "idle": 900_000, "steal": 0}
        self.waits: dict[int, int] | None = {1001: 50_000, 1002: 0}
        self.pressure: float | None = 12.0
        self.stat_readable = True
        self.write()

    def write(self):
        t = self.ticks
        self.path.write_text(f"cpu  {t['user']} 0 {t['system']} {t['idle']} 0 0 0 {t['steal']} 0 0\n"
                             "cpu0 0 0 0 0 0 0 0 0 0 0\nintr 0\n", encoding="ascii")

    def machine(self):
        return cpu_times(str(self.path)) if self.stat_readable else None

    def spend(self, seconds, *, own=0.0, user_ticks=0, steal_ticks=0, idle_ticks=0, wait_ns=None, pressure_s=0.0):
        """``seconds`` of wall time: this process used ``own`` CPU seconds, /proc/stat moved by whole ticks, and
        each thread in ``wait_ns`` waited that many more ns for a CPU."""
        self.wall += seconds
        self.own += own
        self.ticks["user"] += user_ticks
        self.ticks["steal"] += steal_ticks
        self.ticks["idle"] += idle_ticks
        self.write()
        if self.waits is not None:
            for tid, ns in (wait_ns or {}).items():
                self.waits[tid] = self.waits.get(tid, 0) + ns
        if self.pressure is not None:
            self.pressure += pressure_s

    def sampler(self):
        return ContentionSampler(machine=self.machine, own=lambda: self.own, wall=lambda: self.wall,
                                 logical_cpus=self.cpus, frequency=lambda: None, load=lambda: 0.1,
                                 threads=lambda: None if self.waits is None else dict(self.waits),
                                 pressure=lambda: self.pressure)


@pytest.fixture
def fake(tmp_path):
    return FakeMachine(tmp_path / "stat")


def _block(fake, seconds, **spend):
    s = fake.sampler()
    token = s.start()
    fake.spend(seconds, **spend)
    return s.stop(token)


def _long_idle_ticks(seconds, cpus=2, busy_ticks=0):
    return round(seconds * cpus * HZ) - busy_ticks


# ------------------------------------------------------------------------------------------------- the verdict


def test_an_idle_machine_read_with_coarse_ticks_is_not_contended_in_a_1ms_block(fake):
    # the false positive this replaces: 1 ms of this process's own work crossed a tick boundary, so /proc/stat says
    # the machine was busy for a whole tick while this process used 1 ms: "other processes" at 100% of 2 CPUs
    reading = _block(fake, 0.001, own=0.001, user_ticks=1, wait_ns={1001: 3_000})
    old_rule = reading["other_cpu"] >= BLOCK_OTHER_CPU or reading["steal"] >= BLOCK_STEAL
    assert old_rule and reading["other_cpu"] == 1.0  # the figure is kept...
    assert reading["ticks_used"] is False  # ...but marked as not used
    assert reading["contended"] is False
    assert reading["contention_basis"] == "runq_wait" and reading["contention_source"] == "schedstat"
    assert reading["runq_wait_s"] == pytest.approx(3e-6) and reading["runq_wait"] == pytest.approx(0.003)


def test_runq_wait_above_the_threshold_makes_a_short_block_contended(fake):
    waited = _block(fake, 0.001, own=0.0007, wait_ns={1001: 300_000})
    assert waited["runq_wait"] == pytest.approx(0.3) and waited["contended"] is True
    below = BLOCK_RUNQ_WAIT - 0.01
    assert _block(fake, 0.002, own=0.002, wait_ns={1001: int(below * 2e6)})["contended"] is False
    at = max(BLOCK_RUNQ_WAIT * 0.002, RUNQ_WAIT_FLOOR_S)
    assert _block(fake, 0.002, own=0.002, wait_ns={1001: int(at * 1e9) + 1})["contended"] is True


def test_a_short_wait_under_the_floor_is_not_contended_even_as_a_large_share(fake):
    seconds = RUNQ_WAIT_FLOOR_S  # a block so short that a wake-up's latency is a large share of it
    reading = _block(fake, seconds, own=seconds / 2, wait_ns={1001: int(RUNQ_WAIT_FLOOR_S * 0.9e9)})
    assert reading["runq_wait"] >= BLOCK_RUNQ_WAIT and reading["contended"] is False


def test_the_wait_of_several_threads_adds_up(fake):
    reading = _block(fake, 0.01, own=0.015, wait_ns={1001: 1_000_000, 1002: 2_000_000})
    assert reading["runq_wait_s"] == pytest.approx(0.003) and reading["runq_wait"] == pytest.approx(0.3)
    assert reading["runq_threads"] == 2 and reading["contended"] is True


def test_other_processes_cpu_counts_only_over_long_windows(fake):
    # another process used half the machine (one CPU of two); this process never waited
    short = _block(fake, 0.002, own=0.002, user_ticks=1)
    assert short["ticks_used"] is False and short["contended"] is False
    long_s = TICK_MIN_WINDOW_S
    busy_ticks = round(long_s * HZ) * 2  # this process's CPU (one CPU) and the other process's (the other)
    long = _block(fake, long_s, own=long_s, user_ticks=busy_ticks, idle_ticks=_long_idle_ticks(long_s, 2, busy_ticks))
    assert long["ticks_used"] is True and long["other_cpu"] == pytest.approx(0.5, abs=0.02)
    assert long["contended"] is True
    assert long["contention_basis"] == "runq_wait+other_cpu+steal"
    assert long["contention_source"] == "schedstat+/proc/stat"
    just_short = _block(fake, TICK_MIN_WINDOW_S * 0.99, own=0.4, user_ticks=busy_ticks)
    assert just_short["ticks_used"] is False and just_short["contended"] is False


def test_a_quiet_long_window_is_not_contended(fake):
    long_s = 1.0
    own_ticks = round(long_s * HZ)
    reading = _block(fake, long_s, own=long_s, user_ticks=own_ticks + 2,
                     idle_ticks=_long_idle_ticks(long_s, 2, own_ticks + 2), wait_ns={1001: 200_000})
    assert reading["ticks_used"] is True and reading["other_cpu"] < BLOCK_OTHER_CPU
    assert reading["contended"] is False


def test_steal_makes_a_long_block_contended_but_not_a_short_one(fake):
    long_s = 1.0
    steal = round(0.15 * long_s * 2 * HZ)
    own_ticks = round(long_s * HZ)
    stolen = _block(fake, long_s, own=long_s, user_ticks=own_ticks, steal_ticks=steal,
                    idle_ticks=_long_idle_ticks(long_s, 2, own_ticks + steal))
    assert stolen["steal"] == pytest.approx(0.15, abs=0.01) and stolen["runq_wait"] == 0.0
    assert stolen["contended"] is True
    # one steal tick in a 1 ms block says nothing about that millisecond
    short = _block(fake, 0.001, own=0.001, steal_ticks=1)
    assert short["steal"] == 1.0 and short["ticks_used"] is False and short["contended"] is False


def test_nothing_readable_is_unknown_never_a_guess(fake):
    fake.waits, fake.pressure, fake.stat_readable = None, None, False
    reading = _block(fake, 0.001, own=0.001)
    assert reading["contended"] is None and reading["contention_basis"] == "none"
    assert reading["contention_source"] is None
    assert all(reading[k] is None for k in ("runq_wait", "psi_cpu", "other_cpu", "steal", "ticks_used"))
    summary = summarize_contention([reading, reading], [5, 5])
    assert summary["contended"] is None and summary["contended_share"] is None
    assert summary["contention_basis"] == "none" and summary["contention_source"] is None
    assert summary["round_contended"] == [None, None]


def test_without_schedstat_a_short_block_is_unknown_and_a_long_one_is_judged_on_ticks(fake):
    fake.waits = None
    short = _block(fake, 0.001, own=0.001, user_ticks=1)
    assert short["contended"] is None and short["contention_basis"] == "none"
    assert short["other_cpu"] == 1.0  # read, not used
    own_ticks = round(HZ)
    long = _block(fake, 1.0, own=1.0, user_ticks=own_ticks, idle_ticks=_long_idle_ticks(1.0, 2, own_ticks))
    assert long["contended"] is False and long["contention_basis"] == "other_cpu+steal"
    assert long["contention_source"] == "/proc/stat"


def test_psutil_without_steal_is_judged_on_other_cpu_alone():
    wall = {"t": 0.0}
    state = {"busy": 0.0, "total": 0.0}

    def machine():
        return {"busy": state["busy"], "steal": None, "total": state["total"], "source": "psutil"}

    s = ContentionSampler(machine=machine, own=lambda: 0.0, wall=lambda: wall["t"], logical_cpus=2,
                          frequency=lambda: None, load=lambda: None, threads=lambda: None, pressure=lambda: None)
    token = s.start()
    wall["t"] += 1.0
    state["busy"] += 1.2
    state["total"] += 2.0
    reading = s.stop(token)
    assert reading["steal"] is None and reading["other_cpu"] == pytest.approx(0.6)
    assert reading["contended"] is True
    assert reading["contention_basis"] == "other_cpu" and reading["contention_source"] == "psutil"


def test_psi_is_recorded_but_takes_no_part_in_the_verdict(fake):
    # other processes queued among themselves for the whole block; this process's threads never waited
    reading = _block(fake, 0.002, own=0.002, pressure_s=0.002)
    assert reading["psi_cpu"] == pytest.approx(1.0) and reading["psi_cpu_s"] == pytest.approx(0.002)
    assert reading["contended"] is False and "psi" not in reading["contention_basis"]
    fake.pressure = None
    assert _block(fake, 0.002, own=0.002)["psi_cpu"] is None


def test_threads_that_appear_or_disappear_during_the_block(fake):
    fake.waits = {1: 100_000, 2: 200_000}
    s = fake.sampler()
    token = s.start()
    fake.spend(0.01, own=0.01)
    # thread 2 ended (its wait since the start is lost), thread 3 started and waited 400 us, thread 1 waited 50 us
    fake.waits = {1: 150_000, 3: 400_000}
    reading = s.stop(token)
    assert reading["runq_wait_s"] == pytest.approx(450e-6) and reading["runq_threads"] == 2
    # a reused thread id whose counter restarted counts as a new thread
    fake.waits = {7: 5_000_000}
    token = s.start()
    fake.waits = {7: 1_000}
    assert s.stop(token)["runq_wait_s"] == pytest.approx(1e-6)
    # no thread readable at the stop: unknown, not zero
    token = s.start()
    fake.waits = None
    assert s.stop(token)["runq_wait"] is None


# ------------------------------------------------------------------------------------------------- the record


def _reading(seconds, *, runq=None, other=0.0, steal=0.0, psi=None, contended=False, ticks=None, basis=None,
             source=None):
    r = {"seconds": seconds, "runq_wait_s": None if runq is None else runq * seconds, "runq_wait": runq,
         "runq_threads": 1, "psi_cpu_s": None if psi is None else psi * seconds, "psi_cpu": psi,
         "other_cpu_s": other * seconds * 2, "other_cpu": other, "steal": steal,
         "ticks_used": seconds >= TICK_MIN_WINDOW_S if ticks is None else ticks, "load_1m_start": 0.2,
         "load_1m_end": 0.3, "mhz_start": None, "mhz_end": None, "contended": contended}
    r["contention_basis"] = basis or ("runq_wait+other_cpu+steal" if r["ticks_used"] else "runq_wait")
    r["contention_source"] = source or ("schedstat+/proc/stat" if r["ticks_used"] else "schedstat")
    return r


def test_summarize_keeps_the_old_fields_and_aggregates_the_new_ones():
    short_busy = _reading(0.001, runq=0.5, other=1.0, psi=1.0, contended=True)
    short_quiet = _reading(0.001, runq=0.0, other=0.9, psi=0.0)
    long_quiet = _reading(0.998, runq=0.001, other=0.05, steal=0.01, psi=0.1)
    summary = summarize_contention([short_busy, short_quiet, long_quiet], [10, 10, 10])
    assert OLD_FIELDS | NEW_FIELDS <= set(summary)
    assert summary["contended"] is False and summary["contended_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["round_contended"] == [True, False, False]
    assert summary["runq_wait_share"] == pytest.approx((0.0005 + 0.000998) / 1.0, abs=1e-4)
    assert summary["runq_wait_max"] == 0.5
    assert summary["psi_cpu_share"] == pytest.approx((0.001 + 0.0998) / 1.0, abs=1e-4)
    # other_cpu pools every block; its maximum only counts blocks whose window was long enough for ticks
    assert summary["other_cpu"] == pytest.approx((0.001 + 0.0009 + 0.0499) / 1.0, abs=1e-4)
    assert summary["other_cpu_max"] == 0.05
    assert summary["steal"] == pytest.approx(0.00998, abs=1e-4)
    assert summary["contention_basis"] == "runq_wait+other_cpu+steal"
    assert summary["contention_source"] == "schedstat+/proc/stat"
    assert summary["load_1m"] == 0.3 and summary["cpu_mhz_min"] is None
    shorts = summarize_contention([short_busy, short_quiet], [5, 5])
    assert shorts["other_cpu_max"] is None and shorts["contention_basis"] == "runq_wait"
    assert shorts["contention_source"] == "schedstat"
    assert summarize_contention([short_busy, short_busy, short_quiet], [5, 5, 5])["contended"] is True


def test_the_record_share_counts_only_judged_blocks():
    unknown = {**_reading(0.001), "runq_wait": None, "runq_wait_s": None, "contended": None,
               "contention_basis": "none", "contention_source": None}
    busy = _reading(0.001, runq=0.4, contended=True)
    summary = summarize_contention([unknown, unknown, busy], [10, 10, 10])
    assert summary["contended_share"] == 1.0 and summary["contended"] is True
    assert summary["round_contended"] == [None, None, True]
    assert RECORD_SHARE < 1.0


def test_summarize_reads_readings_from_before_the_new_signals():
    old = {"seconds": 1.0, "other_cpu": 0.6, "other_cpu_s": 1.2, "steal": 0.0, "contended": True,
           "load_1m_start": 0.1, "load_1m_end": 0.2, "mhz_start": None, "mhz_end": None}
    summary = summarize_contention([old], [100])
    assert summary["contended"] is True and summary["other_cpu_max"] == 0.6
    assert summary["contention_basis"] == "other_cpu+steal"
    assert summary["runq_wait_share"] is None and summary["runq_wait_max"] is None
    assert summary["psi_cpu_share"] is None


# ------------------------------------------------------------------------------------------------- real formats


def test_parse_real_format_lines():
    assert parse_schedstat("2345678901 123456 789\n") == 123456
    text = ("some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    assert parse_pressure(text) == pytest.approx(0.012345)
    assert parse_pressure("some avg10=1.50 avg60=0.20 avg300=0.05 total=7\n") == pytest.approx(7e-6)
    for bad in ("", "12 34\n", "x y z\n"):
        with pytest.raises(ValueError):
            parse_schedstat(bad)
    with pytest.raises(ValueError):
        parse_pressure("full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n")


def test_thread_waits_reads_a_task_folder(tmp_path):
    tasks = tmp_path / "task"
    for tid, line in (("41", "1000 2000 3\n"), ("42", "5 70000 9\n")):
        (tasks / tid).mkdir(parents=True)
        (tasks / tid / "schedstat").write_text(line, encoding="ascii")
    (tasks / "43").mkdir()  # a thread that ended between the listing and the read (or no schedstat)
    (tasks / "not-a-thread").mkdir()
    assert thread_waits(str(tasks)) == {41: 2000, 42: 70000}
    assert thread_waits(str(tmp_path / "missing")) is None
    (tmp_path / "empty").mkdir()
    assert thread_waits(str(tmp_path / "empty")) is None


def test_cpu_pressure_and_cpu_times_read_their_files(tmp_path):
    psi = tmp_path / "cpu"
    psi.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", encoding="ascii")
    assert cpu_pressure(str(psi)) == pytest.approx(2.5)
    assert cpu_pressure(str(tmp_path / "missing")) is None
    stat = tmp_path / "stat"
    stat.write_text(f"cpu  {3 * HZ} 0 {HZ} {10 * HZ} {HZ} 0 0 {HZ} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n",
                    encoding="ascii")
    times = cpu_times(str(stat))
    assert times == {"busy": pytest.approx(5.0), "steal": pytest.approx(1.0), "total": pytest.approx(16.0),
                     "source": "/proc/stat"}


def test_the_real_sampler_reading_has_the_documented_fields():
    s = ContentionSampler()
    token = s.start()
    sum(i * i for i in range(20_000))
    reading = s.stop(token)
    assert set(reading) == READING_FIELDS
    assert isinstance(reading["seconds"], float) and reading["seconds"] > 0
    assert reading["contended"] is None or isinstance(reading["contended"], bool)
    assert isinstance(reading["contention_basis"], str)
    for key in ("runq_wait_s", "runq_wait", "psi_cpu_s", "psi_cpu", "other_cpu", "steal"):
        assert reading[key] is None or isinstance(reading[key], float)
    assert reading["runq_threads"] is None or isinstance(reading["runq_threads"], int)
    assert reading["contention_source"] is None or isinstance(reading["contention_source"], str)
    summary = summarize_contention([reading], [1])
    assert OLD_FIELDS | NEW_FIELDS <= set(summary)
