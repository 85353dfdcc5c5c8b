"""Peak memory of a cold sweep: ``mobileone-bench run --zoo ZOO`` with empty artifact and results folders, under
``/usr/bin/time -v`` (its "Maximum resident set size": the high-water mark of the process, children excluded).

Target for paper-table9 on 2 cores: <= 2.5 GB. To compare with another version of the tool in the same run, give its
source folder (e.g. a ``git worktree`` of an older commit): it is put first on PYTHONPATH for that run.

    python benchmarks/memory.py [--zoo paper-table9] [--code OLD_CHECKOUT] [-- extra run options]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss(code: str | None, zoo: str, extra: list[str]) -> dict:
    root = Path(tempfile.mkdtemp(prefix="mobileone-bench-memory-"))
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = str(Path(code).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "mobileone_bench", "run", "--zoo", zoo, "--device", "cpu",
           "--results", str(root / "results"), "--models-dir", str(root / "models"), "--format", "json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    try:
        models = json.loads(proc.stdout)["models"]
    except ValueError:
        models = []
    shutil.rmtree(root, ignore_errors=True)
    return {"code": code or "this checkout", "exit_code": proc.returncode,
            "peak_rss_gb": round(int(match.group(1)) / 1024 ** 2, 3) if match else None, "wall_s": round(wall, 1),
            "models": len(models), "measured": sum(1 for m in models if str(m.get("status")).startswith("ok"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="paper-table9")
    parser.add_argument("--code", action="append", default=[],
                        help="another checkout's folder to measure too (repeat for several)")
    parser.add_argument("extra", nargs="*", help="extra options for `run`, after --")
    args = parser.parse_args()
    results = [peak_rss(code, args.zoo, args.extra) for code in args.code]
    results.append(peak_rss(None, args.zoo, args.extra))
    print(json.dumps({"zoo": args.zoo, "target_gb": 2.5, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
