"""The only place that turns latency samples into statistics, whatever the device.

CPU, GPU, iPhone and Mac measurements all keep their raw samples and go through :func:`summarize`, so "min of 1000"
(the paper's iPhone figure) and "median of 100" (its CPU and GPU figures) are computed by the same code.

Definitions (milliseconds): percentiles by linear interpolation between closest ranks (numpy's default), standard
deviation with Bessel's correction, coefficient of variation = std / mean, trimmed mean = mean after dropping 10% of
the samples at each end (``scipy.stats.trim_mean``; the figure Apple's ModelBench app shows).

Confidence intervals of the reported statistic (:func:`interval_ci`, 95% by default). Each record says which
method gave its ``ci_low_ms`` / ``ci_high_ms`` in ``ci_method``:

- ``order statistics (exact binomial)`` for the median and p90: the distribution-free interval
  ``[x_(l), x_(u)]`` between two order statistics whose ranks come from the binomial distribution (valid for any
  continuous latency distribution, conservative for tied samples; no interval below a minimum sample count, see
  :func:`interval_ci`).
- ``Student t`` for the mean.
- ``Tukey-McLaughlin t (winsorized variance)`` for the 10% trimmed mean (Yuen's interval: winsorized variance,
  ``n - 2g - 1`` degrees of freedom).
- ``analytic percentile bootstrap`` for the minimum: the percentile bootstrap interval of the minimum computed
  exactly from the closed-form bootstrap distribution of the sample minimum (no resampling, no seed).

These cost one partial sort of the samples: O(n log n) time at most, O(n) memory. The former default, a resampling
bootstrap (:func:`bootstrap_ci`: ``scipy.stats.bootstrap``, 2000 resamples, seeded; ``BCa``, except for the minimum,
whose BCa acceleration is undefined, where ``percentile`` is used), is kept on request (``interval_ci(...,
method="bootstrap")`` or :func:`bootstrap_ci` itself); its jackknife makes it quadratic in time and memory, so it is
only practical up to a few thousand samples. For interleaved records, a Student-t interval of the mean of the
per-round statistics (:func:`rounds_ci`) also covers drift between rounds that the pooled samples hide.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["Stats", "summarize", "REPORTS", "noise_warning", "TRIM_FRACTION", "MIN_RUNS_TO_JUDGE", "bootstrap_ci",
           "interval_ci", "rounds_ci", "CI_LEVEL", "CI_RESAMPLES", "CI_SEED", "finite_or_none"]

CI_LEVEL = 0.95
CI_RESAMPLES = 2000
CI_SEED = 0

TRIM_FRACTION = 0.1
REPORTS = ("median", "min", "mean", "trimmed_mean", "p90")


@dataclass(frozen=True)
class Stats:
    """Summary of latency samples, in milliseconds.

    Attributes:
        n: Number of samples.
        min, max, median, mean, std, p90, p99, trimmed_mean: The usual; see the module docstring.
        cv: Coefficient of variation (std / mean).
    """

    n: int
    min: float
    max: float
    median: float
    mean: float
    std: float
    p90: float
    p99: float
    cv: float
    trimmed_mean: float

    def value(self, report: str) -> float:
        """The statistic named ``report`` (``median``, ``min``, ``mean``, ``trimmed_mean``, ``p90``)."""
        if report not in REPORTS:
            raise ValueError(f"unknown statistic {report!r}; choose from {', '.join(REPORTS)}")
        return float(getattr(self, report))

    def as_dict(self, suffix: str = "_ms") -> dict[str, Any]:
        """Flat fields for a record (``median_ms``...; ``n`` and ``cv`` unitless)."""
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            out[k if k in ("n", "cv") else f"{k}{suffix}"] = v
        return out


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (missing, not a number, NaN or infinite): how a stored field is read."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def summarize(samples: Sequence[float], trim: float = TRIM_FRACTION) -> Stats:
    """Statistics of latency samples (milliseconds).

    Raises:
        ValueError: No samples, or a sample that is not a finite non-negative number.
    """
    from scipy.stats import trim_mean

    x = np.asarray(list(samples), dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latency samples must be finite and non-negative")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return Stats(
        n=int(x.size),
        min=float(x.min()),
        max=float(x.max()),
        median=float(np.percentile(x, 50)),
        mean=mean,
        std=std,
        p90=float(np.percentile(x, 90)),
        p99=float(np.percentile(x, 99)),
        cv=std / mean if mean > 0 else 0.0,
        trimmed_mean=float(trim_mean(x, trim)),
    )


def _vectorized(report: str) -> Any:
    from scipy.stats import trim_mean

    return {
        "median": lambda x, axis=-1: np.median(x, axis=axis),
        "min": lambda x, axis=-1: np.min(x, axis=axis),
        "mean": lambda x, axis=-1: np.mean(x, axis=axis),
        "trimmed_mean": lambda x, axis=-1: trim_mean(x, TRIM_FRACTION, axis=axis),
        "p90": lambda x, axis=-1: np.percentile(x, 90, axis=axis),
    }[report]


def bootstrap_ci(samples: Sequence[float], report: str, *, level: float = CI_LEVEL, resamples: int = CI_RESAMPLES,
                 seed: int = CI_SEED) -> dict[str, Any]:
    """A bootstrap confidence interval of the statistic ``report`` of ``samples`` (milliseconds), as record fields.

    Returns:
        ``ci_low_ms``, ``ci_high_ms`` (``None`` with fewer than 3 samples or identical samples: then the interval
        is the value itself), ``ci_level``, ``ci_method`` (``BCa`` or ``percentile``), ``ci_resamples``, ``ci_seed``.
    """
    import warnings

    from scipy.stats import bootstrap

    if report not in REPORTS:
        raise ValueError(f"unknown statistic {report!r}; choose from {', '.join(REPORTS)}")
    x = np.asarray(list(samples), dtype=np.float64)
    method = "percentile" if report == "min" else "BCa"
    out: dict[str, Any] = {"ci_low_ms": None, "ci_high_ms": None, "ci_level": level, "ci_method": method,
                           "ci_resamples": resamples, "ci_seed": seed}
    if x.size < 3:
        return out
    if np.all(x == x[0]):
        out.update(ci_low_ms=float(x[0]), ci_high_ms=float(x[0]))
        return out
    stat = _vectorized(report)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa warns on degenerate distributions; the fallback below handles them
        res = bootstrap((x,), stat, n_resamples=resamples, confidence_level=level, method=method, vectorized=True,
                        rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (np.isfinite(low) and np.isfinite(high)):
            method = "percentile"
            res = bootstrap((x,), stat, n_resamples=resamples, confidence_level=level, method=method,
                            vectorized=True, rng=np.random.default_rng(seed))
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    out.update(ci_low_ms=low, ci_high_ms=high, ci_method=method)
    return out


_QUANTILE_OF = {"median": 0.5, "p90": 0.9}
_METHOD_NAMES = {
    "median": "order statistics (exact binomial)",
    "p90": "order statistics (exact binomial)",
    "mean": "Student t",
    "trimmed_mean": "Tukey-McLaughlin t (winsorized variance)",
    "min": "analytic percentile bootstrap",
}
_INTERVAL_METHODS = ("auto", "bootstrap")


def _quantile_ranks(n: int, q: float, level: float) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` of the distribution-free interval ``[x_(l), x_(u)]`` for the ``q`` quantile.

    With ``B ~ Binomial(n, q)`` the number of samples at or below the true quantile, the interval covers it with
    probability ``P(l <= B < u) = F(u - 1) - F(l - 1)`` (``F`` the binomial CDF) for continuous data, and at least
    that with ties. Among all ``1 <= l < u <= n`` reaching ``level``: the smallest ``u - l``; among those, the pair
    whose tails ``P(B < l)`` and ``P(B >= u)`` are closest (within 1e-12); then the smaller ``l``.

    Returns:
        ``(l, u)``, or ``None`` when even ``(1, n)`` falls short of ``level``.
    """
    import math

    from scipy.stats import binom, norm

    if n < 2:
        return None
    sd = math.sqrt(n * q * (1.0 - q))
    # Ranks further than (z + 8) sd from n*q cannot belong to the narrowest interval; small n take every rank.
    half = int(math.ceil((float(norm.ppf(0.5 + level / 2)) + 8.0) * sd)) + 10
    k_lo = max(0, int(math.floor(n * q)) - half)
    k_hi = min(n, int(math.ceil(n * q)) + half)
    cdf = binom.cdf(np.arange(k_lo - 1, k_hi + 1), n, q)  # cdf[i] = F(k_lo - 1 + i)
    cdf = np.maximum.accumulate(cdf)  # guard searchsorted against rounding
    ls = np.arange(max(1, k_lo), min(n - 1, k_hi) + 1)
    if ls.size == 0:
        return None
    tail_low = cdf[ls - k_lo]  # P(B < l) = F(l - 1)
    j = np.searchsorted(cdf, tail_low + level, side="left")  # first index with F(u - 1) >= P(B < l) + level
    us = k_lo + j
    ok = (j < cdf.size) & (us <= n)
    if not ok.any():
        return None
    ls, us, tail_low = ls[ok], us[ok], tail_low[ok]
    tail_high = 1.0 - cdf[us - k_lo]  # P(B >= u) = 1 - F(u - 1)
    narrowest = (us - ls) == (us - ls).min()
    ls, us = ls[narrowest], us[narrowest]
    imbalance = np.abs(tail_low[narrowest] - tail_high[narrowest])
    best = np.flatnonzero(imbalance <= imbalance.min() + 1e-12)[0]  # ls ascending: the smaller l
    return int(ls[best]), int(us[best])


