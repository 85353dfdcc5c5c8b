"""Tool overhead: the tool's timing loop vs a bare ``session.run`` loop on the same onnxruntime session.

Both loops run in this process on the same session and the same input, interleaved block by block (tool, bare,
tool, bare...) so that drift in the machine's load hits both alike. Reports the ratio of medians (tool / bare) per
block pair and overall; the target is <= 1.02.

    python benchmarks/overhead.py [--model mobileone_s0] [--blocks 10] [--runs 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch  # noqa: E402 - benchmarks/_scratch.py


def bare_loop(session, outputs, feed, runs: int) -> list[float]:
    """What a user would write by hand: time each session.run with perf_counter_ns."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        session.run(outputs, feed)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobileone_s0")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models-dir", default=None, help="artifact folder (default: a temporary one)")
    args = parser.parse_args()

    from mobileone_bench import pipeline
    from mobileone_bench.devices._protocol import time_runs
    from mobileone_bench.devices.onnxruntime import OnnxRuntimeRunner
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one
    from mobileone_bench.stats import summarize

    with scratch("mobileone-bench-overhead-", args.models_dir) as out:
        prepared = pipeline.prepare(args.model)
        artifact = export_one(prepared, FORMATS["onnx"], out, ExportOptions())
        runner = OnnxRuntimeRunner(Path(artifact.path), prepared.input_shape, args.threads)
        session, outputs, feed = runner.session, runner.outputs, runner.feed

        time_runs(runner, warmup=20, runs=1)  # warm both paths up once
        ratios, tool_all, bare_all = [], [], []
        for _ in range(args.blocks):
            tool = time_runs(runner, warmup=0, runs=args.runs)
            bare = bare_loop(session, outputs, feed, args.runs)
            tool_all += tool
            bare_all += bare
            ratios.append(statistics.median(tool) / statistics.median(bare))
        t, b = summarize(tool_all), summarize(bare_all)
        result = {
            "model": args.model, "threads": args.threads, "blocks": args.blocks, "runs_per_block": args.runs,
            "tool_median_ms": round(t.median, 4), "bare_median_ms": round(b.median, 4),
            "ratio_of_medians": round(t.median / b.median, 4),
            "block_ratio_median": round(statistics.median(ratios), 4),
            "block_ratio_min": round(min(ratios), 4), "block_ratio_max": round(max(ratios), 4),
            "tool_cv": round(t.cv, 3), "bare_cv": round(b.cv, 3), "target": "<= 1.02",
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
