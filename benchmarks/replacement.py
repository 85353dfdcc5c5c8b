"""A burst costs time instead of truth: `run` of six models, quiet and with a CPU burst, with replacement rounds (the
default) and without them (``--max-extra-rounds 0``: the old behaviour, flag only), in one run of this script.

Run it alone on a quiet machine (no test run, no other benchmark): it makes its own contention. The artifacts are
exported once first (into a folder every sweep reuses), then every sweep is the same ``mobileone-bench run`` command
into a fresh results store:

    quiet (new), burst (old), burst (new), quiet (new), burst (old), burst (new), quiet (new)

A burst is ``--burners`` processes of ``while True: pass`` from ``--burst-start`` s to ``--burst-start +
--burst-length`` s after the command starts (the issue's case: two burners for 25 s from 6 s on). Per sweep it
reports the wall time, each model's latency and whether its record is flagged; per burst sweep, against the
geometric mean of the quiet sweeps: how many records are unflagged and within 10% of their quiet value, the Spearman
rank agreement with the quiet ranking, and the wall time ratio. Targets (new behaviour): >= 5 of 6 unflagged and
within 10%, rank agreement >= 0.95, wall time <= 1.6x.

    python benchmarks/replacement.py [--runs 40] [--burners 2] [--burst-start 6] [--burst-length 25] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contention import Burst  # noqa: E402 - the same burner as benchmarks/contention.py
from _scratch import scratch  # noqa: E402 - benchmarks/_scratch.py

MODELS = ["mobileone_s0", "mobilenetv3-s", "mobilenetv1", "mobileone_s1", "shufflenetv2-1.0", "mobilenetv2-x1.0"]


def run_once(root: Path, label: str, runs: int, extra: list[str], burst: Burst | None) -> dict:
    results = root / "results" / label
    cmd = [sys.executable, "-m", "mobileone_bench", "run", *MODELS, "--runs", str(runs), "--results", str(results),
           "--models-dir", str(root / "models"), "--format", "json", *extra]
    t0 = time.perf_counter()
    if burst is not None:
        burst.arm()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if burst is not None:
        burst.stop()
        burst.join()
    from mobileone_bench.store.records import ResultsStore

    records = {r["model"]: r for r in ResultsStore(results).latest("latency")}
    return {"label": label, "exit_code": proc.returncode, "wall_s": round(wall, 2),
            "burst_window_s": burst.window if burst is not None else None,
            "latency_ms": {m: records[m]["latency_ms"] for m in MODELS if m in records},
            "flagged": sorted(m for m in MODELS if m in records and records[m].get("contended")),
            "rounds_replaced": {m: records[m].get("rounds_replaced") for m in MODELS if m in records},
            "budget_exhausted": sorted(m for m in MODELS if m in records
                                       and records[m].get("replacement_budget_exhausted")),
            "error": proc.stderr[-500:] if proc.returncode else None}


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--burst-start", type=float, default=6.0)
    parser.add_argument("--burst-length", type=float, default=25.0)
    parser.add_argument("--repeat", type=int, default=2, help="burst sweeps of each kind")
    args = parser.parse_args()

    with scratch("mobileone-bench-replacement-") as root:
        subprocess.run([sys.executable, "-m", "mobileone_bench", "export", *MODELS, "--format", "onnx", "--out",
                        str(root / "models")], capture_output=True, check=False)
        old = ["--max-extra-rounds", "0"]
        sweeps = [run_once(root, "quiet-0", args.runs, [], None)]
        for i in range(args.repeat):
            for kind, extra in (("old", old), ("new", [])):
                burst = Burst(args.burners, args.burst_start, args.burst_start + args.burst_length)
                sweeps.append(run_once(root, f"burst-{kind}-{i}", args.runs, extra, burst))
            sweeps.append(run_once(root, f"quiet-{i + 1}", args.runs, [], None))
        quiet = [s for s in sweeps if s["label"].startswith("quiet")]
        reference = {m: math.exp(sum(math.log(s["latency_ms"][m]) for s in quiet) / len(quiet)) for m in MODELS
                     if all(m in s["latency_ms"] for s in quiet)}
        quiet_wall = math.exp(sum(math.log(s["wall_s"]) for s in quiet) / len(quiet))
        summary = []
        for s in sweeps:
            if s["label"].startswith("quiet"):
                continue
            models = [m for m in reference if m in s["latency_ms"]]
            ratios = {m: round(s["latency_ms"][m] / reference[m], 3) for m in models}
            good = [m for m in models if m not in s["flagged"] and abs(ratios[m] - 1) <= 0.10]
            summary.append({"sweep": s["label"], "unflagged_within_10pct": len(good), "of": len(models),
                            "ratios": ratios, "flagged": s["flagged"],
                            "rank_agreement": round(spearman([reference[m] for m in models],
                                                             [s["latency_ms"][m] for m in models]), 3),
                            "wall_ratio": round(s["wall_s"] / quiet_wall, 2)})
        print(json.dumps({"models": MODELS, "runs": args.runs, "burners": args.burners,
                          "burst": [args.burst_start, args.burst_start + args.burst_length],
                          "quiet_reference_ms": {m: round(v, 4) for m, v in reference.items()},
                          "quiet_wall_s": round(quiet_wall, 2), "summary": summary, "sweeps": sweeps}, indent=2))


if __name__ == "__main__":
    main()
