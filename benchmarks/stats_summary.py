"""Cost of summarising one latency record: ``summarize()`` plus the record's 95% interval of the median.

New way: ``summarize`` + ``interval_ci(report="median")`` (order-statistic interval: one partial sort, O(n) memory).
Old way: ``summarize`` + ``bootstrap_ci(report="median")`` (scipy BCa bootstrap, 2000 resamples, whose jackknife is
quadratic in time and memory). The old way runs only up to ``--old-max-n`` samples (default 16,000): at 100,000 it
would take minutes and tens of GB, so larger sizes say "skipped". Target for the new way: <= 0.5 s and a few MB at
16,000 samples, growing about n log n in time and linearly in memory.

Samples are seeded lognormal latencies around 1 ms, passed as a list of floats as the pipeline passes them. Time is
the best of ``--repeats`` runs (``time.perf_counter``, tracing off); memory is the peak traced by ``tracemalloc`` in
one more run. Prints JSON; run it alone on the machine, the timings mean nothing beside other jobs.

    python benchmarks/stats_summary.py [--sizes 1000,4000,16000,100000] [--repeats 3] [--old-max-n 16000]
"""

from __future__ import annotations

import argparse
import json
import math
import time
import tracemalloc
from typing import Any, Callable

import numpy as np

REPORT = "median"


def latencies(n: int, seed: int) -> list[float]:
    """``n`` seeded lognormal latencies with a median of 1 ms."""
    return np.random.default_rng(seed).lognormal(0.0, 0.2, n).tolist()


def new_way(samples: list[float]) -> dict[str, Any]:
    from mobileone_bench.stats import interval_ci, summarize

    return {**summarize(samples).as_dict(), **interval_ci(samples, REPORT)}


def old_way(samples: list[float]) -> dict[str, Any]:
    from mobileone_bench.stats import bootstrap_ci, summarize

    return {**summarize(samples).as_dict(), **bootstrap_ci(samples, REPORT)}


def best_seconds(fn: Callable[[list[float]], Any], samples: list[float], repeats: int) -> float:
    """The fastest of ``repeats`` calls."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(samples)
        best = min(best, time.perf_counter() - t0)
    return best


def peak_mb(fn: Callable[[list[float]], Any], samples: list[float]) -> float:
    """Peak memory traced by tracemalloc during one call (the samples themselves are allocated before)."""
    tracemalloc.start()
    try:
        fn(samples)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def measure(fn: Callable[[list[float]], Any], samples: list[float], repeats: int) -> dict[str, Any]:
    record = fn(samples)
    return {"seconds": best_seconds(fn, samples, repeats), "peak_mb": peak_mb(fn, samples),
            "ci_method": record["ci_method"], "ci_ms": [record["ci_low_ms"], record["ci_high_ms"]]}


def growth_exponent(n1: int, t1: float, n2: int, t2: float) -> float:
    """``b`` in ``t ~ n^b`` through two points (1 linear, about 1.1 for n log n at these sizes, 2 quadratic)."""
    return math.log(t2 / t1) / math.log(n2 / n1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000,16000,100000", help="comma-separated sample counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per size and way; the best is kept")
    parser.add_argument("--old-max-n", type=int, default=16000,
                        help="largest sample count the old (quadratic) way runs at; larger ones are skipped")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or min(sizes) < 3 or args.repeats < 1:
        parser.error("--sizes needs counts of at least 3 and --repeats at least 1")

    warm = latencies(50, args.seed)  # imports and first-call costs out of the way
    new_way(warm)
    old_way(warm)

    rows = []
    for n in sizes:
        samples = latencies(n, args.seed)
        new = measure(new_way, samples, args.repeats)
        if n <= args.old_max_n:
            old: dict[str, Any] = measure(old_way, samples, args.repeats)
            ratio = {"seconds": old["seconds"] / new["seconds"], "peak_mb": old["peak_mb"] / new["peak_mb"]}
        else:
            old = {"skipped": f"n > --old-max-n {args.old_max_n}: the BCa bootstrap is quadratic (minutes and tens "
                              f"of GB at 100,000 samples)"}
            ratio = None
        rows.append({"n": n, "new": new, "old": old, "old_over_new": ratio})

    timed = {row["n"]: row["new"]["seconds"] for row in rows}
    if 16000 in timed and 100000 in timed:
        n1, n2 = 16000, 100000
    elif len(sizes) >= 2:
        n1, n2 = sizes[-2], sizes[-1]
    else:
        n1 = n2 = None
    growth = None
    if n1 is not None:
        growth = {"between": [n1, n2], "new_time_exponent": growth_exponent(n1, timed[n1], n2, timed[n2]),
                  "n_log_n_would_be": growth_exponent(n1, n1 * math.log(n1), n2, n2 * math.log(n2)),
                  "quadratic_would_be": 2.0}

    print(json.dumps({"report": REPORT, "repeats": args.repeats, "old_max_n": args.old_max_n, "seed": args.seed,
                      "new_way": "summarize + interval_ci", "old_way": "summarize + bootstrap_ci",
                      "sizes": rows, "new_growth": growth}, indent=2))


if __name__ == "__main__":
    main()
