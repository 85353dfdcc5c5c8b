"""The record intervals of :func:`mobileone_bench.stats.interval_ci`: coverage on simulated skewed latencies, the
order-statistic ranks against a brute-force binomial search, the analytic bootstrap of the minimum against a real
resampling, the hand formulas for the mean and trimmed mean, edge cases, and linear memory on 100,000 samples.

Nothing here measures time: the checks are statistical (fixed seeds) or count allocated bytes (deterministic)."""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps
from scipy.integrate import quad

from mobileone_bench.stats import REPORTS, TRIM_FRACTION, _quantile_ranks, bootstrap_ci, interval_ci, summarize

ORDER_STATISTICS = "order statistics (exact binomial)"
FIELDS = {"ci_low_ms", "ci_high_ms", "ci_level", "ci_method", "ci_resamples", "ci_seed"}

# Skewed, latency-like distributions (milliseconds) and their true statistics.
DISTRIBUTIONS = {
    "lognormal": sps.lognorm(s=0.5, scale=1.0),
    "shifted gamma": sps.gamma(a=2.0, loc=1.0, scale=0.25),
}


def _true_values(dist) -> dict[str, float]:
    trimmed = quad(dist.ppf, TRIM_FRACTION, 1 - TRIM_FRACTION)[0] / (1 - 2 * TRIM_FRACTION)
    return {"median": float(dist.ppf(0.5)), "p90": float(dist.ppf(0.9)), "mean": float(dist.mean()),
            "trimmed_mean": float(trimmed)}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_intervals_cover_the_true_statistic_about_95_percent_of_the_time(name):
    # 400 samples of 200 latencies: a correct 95% interval lands in [0.92, 0.985] (binomial sd 0.011); one 20% too
    # narrow lands near 0.89, half as wide near 0.70, 1.5 times as wide above 0.99.
    dist = DISTRIBUTIONS[name]
    truth = _true_values(dist)
    rng = np.random.default_rng(1)
    hits = dict.fromkeys(truth, 0)
    replicates = 400
    for _ in range(replicates):
        x = dist.rvs(size=200, random_state=rng)
        for report, value in truth.items():
            got = interval_ci(x, report)
            hits[report] += got["ci_low_ms"] <= value <= got["ci_high_ms"]
    coverage = {report: h / replicates for report, h in hits.items()}
    assert all(0.92 <= c <= 0.985 for c in coverage.values()), coverage


def _brute_force_ranks(n: int, q: Fraction, level: Fraction) -> tuple[int, int] | None:
    """Every pair 1 <= l < u <= n with exact binomial probabilities: the narrowest reaching the level, then the most
    balanced tails, then the smaller l."""
    pmf = [math.comb(n, k) * q ** k * (1 - q) ** (n - k) for k in range(n + 1)]
    cdf = [sum(pmf[: k + 1], Fraction(0)) for k in range(n + 1)]

    def below(k: int) -> Fraction:  # P(B <= k)
        return cdf[k] if k >= 0 else Fraction(0)

    best = None
    for low in range(1, n + 1):
        for high in range(low + 1, n + 1):
            if below(high - 1) - below(low - 1) >= level:
                key = (high - low, abs(below(low - 1) - (1 - below(high - 1))), low)
                best = key if best is None or key < best else best
    return None if best is None else (best[2], best[2] + best[0])


@pytest.mark.parametrize("n, q, level", [(6, "1/2", "95/100"), (11, "1/2", "95/100"), (25, "1/2", "95/100"),
                                         (50, "1/4", "95/100"), (29, "9/10", "95/100"), (60, "9/10", "95/100"),
                                         (120, "9/10", "95/100"), (200, "1/2", "95/100"), (40, "1/2", "9/10"),
                                         (80, "9/10", "99/100")])
def test_order_statistic_ranks_match_a_brute_force_binomial_search(n, q, level):
    q, level = Fraction(q), Fraction(level)
    assert _quantile_ranks(n, float(q), float(level)) == _brute_force_ranks(n, q, level)