def _min_bootstrap_ranks(n: int, level: float) -> tuple[int, int]:
    """1-based ranks of the exact percentile-bootstrap interval of the minimum of ``n`` samples.

    A resample's minimum is ``x_(k)`` or below unless all ``n`` draws land on the ``n - k`` larger samples, so
    ``G(k) = P(min* <= x_(k)) = 1 - ((n - k) / n) ** n``. The ``p`` quantile of that distribution is ``x_(k)`` for
    the smallest ``k`` with ``G(k) >= p``, at ``p = (1 - level) / 2`` and ``(1 + level) / 2``.
    """
    import math

    def cdf(k: int) -> float:
        return 1.0 if k >= n else -math.expm1(n * math.log1p(-k / n))

    def rank(p: float) -> int:
        k = min(max(math.ceil(-n * math.expm1(math.log1p(-p) / n)), 1), n)  # the closed-form solution...
        while k > 1 and cdf(k - 1) >= p:  # ...corrected for rounding
            k -= 1
        while cdf(k) < p:
            k += 1
        return k

    return rank((1.0 - level) / 2), rank((1.0 + level) / 2)


def interval_ci(samples: Sequence[float], report: str, *, level: float = CI_LEVEL,
                method: str = "auto") -> dict[str, Any]:
    """A confidence interval of the statistic ``report`` of ``samples`` (milliseconds), as record fields.

    ``method="auto"`` (the default) picks, by ``report`` (``ci_method`` names it):

    - ``median``, ``p90`` -> ``"order statistics (exact binomial)"``: ``[x_(l), x_(u)]`` from the sorted samples
      ``x_(1) <= ... <= x_(n)`` (1-based ranks), where, with ``B ~ Binomial(n, q)`` (``q`` = 0.5 or 0.9),
      ``P(l <= B < u) >= level``; of the rank pairs that reach the level, the narrowest (smallest ``u - l``), then
      the one with the most balanced tails ``P(B < l)`` and ``P(B >= u)``, then the smaller ``l``. Exact and
      distribution-free. When even ``(1, n)`` misses the level, the bounds are ``None``: at 95%, fewer than 6
      samples for the median and fewer than 29 for p90.
    - ``mean`` -> ``"Student t"``: ``mean +- t(n - 1) * s / sqrt(n)``.
    - ``trimmed_mean`` -> ``"Tukey-McLaughlin t (winsorized variance)"``: with ``g = int(0.1 * n)`` samples cut at
      each end (as ``scipy.stats.trim_mean``) and ``h = n - 2g``, ``trimmed mean +- t(h - 1) * sqrt(SS_w / (h (h -
      1)))``, ``SS_w`` the sum of squared deviations of the winsorized samples (Yuen's interval).
    - ``min`` -> ``"analytic percentile bootstrap"``: the percentile bootstrap interval of the minimum, computed
      exactly: ``P(min* <= x_(k)) = 1 - ((n - k) / n) ** n``, so its quantiles are order statistics (the lower bound
      is the minimum itself; the upper about the 4th smallest sample at 95%). No resampling.

    These need one partial sort: O(n log n) time at most and O(n) memory. ``method="bootstrap"`` returns
    :func:`bootstrap_ci` (2000 seeded resamples; quadratic in time and memory, for small samples only).

    Whatever the method, fewer than 3 samples give ``None`` bounds, and identical samples give the value itself as
    both bounds (the limit of every method above).

    Args:
        samples: Latency samples in milliseconds (finite, non-negative).
        report: One of :data:`REPORTS`.
        level: Confidence level, strictly between 0 and 1.
        method: ``"auto"`` or ``"bootstrap"``.

    Returns:
        ``ci_low_ms``, ``ci_high_ms`` (floats or ``None``), ``ci_level``, ``ci_method`` (the method's name above, or
        ``BCa`` / ``percentile`` for the bootstrap), ``ci_resamples`` and ``ci_seed`` (``None`` unless resampled).

    Raises:
        ValueError: Unknown ``report`` or ``method``, ``level`` outside (0, 1), no samples, or a sample that is not a
            finite non-negative number.
    """
    import math

    from scipy.stats import t, trim_mean

    if report not in REPORTS:
        raise ValueError(f"unknown statistic {report!r}; choose from {', '.join(REPORTS)}")
    if method not in _INTERVAL_METHODS:
        raise ValueError(f"unknown interval method {method!r}; choose from {', '.join(_INTERVAL_METHODS)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, not {level!r}")
    x = np.asarray(samples if hasattr(samples, "__len__") else list(samples), dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("no latency samples")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latency samples must be finite and non-negative")
    if method == "bootstrap":
        return bootstrap_ci(x, report, level=level)

    out: dict[str, Any] = {"ci_low_ms": None, "ci_high_ms": None, "ci_level": level,
                           "ci_method": _METHOD_NAMES[report], "ci_resamples": None, "ci_seed": None}
    n = int(x.size)
    if n < 3:
        return out
    if np.all(x == x[0]):
        out.update(ci_low_ms=float(x[0]), ci_high_ms=float(x[0]))
        return out

    if report in _QUANTILE_OF:
        ranks = _quantile_ranks(n, _QUANTILE_OF[report], level)
        if ranks is None:
            return out
        part = np.partition(x, [ranks[0] - 1, ranks[1] - 1])
        low, high = float(part[ranks[0] - 1]), float(part[ranks[1] - 1])
    elif report == "min":
        k_low, k_high = _min_bootstrap_ranks(n, level)
        part = np.partition(x, [k_low - 1, k_high - 1])
        low, high = float(part[k_low - 1]), float(part[k_high - 1])
    elif report == "mean":
        half = float(t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
        centre = float(x.mean())
        low, high = centre - half, centre + half
    else:  # trimmed_mean
        g = int(TRIM_FRACTION * n)  # scipy.stats.trim_mean's count
        h = n - 2 * g
        part = np.partition(x, [g, n - g - 1])
        w = np.clip(x, part[g], part[n - g - 1])  # winsorized: the g extremes at each end pulled in
        del part
        w -= w.mean()
        ss = float(np.dot(w, w))
        half = float(t.ppf(0.5 + level / 2, h - 1)) * math.sqrt(ss / (h * (h - 1)))
        centre = float(trim_mean(x, TRIM_FRACTION))
        low, high = centre - half, centre + half
    out.update(ci_low_ms=low, ci_high_ms=high)
    return out


def rounds_ci(values: Sequence[float], *, level: float = CI_LEVEL) -> dict[str, Any]:
    """The between-round interval: Student-t interval of the mean of the per-round statistics (``None`` bounds
    with fewer than 2 rounds)."""
    from scipy.stats import t

    v = np.asarray([float(a) for a in values], dtype=np.float64)
    out: dict[str, Any] = {"round_ci_low_ms": None, "round_ci_high_ms": None, "round_ci_method": None}
    if v.size < 2:
        return out
    half = float(t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    out.update(round_ci_low_ms=float(v.mean()) - half, round_ci_high_ms=float(v.mean()) + half,
               round_ci_method=f"Student t over {v.size} round statistics")
    return out


MIN_RUNS_TO_JUDGE = 5  # fewer runs say nothing about the spread


def noise_warning(stats: Stats, cv_limit: float = 0.10, tail_limit: float = 1.5) -> str | None:
    """A one-line warning when the spread says the machine was noisy (as trtexec warns on unstable timings).

    Args:
        stats: The summary.
        cv_limit: Coefficient of variation above which a measurement is called unstable.
        tail_limit: p99 / median ratio above which interruptions are suspected.
    """
    if stats.n < MIN_RUNS_TO_JUDGE:
        return f"only {stats.n} runs: too few to judge the spread"
    reasons = []
    if stats.cv > cv_limit:
        reasons.append(f"coefficient of variation {stats.cv:.0%} > {cv_limit:.0%}")
    if stats.median > 0 and stats.p99 / stats.median > tail_limit:
        reasons.append(f"p99 is {stats.p99 / stats.median:.1f}x the median")
    if not reasons:
        return None
    return "unstable timing (" + ", ".join(reasons) + "): other work on the machine, throttling or frequency " \
                                                      "scaling; consider more runs, fewer threads or a quieter machine"
