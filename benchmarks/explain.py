"""How honest is a per-operator profile? Coverage and profiler overhead of ``explain`` per runtime over a zoo.

For every model of the zoo and every CPU runtime named, ``mobileone_bench.explain`` times the artifact unprofiled,
then profiles it in the same process, and stores the ``explain`` record; this script prints, per runtime and model,
the coverage (the operators' times summed / the unprofiled median) and the profiler's overhead (profiled median /
unprofiled median - 1), and per runtime the worst and median of both. Target: coverage between 0.9 and 1.1 on
onnxruntime and torch for every model; the overhead is reported.

    python benchmarks/explain.py [--zoo quick] [--runtimes onnxruntime,torch,executorch] [--threads 1]
                                 [--runs 100] [--profiled-runs 20] [--input-size 224] [--results DIR]

Smallest settings (a check that it runs, not a measurement):

    python benchmarks/explain.py --models mobileone_tiny --input-size 64 --runs 5 --profiled-runs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch  # noqa: E402 - benchmarks/_scratch.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="quick")
    parser.add_argument("--models", default=None, help="comma-separated models instead of the zoo")
    parser.add_argument("--runtimes", default="onnxruntime,torch", help="comma-separated CPU runtimes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100, help="unprofiled timed runs per model")
    parser.add_argument("--profiled-runs", type=int, default=20)
    parser.add_argument("--input-size", type=int, default=None, help="square input side (default: each model's)")
    parser.add_argument("--results", default=None, help="results folder (default: a temporary one)")
    parser.add_argument("--models-dir", default=None, help="artifact folder (default: a temporary one)")
    args = parser.parse_args()

    import mobileone_bench as mb

    with scratch("mobileone-bench-explain-") as root:
        results = args.results or str(root / "results")
        models_dir = args.models_dir or str(root / "models")
        models = [m.strip() for m in args.models.split(",")] if args.models else None
        size = (args.input_size, args.input_size) if args.input_size else None
        report: dict[str, object] = {"zoo": None if models else args.zoo, "threads": args.threads, "runs": args.runs,
                                     "profiled_runs": args.profiled_runs, "runtimes": {}}
        for runtime in [r.strip() for r in args.runtimes.split(",") if r.strip()]:
            frame = mb.explain(models, zoo=None if models else args.zoo, runtime=runtime, threads=args.threads,
                               runs=args.runs, profiled_runs=args.profiled_runs, input_size=size, results=results,
                               models_dir=models_dir, force=True, as_frame=False)
            rows = [{"model": r["model"], "e2e_ms": r["e2e_ms"], "total_op_ms": r["total_op_ms"],
                     "coverage": r["coverage"], "profiler_overhead": r["profiler_overhead"],
                     "n_operators": r["n_operators"], "top_category": r["top_category"]} for r in frame]
            cov = [r["coverage"] for r in rows if r["coverage"] is not None]
            over = [r["profiler_overhead"] for r in rows if r["profiler_overhead"] is not None]
            report["runtimes"][runtime] = {  # type: ignore[index]
                "models": rows,
                "coverage": {"min": min(cov, default=None), "median": statistics.median(cov) if cov else None,
                             "max": max(cov, default=None),
                             "within_0.9_1.1": sum(0.9 <= c <= 1.1 for c in cov), "n": len(cov)},
                "profiler_overhead": {"min": min(over, default=None),
                                      "median": statistics.median(over) if over else None,
                                      "max": max(over, default=None)},
                "failed": [n for n in frame.attrs.get("notes", []) if "failed" in n or "error" in n],
            }
        report["results"] = args.results  # None: a temporary store, removed at the end
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