def test_order_statistic_interval_needs_enough_samples():
    # the widest interval, (x_(1), x_(n)), covers with probability 1 - (1 - q)^n - q^n
    assert _quantile_ranks(5, 0.5, 0.95) is None and _quantile_ranks(6, 0.5, 0.95) == (1, 6)  # 0.9375, 0.96875
    assert _quantile_ranks(28, 0.9, 0.95) is None  # 1 - 0.9^28 - 0.1^28 = 0.9477
    low, high = _quantile_ranks(29, 0.9, 0.95)  # 0.9529 with l = 1; P(B < l) stays negligible up to l = 21
    assert high == 29 and sps.binom.cdf(high - 1, 29, 0.9) - sps.binom.cdf(low - 1, 29, 0.9) >= 0.95
    x = np.random.default_rng(2).gamma(3.0, 0.2, 29) + 1.0
    none = interval_ci(x[:28], "p90")
    assert (none["ci_low_ms"], none["ci_high_ms"], none["ci_method"]) == (None, None, ORDER_STATISTICS)
    got = interval_ci(x, "p90")
    assert (got["ci_low_ms"], got["ci_high_ms"]) == (np.sort(x)[low - 1], x.max())


@pytest.mark.parametrize("report, q", [("median", 0.5), ("p90", 0.9)])
def test_quantile_interval_is_the_two_ranked_samples_around_the_estimate(report, q):
    x = np.random.default_rng(3).lognormal(0.0, 0.3, 501)
    low, high = _quantile_ranks(x.size, q, 0.95)
    got = interval_ci(x, report)
    s = np.sort(x)
    assert (got["ci_low_ms"], got["ci_high_ms"]) == (s[low - 1], s[high - 1])
    assert got["ci_low_ms"] < summarize(x).value(report) < got["ci_high_ms"]
    assert low < x.size * q < high
    assert (got["ci_method"], got["ci_level"], got["ci_resamples"], got["ci_seed"]) == (ORDER_STATISTICS, 0.95,
                                                                                        None, None)


def test_min_interval_matches_a_resampling_bootstrap_of_the_minimum():
    n = 150
    x = np.random.default_rng(4).gamma(2.0, 0.25, n) + 1.0
    got = interval_ci(x, "min")
    assert got["ci_method"] == "analytic percentile bootstrap" and got["ci_resamples"] is None
    rng = np.random.default_rng(5)
    mins = np.array([x[rng.integers(0, n, n)].min() for _ in range(20000)])
    low, high = np.percentile(mins, [2.5, 97.5])
    assert (got["ci_low_ms"], got["ci_high_ms"]) == pytest.approx((low, high))
    # the whole distribution, not only the two quantiles: P(min* <= x_(k)) = 1 - ((n - k) / n)^n
    s = np.sort(x)
    for k in range(1, 8):
        assert np.mean(mins <= s[k - 1]) == pytest.approx(1 - ((n - k) / n) ** n, abs=0.01)
    old = bootstrap_ci(x, "min")  # scipy's percentile bootstrap, 2000 resamples: the same order statistics
    assert (old["ci_low_ms"], old["ci_high_ms"]) == pytest.approx((got["ci_low_ms"], got["ci_high_ms"]))


