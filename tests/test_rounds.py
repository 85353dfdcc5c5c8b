"""Interleaved rounds (the scheduler) and contention detection (with fake clocks), no timing assertions."""

from __future__ import annotations

import itertools

import pytest

from mobileone_bench.devices._contention import (
    BLOCK_OTHER_CPU,
    ContentionSampler,
    summarize_contention,
    wait_quiet,
)
from mobileone_bench.devices._rounds import Entry, plan_rounds, run_rounds
from mobileone_bench.errors import MeasurementError

# ------------------------------------------------------------------------------------------------------- the plan


@pytest.mark.parametrize("runs,rounds,sizes", [(100, 5, [20] * 5), (10, 3, [4, 3, 3]), (3, 5, [1, 1, 1]),
                                               (7, 1, [7])])
def test_block_sizes_split_the_runs(runs, rounds, sizes):
    plan = plan_rounds(runs, 10, rounds)
    assert plan.block_sizes() == sizes
    assert sum(plan.block_sizes()) == runs
    assert plan.rounds == len(sizes)  # capped at runs: every block times at least one run


def test_orders_are_seeded_permutations():
    plan = plan_rounds(100, 10, 5, seed=7)
    orders = [plan.order(r, 9) for r in range(5)]
    assert all(sorted(o) == list(range(9)) for o in orders)
    assert orders == [plan_rounds(100, 10, 5, seed=7).order(r, 9) for r in range(5)]  # reproducible
    assert len({tuple(o) for o in orders}) > 1  # a fresh order each round
    other = [plan_rounds(100, 10, 5, seed=8).order(r, 9) for r in range(5)]
    assert other != orders  # the seed matters


def test_bad_plans_are_refused():
    for args in [(0, 1, 1), (10, -1, 1), (10, 1, 0)]:
        with pytest.raises(ValueError):
            plan_rounds(*args)


# -------------------------------------------------------------------------------------------------- the rounds


class _Fake:
    """A block that returns fake samples and logs (name, warmup, runs) of every call."""

    counter = itertools.count()

    def __init__(self, name, log, fail_at=None, interrupt_at=None):
        self.name, self.log, self.fail_at, self.interrupt_at, self.calls = name, log, fail_at, interrupt_at, 0

    def __call__(self, warmup, runs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("device lost")
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.log.append((self.name, warmup, runs))
        return [float(next(self.counter)) for _ in range(runs)]


def test_every_round_visits_every_model_in_the_plans_order():
    log = []
    names = ["a", "b", "c", "d"]
    plan = plan_rounds(10, 5, 3, round_warmup=2, seed=3)
    results = run_rounds([Entry(n, _Fake(n, log)) for n in names], plan)
    sizes = plan.block_sizes()
    expected = [(names[i], 5 if r == 0 else 2, sizes[r]) for r in range(3) for i in plan.order(r, 4)]
    assert log == expected  # order, warm-ups (full first, short later) and block sizes
    for name, res in results.items():
        assert len(res.samples) == 10 and res.block_sizes == sizes and res.error is None
        assert res.positions == [plan.order(r, 4).index(names.index(name)) for r in range(3)]
        assert [len(b) for b in res.round_samples()] == sizes
        assert res.samples == sorted(res.samples)  # time order, round by round


def test_a_failing_model_is_recorded_and_the_others_go_on():
    log = []
    entries = [Entry("ok", _Fake("ok", log)), Entry("bad", _Fake("bad", log, fail_at=2))]
    results = run_rounds(entries, plan_rounds(9, 0, 3))
    assert results["ok"].error is None and len(results["ok"].samples) == 9
    bad = results["bad"]
    assert bad.error.startswith("round 2 of 3: RuntimeError: device lost")
    assert len(bad.samples) == 3 and bad.block_sizes == [3]  # its first round is kept
    assert sum(1 for name, _, _ in log if name == "bad") == 1  # left out of the later rounds


def test_an_interrupt_carries_what_was_measured():
    log = []
    entries = [Entry("a", _Fake("a", log)), Entry("b", _Fake("b", log, interrupt_at=2))]
    with pytest.raises(KeyboardInterrupt) as info:
        run_rounds(entries, plan_rounds(6, 0, 3, seed=1))
    partial = info.value.partial
    assert set(partial) == {"a", "b"}
    assert len(partial["b"].samples) == 2 and partial["b"].block_sizes == [2]
    assert len(partial["a"].samples) in (2, 4)  # a may or may not have run in round 2 before b was interrupted


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError):
        run_rounds([Entry("a", _Fake("a", [])), Entry("a", _Fake("a", []))], plan_rounds(2, 0, 1))


