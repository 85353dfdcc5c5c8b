"""The only place that turns latency samples into statistics, whatever the device.

CPU, GPU, iPhone and Mac measurements all keep their raw samples and go through :func:`summarize`, so "min of 1000"
(the paper's iPhone figure) and "median of 100" (its CPU and GPU figures) are computed by the same code.

Definitions (milliseconds): percentiles by linear interpolation between closest ranks (numpy's default), standard
deviation with Bessel's correction, coefficient of variation = std / mean, trimmed mean = mean after dropping 10% of
the samples at each end (``scipy.stats.trim_mean``; the figure Apple's ModelBench app shows).

Confidence intervals (:func:`bootstrap_ci`): a 95% bootstrap interval of the reported statistic from the raw
samples (``scipy.stats.bootstrap``, 2000 resamples, seeded; BCa, except for the minimum, whose BCa acceleration is
undefined, where the percentile method is used); and, for interleaved records, a Student-t interval of the mean of
the per-round statistics (:func:`rounds_ci`), which also covers drift between rounds that the pooled samples hide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["Stats", "summarize", "REPORTS", "noise_warning", "TRIM_FRACTION", "MIN_RUNS_TO_JUDGE", "bootstrap_ci",
           "rounds_ci", "CI_LEVEL", "CI_RESAMPLES", "CI_SEED"]

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