def test_mean_and_trimmed_mean_intervals_by_hand():
    x = [1.9, 1.0, 1.2, 1.1, 3.5, 1.05, 0.98, 1.3, 1.15, 1.02, 1.4, 2.2, 1.08, 1.01, 1.25, 0.99, 1.6, 1.12, 1.07,
         4.8, 1.03, 1.18, 1.09]  # n = 23, two cut at each end
    n = len(x)
    mean = sum(x) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = sps.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    got = interval_ci(x, "mean")
    assert (got["ci_low_ms"], got["ci_high_ms"]) == pytest.approx((mean - half, mean + half))
    assert got["ci_method"] == "Student t"

    g = 2
    ordered = sorted(x)
    kept = ordered[g:n - g]
    winsorized = [ordered[g]] * g + kept + [ordered[n - g - 1]] * g
    wmean = sum(winsorized) / n
    ss = sum((v - wmean) ** 2 for v in winsorized)
    h = n - 2 * g
    tm = sum(kept) / h
    half = sps.t.ppf(0.975, h - 1) * math.sqrt(ss / (h * (h - 1)))
    got = interval_ci(x, "trimmed_mean", level=0.95)
    assert (got["ci_low_ms"], got["ci_high_ms"]) == pytest.approx((tm - half, tm + half))
    assert tm == pytest.approx(summarize(x).trimmed_mean)
    assert got["ci_method"] == "Tukey-McLaughlin t (winsorized variance)"


@pytest.mark.parametrize("report", REPORTS)
def test_too_few_or_identical_samples(report):
    for few in ([1.0], [1.0, 2.0]):
        got = interval_ci(few, report)
        assert set(got) == FIELDS and got["ci_low_ms"] is None and got["ci_high_ms"] is None
    same = interval_ci([2.5] * 40, report)
    assert same["ci_low_ms"] == same["ci_high_ms"] == 2.5


def test_unknown_report_method_or_level_is_rejected():
    with pytest.raises(ValueError, match="unknown statistic"):
        interval_ci([1.0, 2.0, 3.0], "p95")
    with pytest.raises(ValueError, match="unknown interval method"):
        interval_ci([1.0, 2.0, 3.0], "median", method="BCa")
    for level in (0.0, 1.0, 95):
        with pytest.raises(ValueError, match="confidence level"):
            interval_ci([1.0, 2.0, 3.0], "median", level=level)


@pytest.mark.parametrize("bad", [[1.0, float("nan"), 2.0], [1.0, float("inf"), 2.0], [1.0, -0.5, 2.0], []])
def test_invalid_samples_are_rejected(bad):
    with pytest.raises(ValueError):
        interval_ci(bad, "median")


def test_bootstrap_on_request_is_the_old_interval():
    x = list(np.random.default_rng(6).gamma(4.0, 0.5, 300) + 1.0)
    got = interval_ci(x, "median", method="bootstrap")
    assert got == bootstrap_ci(x, "median")
    assert (got["ci_method"], got["ci_resamples"], got["ci_seed"]) == ("BCa", 2000, 0)
    assert set(interval_ci(x, "median")) == set(got) == FIELDS


@pytest.mark.parametrize("report", REPORTS)
def test_one_hundred_thousand_samples_give_finite_bounds_around_the_statistic(report):
    x = list(np.random.default_rng(7).lognormal(0.0, 0.2, 100_000))
    got = interval_ci(x, report)
    value = summarize(x).value(report)
    low, high = got["ci_low_ms"], got["ci_high_ms"]
    assert math.isfinite(low) and math.isfinite(high)
    if report == "min":
        assert low == value < high
    else:
        assert low < value < high
        assert high - low < 0.02 * value  # about 4 standard errors of a statistic of 100,000 samples


def _peak_bytes(samples: list[float], report: str) -> int:
    tracemalloc.start()
    try:
        interval_ci(samples, report)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("report", REPORTS)
def test_peak_memory_is_linear_in_the_number_of_samples(report):
    interval_ci([1.0, 1.5, 2.0, 1.2] * 10, report)  # first call: scipy imports, not the interval's own memory
    rng = np.random.default_rng(8)
    small, large = list(rng.lognormal(0.0, 0.2, 25_000)), list(rng.lognormal(0.0, 0.2, 100_000))
    peak_small, peak_large = _peak_bytes(small, report), _peak_bytes(large, report)
    assert peak_large < 20e6  # a few copies of the 0.8 MB of float64 samples
    assert peak_large < 5 * peak_small  # 4 times the samples: 4 times the memory (a quadratic method: 16)