# ---------------------------------------------------------------------------------------------- the contention


class _Clock:
    """Injectable clocks: advance them between start() and stop() to fake what the machine did."""

    def __init__(self, cpus=2):
        self.wall = 0.0
        self.own = 0.0
        self.busy = 0.0
        self.steal = 0.0
        self.idle = 0.0
        self.readable = True
        self.cpus = cpus

    def machine(self):
        if not self.readable:
            return None
        return {"busy": self.busy, "steal": self.steal, "total": self.busy + self.idle}

    def spend(self, seconds, own_cpu, other_cpu, steal=0.0):
        """``seconds`` of wall time in which this process used ``own_cpu`` CPU-seconds and others ``other_cpu``."""
        self.wall += seconds
        self.own += own_cpu
        self.busy += own_cpu + other_cpu + steal
        self.steal += steal
        self.idle += max(0.0, seconds * self.cpus - own_cpu - other_cpu - steal)

    def sampler(self):
        # no run-queue or pressure readings: these tests are about the tick signals (tests/test_contention_signal.py
        # covers the others), and this machine's real ones would mix with the fake clocks
        return ContentionSampler(machine=self.machine, own=lambda: self.own, wall=lambda: self.wall,
                                 logical_cpus=self.cpus, frequency=lambda: 2400.0, load=lambda: 0.5,
                                 threads=lambda: None, pressure=lambda: None)


def test_a_quiet_block_is_not_contended():
    clock = _Clock()
    s = clock.sampler()
    token = s.start()
    clock.spend(1.0, own_cpu=1.9, other_cpu=0.04)
    reading = s.stop(token)
    assert reading["other_cpu"] == pytest.approx(0.02)
    assert reading["contended"] is False
    assert reading["mhz_start"] == 2400.0 and reading["load_1m_end"] == 0.5


def test_other_processes_and_steal_make_a_block_contended():
    clock = _Clock()
    s = clock.sampler()
    token = s.start()
    clock.spend(2.0, own_cpu=2.0, other_cpu=2.0)  # one busy process on a 2-CPU machine
    busy = s.stop(token)
    assert busy["other_cpu"] == pytest.approx(0.5) and busy["contended"] is True
    token = s.start()
    clock.spend(1.0, own_cpu=1.6, other_cpu=0.0, steal=0.3)
    stolen = s.stop(token)
    assert stolen["steal"] == pytest.approx(0.15) and stolen["contended"] is True
    # just below the threshold stays quiet
    token = s.start()
    clock.spend(1.0, own_cpu=1.0, other_cpu=2 * BLOCK_OTHER_CPU - 0.02)
    assert s.stop(token)["contended"] is False


def test_a_record_is_flagged_when_over_a_third_of_its_runs_were_contended():
    quiet = {"seconds": 1.0, "other_cpu": 0.02, "steal": 0.0, "contended": False, "load_1m_start": 0.1,
             "load_1m_end": 0.2, "mhz_start": 2000.0, "mhz_end": 2400.0}
    busy = {**quiet, "other_cpu": 0.6, "contended": True, "load_1m_end": 2.5}
    one_in_five = summarize_contention([quiet, busy, quiet, quiet, quiet], [20] * 5)
    assert one_in_five["contended"] is False and one_in_five["contended_share"] == pytest.approx(0.2)
    assert one_in_five["other_cpu_max"] == 0.6 and one_in_five["other_cpu"] == pytest.approx(0.136)
    assert one_in_five["load_1m"] == 2.5 and (one_in_five["cpu_mhz_min"], one_in_five["cpu_mhz_max"]) == (2000, 2400)
    assert one_in_five["round_contended"] == [False, True, False, False, False]
    two_in_five = summarize_contention([quiet, busy, busy, quiet, quiet], [20] * 5)
    assert two_in_five["contended"] is True and two_in_five["contended_share"] == pytest.approx(0.4)
    # one block (the blocked protocol): all or nothing
    assert summarize_contention([busy], [100])["contended"] is True
    assert summarize_contention([quiet], [100])["contended"] is False


