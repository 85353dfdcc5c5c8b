"""Sweep cost: wall time of ``mobileone-bench run --zoo ZOO --device cpu``, cold then cached.

Cold: empty artifact and results folders (every model is built, re-parameterized, verified, profiled, exported to
ONNX with a parity check, and measured). Cached: the same command again (everything is found in the store).
Targets on 2 cores for paper-table9: <= 10 min cold, <= 30 s cached.

    python benchmarks/sweep.py [--zoo paper-table9] [--keep DIR] [-- extra run options]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Wall time, exit status and stdout of a command."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="paper-table9")
    parser.add_argument("--keep", default=None, help="folder for models/ and results/ (default: temporary, removed)")
    parser.add_argument("extra", nargs="*", help="extra options for `run`, after --")
    args = parser.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="mobileone-bench-sweep-"))
    cmd = [sys.executable, "-m", "mobileone_bench", "run", "--zoo", args.zoo, "--device", "cpu",
           "--results", str(root / "results"), "--models-dir", str(root / "models"), "--format", "json", *args.extra]
    cold, rc_cold, out_cold = timed(cmd)
    cached, rc_cached, _ = timed(cmd)
    try:
        models = json.loads(out_cold)["models"]
    except ValueError:
        models = []
    result = {
        "zoo": args.zoo, "models": len(models),
        "measured": sum(1 for m in models if str(m.get("status")).startswith("ok")),
        "cold_s": round(cold, 1), "cached_s": round(cached, 1), "exit_codes": [rc_cold, rc_cached],
        "targets": {"cold_s": 600, "cached_s": 30},
    }
    print(json.dumps(result, indent=2))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
