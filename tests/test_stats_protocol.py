"""The one statistics function and the timing protocol."""

from __future__ import annotations

import math

import pytest

from mobileone_bench.devices._protocol import time_runs
from mobileone_bench.stats import noise_warning, summarize


def test_summarize_against_hand_computed_values():
    s = summarize([4.0, 1.0, 3.0, 2.0, 10.0])
    assert s.n == 5 and s.min == 1.0 and s.max == 10.0
    assert s.median == 3.0
    assert s.mean == 4.0
    # sample std: deviations -3,-2,-1,0,6 -> squares 9+4+1+0+36 = 50 -> 50/4 = 12.5
    assert s.std == pytest.approx(math.sqrt(12.5))
    assert s.cv == pytest.approx(math.sqrt(12.5) / 4.0)
    # linear interpolation between closest ranks: sorted 1,2,3,4,10; p90 at rank 3.6 -> 4 + 0.6 * 6
    assert s.p90 == pytest.approx(7.6)
    assert s.p99 == pytest.approx(4 + 0.96 * 6)


def test_trimmed_mean_drops_ten_percent_each_end():
    samples = [100.0] + [1.0] * 8 + [0.0]  # n = 10: one sample cut at each end
    assert summarize(samples).trimmed_mean == pytest.approx(1.0)
    assert summarize(samples).mean == pytest.approx(10.8)


def test_value_selects_the_reported_statistic():
    s = summarize([1.0, 2.0, 3.0])
    assert s.value("min") == 1.0 and s.value("median") == 2.0
    with pytest.raises(ValueError):
        s.value("max_of_three")
    assert set(s.as_dict()) >= {"n", "cv", "min_ms", "median_ms", "p99_ms", "trimmed_mean_ms"}


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -0.5], [float("inf")]])
def test_bad_samples_are_refused(bad):
    with pytest.raises(ValueError):
        summarize(bad)


def test_noise_warning():
    assert noise_warning(summarize([1.0, 1.01, 0.99, 1.0, 1.02, 0.98])) is None
    noisy = noise_warning(summarize([1.0] * 20 + [5.0, 6.0]))
    assert noisy and "unstable" in noisy
    assert "too few" in noise_warning(summarize([1.0, 2.0]))


def test_protocol_times_exactly_runs_after_untimed_warmup():
    calls = []
    ticks = iter(range(0, 10**9, 1_000_000))  # every clock read advances 1 ms

    def step():
        calls.append(1)

    samples = time_runs(step, warmup=5, runs=20, clock=lambda: next(ticks))
    assert len(calls) == 25
    assert len(samples) == 20
    assert samples == [1.0] * 20  # one clock read per run boundary: warmup is never read


def test_protocol_rejects_bad_counts():
    with pytest.raises(ValueError):
        time_runs(lambda: None, warmup=-1, runs=5)
    with pytest.raises(ValueError):
        time_runs(lambda: None, warmup=0, runs=0)