def test_an_unreadable_machine_is_unknown_not_quiet():
    clock = _Clock()
    clock.readable = False
    s = clock.sampler()
    token = s.start()
    clock.spend(1.0, 1.0, 1.0)
    reading = s.stop(token)
    assert reading["other_cpu"] is None and reading["contended"] is None
    summary = summarize_contention([reading], [100])
    assert summary["contended"] is None and summary["contention_source"] is None


def test_wait_quiet_returns_once_the_machine_is_quiet():
    clock = _Clock()
    others = iter([1.0, 0.8, 0.05])  # CPU-seconds of other processes in each 1 s window
    waits = []

    def sleep(seconds):
        clock.spend(seconds, own_cpu=0.0, other_cpu=next(others))

    waited = wait_quiet(30, sampler=clock.sampler(), sleep=sleep, on_wait=lambda t, busy: waits.append((t, busy)))
    assert waited == 2.0
    assert [round(b, 2) for _, b in waits] == [0.5, 0.4]


def test_wait_quiet_gives_up_with_one_line():
    clock = _Clock()
    with pytest.raises(MeasurementError) as info:
        wait_quiet(3, sampler=clock.sampler(), sleep=lambda s: clock.spend(s, 0.0, 1.5))
    message = str(info.value)
    assert "still busy after 3 s" in message and "75%" in message and "\n" not in message
    clock.readable = False
    with pytest.raises(MeasurementError, match="cannot be read"):
        wait_quiet(3, sampler=clock.sampler(), sleep=lambda s: clock.spend(s, 0.0, 0.0))


def test_the_real_sampler_reads_this_machine():
    s = ContentionSampler()
    token = s.start()
    sum(i * i for i in range(200_000))
    reading = s.stop(token)
    assert reading["seconds"] > 0
    if reading["other_cpu"] is not None:  # Linux (/proc/stat) or psutil
        assert 0.0 <= reading["other_cpu"] <= 1.0 and 0.0 <= reading["steal"] <= 1.0
        assert isinstance(reading["contended"], bool)


# ------------------------------------------------------------------------------------------ replacement rounds


class _Contended:
    """A contention sampler whose n-th reading (0-based) is contended when ``n`` is in ``busy``."""

    def __init__(self, busy):
        self.busy, self.calls = set(busy), 0

    def start(self):
        return None

    def stop(self, token):
        self.calls += 1
        return {"contended": (self.calls - 1) in self.busy}


class _FakeTime:
    """A clock that only moves when a block runs (``seconds`` per block) or a quiet probe waits (``probe_s``)."""

    def __init__(self, seconds=1.0):
        self.now, self.seconds = 0.0, seconds

    def __call__(self):
        return self.now

    def block(self, name, log):
        fake = _Fake(name, log)

        def run(warmup, runs):
            self.now += self.seconds
            return fake(warmup, runs)

        return run


def test_a_contended_block_is_replaced_after_the_planned_ones():
    log = []
    plan = plan_rounds(6, 3, 3, round_warmup=1, seed=2, max_extra_rounds=3, extra_time_share=10)
    first = plan.order(0, 2)[0]  # the block read first is contended
    names = ["a", "b"]
    results = run_rounds([Entry(n, _Fake(n, log)) for n in names], plan, sampler=_Contended({0}),
                         clock=_FakeTime())
    hit = results[names[first]]
    other = results[names[1 - first]]
    assert hit.block_sizes == [2, 2, 2, 2] and hit.used == [False, True, True, True]
    assert hit.extra_rounds == 1 and not hit.budget_exhausted and len(hit.used_samples()) == 6
    assert other.block_sizes == [2, 2, 2] and other.used == [True, True, True] and other.extra_rounds == 0
    assert log[-1][0] == names[first]  # the replacement comes after every planned block
    assert [w for n, w, _ in log if n == names[first]] == [3, 1, 1, 1]  # full warm-up only the first time


def test_replacements_stop_at_max_extra_rounds_and_the_last_contended_block_counts():
    t = _FakeTime()
    plan = plan_rounds(4, 0, 2, max_extra_rounds=2, extra_time_share=10)
    res = run_rounds([Entry("a", t.block("a", []))], plan, sampler=_Contended(range(100)), clock=t)["a"]
    assert res.extra_rounds == 2 and res.budget_exhausted
    assert res.used == [False, False, True, True]  # two replaced; the replacements, contended too, count
    assert len(res.used_samples()) == 4


def test_replacements_stop_when_their_time_budget_is_spent():
    # the measurement began 2 s before the rounds; 2 planned blocks of 1 s -> 4 s; a share of 0.5 -> 2 s: two
    # replacement blocks of 1 s fit, a third does not
    t = _FakeTime()
    t.now = 2.0
    plan = plan_rounds(4, 0, 2, max_extra_rounds=10, extra_time_share=0.5)
    res = run_rounds([Entry("a", t.block("a", []))], plan, sampler=_Contended(range(100)), clock=t, started=0.0)["a"]
    assert res.extra_rounds == 2 and res.budget_exhausted
    assert len(res.block_sizes) == 4 and sum(res.used) == 2  # the requested blocks count, contended or not
    assert len(res.used_samples()) == 4


def test_a_replacement_waits_for_a_quiet_machine_within_the_budget():
    t = _FakeTime()
    probes = []

    def is_quiet():  # busy for the first three half-second probes, then quiet
        t.now += 0.5
        probes.append(t.now)
        return len(probes) > 3

    plan = plan_rounds(4, 0, 2, max_extra_rounds=2, extra_time_share=10)
    res = run_rounds([Entry("a", t.block("a", []))], plan, sampler=_Contended({0}), clock=t, started=0.0,
                     is_quiet=is_quiet)["a"]
    assert len(probes) == 4  # waited until quiet, then replaced
    assert res.used == [False, True, True] and not res.budget_exhausted


def test_a_burst_longer_than_the_budget_leaves_the_contended_block_counted():
    t = _FakeTime()

    def never_quiet():
        t.now += 0.5
        return False

    plan = plan_rounds(4, 0, 2, extra_time_share=0.5, max_extra_rounds=2)
    res = run_rounds([Entry("a", t.block("a", []))], plan, sampler=_Contended({0}), clock=t, started=0.0,
                     is_quiet=never_quiet)["a"]
    assert res.used == [True, True] and res.budget_exhausted and res.extra_rounds == 0
    assert t.now <= 2.0 + 0.5 * 2.0 + 0.5  # the waits stopped at the deadline (one probe window past it at most)


def test_unknown_contention_is_not_replaced():
    class Unknown:
        def start(self):
            return None

        def stop(self, token):
            return {"contended": None}

    plan = plan_rounds(4, 0, 2, max_extra_rounds=5)
    res = run_rounds([Entry("a", _Fake("a", []))], plan, sampler=Unknown())["a"]
    assert res.used == [True, True] and res.extra_rounds == 0 and not res.budget_exhausted


def test_every_finished_block_is_handed_to_the_journal_and_a_run_resumes_from_it():
    from mobileone_bench.devices._rounds import EntryResult

    plan = plan_rounds(6, 4, 3, round_warmup=1, seed=1)
    journal = {}
    log = []
    entries = [Entry("a", _Fake("a", log)), Entry("b", _Fake("b", log, interrupt_at=2))]
    with pytest.raises(KeyboardInterrupt):
        run_rounds(entries, plan, on_block=lambda name, res: journal.__setitem__(name, res.as_journal()))
    assert journal["b"]["block_sizes"] == [2]  # b's first block was journaled before its second was interrupted
    resume = {name: EntryResult.from_journal(state) for name, state in journal.items()}
    log2 = []
    results = run_rounds([Entry("a", _Fake("a", log2)), Entry("b", _Fake("b", log2))], plan, resume=resume)
    for name in ("a", "b"):
        assert results[name].block_sizes == [2, 2, 2] and len(results[name].samples) == 6
        assert results[name].resumed_blocks == len(journal[name]["block_sizes"])
    # only the missing blocks are timed, each model's first block in this process with the full warm-up
    assert sum(1 for n, _, _ in log2 if n == "b") == 2
    assert [w for n, w, _ in log2 if n == "b"] == [4, 1]


def test_a_journal_that_disagrees_with_itself_is_refused():
    from mobileone_bench.devices._rounds import EntryResult

    with pytest.raises(ValueError):
        EntryResult.from_journal({"samples": [1.0], "block_sizes": [2], "positions": [0], "used": [True],
                                  "queue": []})
