"""Latency on a shared machine: blocked vs interleaved rounds, quiet vs a CPU burst, and onnxruntime's spin policy.

Run it alone on a quiet machine (no test run, no other benchmark): it makes its own contention.

Sweeps, in this order, every one over the same models and exported artifacts, into a throw-away results store:

1. quiet, blocked (the paper's protocol model after model), then quiet, interleaved (``--rounds`` rounds);
2. burst, blocked, then burst, interleaved: ``--burners`` busy processes run during the middle third of the sweep
   (its duration taken from the quiet sweep of the same protocol);
3. quiet again, both protocols (repeatability);
4. onnxruntime's intra-op spinning off / on / off / on, both protocols (alternated, so drift hits both alike);
5. torch eager, interleaved, in a subprocess each: OpenMP's default wait policy vs ``OMP_WAIT_POLICY=PASSIVE``.

Burst/quiet ratios use the geometric mean of the quiet sweeps before and after the bursts, so that slow drift of the
machine cancels. Prints one JSON document: per-model medians of every sweep, burst/quiet ratios, which burst records were flagged
contended, Spearman between the quiet and burst rankings (all records and unflagged ones), the quiet/quiet
repeatability, and the spinning ratios.

    python benchmarks/contention.py [--zoo quick] [--runs 100] [--rounds 5] [--burners 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch  # noqa: E402 - benchmarks/_scratch.py


class Burst:
    """``n`` busy processes from ``start_s`` to ``stop_s`` after :meth:`arm` (a timer thread starts and kills them)."""

    def __init__(self, n: int, start_s: float, stop_s: float):
        self.n, self.start_s, self.stop_s = n, start_s, stop_s
        self.procs: list[subprocess.Popen] = []
        self.window: tuple[float, float] | None = None
        self._thread: threading.Thread | None = None

    def _run(self, t0: float) -> None:
        time.sleep(max(0.0, t0 + self.start_s - time.perf_counter()))
        began = time.perf_counter()
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(max(0.0, t0 + self.stop_s - time.perf_counter()))
        self.stop()
        self.window = (round(began - t0, 2), round(time.perf_counter() - t0, 2))

    def arm(self) -> None:
        self._thread = threading.Thread(target=self._run, args=(time.perf_counter(),), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.procs = []

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


PREPARED: dict[str, Any] = {}  # built, re-parameterized models, reused by every sweep (only timing is compared)


def sweep(specs: list[Any], job: Any, root: Path, label: str,
          burst: Burst | None = None) -> tuple[dict[str, dict], float]:
    """One measurement of every spec into a fresh store ``root/label`` (the exports are reused, not redone);
    returns ({model: record}, wall seconds)."""
    from mobileone_bench import pipeline
    from mobileone_bench.store.records import ResultsStore

    store = ResultsStore(root / "results" / label)
    t0 = time.perf_counter()
    if burst is not None:
        burst.arm()
    try:
        results = pipeline.measure_models(specs, job, store, prepared=dict(PREPARED))
    finally:
        if burst is not None:
            burst.join()
            burst.stop()
    return {rec["model"]: rec for rec, _ in results}, time.perf_counter() - t0


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    from scipy.stats import spearmanr

    return round(float(spearmanr(a, b).statistic), 4)


def _geomean(a: float, b: float) -> float:
    return (a * b) ** 0.5


def compare(quiet: dict[str, dict], quiet_after: dict[str, dict], burst: dict[str, dict]) -> dict[str, Any]:
    """Burst vs quiet (the geometric mean of the quiet sweeps before and after, so slow drift of the machine
    cancels): per-model ratio, flags, rank agreement over all and over unflagged records."""
    names = [m for m in quiet if all(d.get(m, {}).get("status") == "ok" for d in (quiet, quiet_after, burst))]
    rows = []
    for m in names:
        q, b = _geomean(quiet[m]["latency_ms"], quiet_after[m]["latency_ms"]), burst[m]["latency_ms"]
        rows.append({"model": m, "quiet_ms": round(q, 3), "burst_ms": round(b, 3), "ratio": round(b / q, 3),
                     "flagged": bool(burst[m].get("contended")), "contended_share": burst[m].get("contended_share"),
                     "other_cpu_max": burst[m].get("other_cpu_max")})
    clean = [r for r in rows if not r["flagged"]]
    return {
        "rows": rows,
        "flagged": [r["model"] for r in rows if r["flagged"]],
        "spearman_all": spearman([r["quiet_ms"] for r in rows], [r["burst_ms"] for r in rows]),
        "spearman_unflagged": spearman([r["quiet_ms"] for r in clean], [r["burst_ms"] for r in clean]),
        "unflagged_within_10pct": f"{sum(abs(r['ratio'] - 1) <= 0.10 for r in clean)}/{len(clean)}",
        "max_unflagged_deviation": round(max((abs(r["ratio"] - 1) for r in clean), default=0.0), 3),
    }


def repeat(a: dict[str, dict], b: dict[str, dict]) -> dict[str, Any]:
    names = [m for m in a if a[m].get("status") == "ok" and b.get(m, {}).get("status") == "ok"]
    ratios = [b[m]["latency_ms"] / a[m]["latency_ms"] for m in names]
    return {"spearman": spearman([a[m]["latency_ms"] for m in names], [b[m]["latency_ms"] for m in names]),
            "within_5pct": f"{sum(abs(r - 1) <= 0.05 for r in ratios)}/{len(ratios)}",
            "ratio_min": round(min(ratios), 3), "ratio_median": round(statistics.median(ratios), 3),
            "ratio_max": round(max(ratios), 3)}


def medians(records: dict[str, dict]) -> dict[str, float | None]:
    return {m: (round(r["latency_ms"], 3) if r.get("status") == "ok" else None) for m, r in records.items()}


def torch_sweep(models: list[str], args: argparse.Namespace, root: Path, policy: str | None) -> dict[str, dict]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, "-m", "mobileone_bench", "latency", *models, "--runtime", "torch", "--runs",
           str(args.runs), "--rounds", str(args.rounds), "--results", str(root / f"torch-{policy or 'default'}"),
           "--models-dir", str(root / "models"), "--format", "json"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"torch sweep failed: {out.stderr.strip().splitlines()[-1:]}")
    return {r["model"]: r for r in json.loads(out.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="quick")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch OMP_WAIT_POLICY sweeps")
    args = parser.parse_args()

    from mobileone_bench.models import registry
    from mobileone_bench.devices import cpu_runtime_options
    from mobileone_bench.environment import collect
    from mobileone_bench.pipeline import LatencyJob
    with scratch("mobileone-bench-contention-") as root:
        specs = [registry.resolve(m) for m in registry.zoo_models(args.zoo)]

        def job(protocol: str, spinning: bool = False, runs: int | None = None) -> Any:
            return LatencyJob(device="cpu", runs=runs or args.runs, threads=args.threads, protocol=protocol,
                              rounds=args.rounds, runtime_options=cpu_runtime_options("onnxruntime",
                                                                                       allow_spinning=spinning),
                              models_dir=str(root / "models"))

        from mobileone_bench import pipeline

        for spec in specs:
            PREPARED[spec.name] = pipeline.prepare(spec)
        sweep(specs, job("interleaved", runs=10), root, "warm")  # exports, loads, caches: not counted
        quiet1, t_blocked = sweep(specs, job("blocked"), root, "quiet-blocked-1")
        quiet1_i, t_inter = sweep(specs, job("interleaved"), root, "quiet-interleaved-1")
        burst_b = Burst(args.burners, t_blocked / 3, 2 * t_blocked / 3)
        burst_blocked, tb = sweep(specs, job("blocked"), root, "burst-blocked", burst_b)
        burst_i = Burst(args.burners, t_inter / 3, 2 * t_inter / 3)
        burst_inter, ti = sweep(specs, job("interleaved"), root, "burst-interleaved", burst_i)
        bursts = {"blocked": {"sweep_s": round(tb, 1), "burst_window_s": burst_b.window},
                  "interleaved": {"sweep_s": round(ti, 1), "burst_window_s": burst_i.window}}
        quiet2, _ = sweep(specs, job("blocked"), root, "quiet-blocked-2")
        quiet2_i, _ = sweep(specs, job("interleaved"), root, "quiet-interleaved-2")
        # spin policy: off / on / off / on, so that drift of the machine hits both alike
        spin: dict[str, dict[bool, list[dict[str, dict]]]] = {"blocked": {False: [], True: []},
                                                              "interleaved": {False: [], True: []}}
        spin_s: dict[str, dict[bool, float]] = {"blocked": {False: 0.0, True: 0.0},
                                                "interleaved": {False: 0.0, True: 0.0}}
        for rep in range(2):
            for protocol in ("blocked", "interleaved"):
                for on in (False, True):
                    recs, t = sweep(specs, job(protocol, spinning=on), root, f"spin-{protocol}-{on}-{rep}")
                    spin[protocol][on].append(recs)
                    spin_s[protocol][on] += t

        def spin_report(protocol: str) -> dict[str, Any]:
            off, on = spin[protocol][False], spin[protocol][True]
            names = [m for m in off[0] if all(d[m].get("status") == "ok" for d in off + on)]
            ratios = {m: round(_geomean(on[0][m]["latency_ms"], on[1][m]["latency_ms"])
                               / _geomean(off[0][m]["latency_ms"], off[1][m]["latency_ms"]), 3) for m in names}
            return {"ratio_on_off": ratios, "ratio_median": round(statistics.median(ratios.values()), 3),
                    "ratio_min": min(ratios.values()), "ratio_max": max(ratios.values()),
                    "sweep_s_off_on": [round(spin_s[protocol][False] / 2, 1), round(spin_s[protocol][True] / 2, 1)],
                    "repeat_off": repeat(off[0], off[1]), "repeat_on": repeat(on[0], on[1])}

        env = collect()
        report: dict[str, Any] = {
            "environment": {k: env.get(f"env_{k}") for k in ("cpu", "cores_logical", "cores_physical", "os", "python",
                                                    "onnxruntime", "torch")},
            "settings": {"zoo": args.zoo, "models": len(specs), "runs": args.runs, "rounds": args.rounds,
                         "burners": args.burners, "threads": args.threads or "default (physical cores)",
                         "quiet_sweep_s": {"blocked": round(t_blocked, 1), "interleaved": round(t_inter, 1)},
                         "bursts": bursts},
            "burst_vs_quiet": {"blocked": compare(quiet1, quiet2, burst_blocked),
                               "interleaved": compare(quiet1_i, quiet2_i, burst_inter)},
            "repeatability": {"blocked": repeat(quiet1, quiet2), "interleaved": repeat(quiet1_i, quiet2_i),
                              "interleaved_spin_off_pair": repeat(*spin["interleaved"][False])},
            "ort_spinning_on_vs_off": {"blocked": spin_report("blocked"), "interleaved": spin_report("interleaved")},
            "medians_ms": {"quiet_blocked": medians(quiet1), "quiet_interleaved": medians(quiet1_i),
                           "burst_blocked": medians(burst_blocked), "burst_interleaved": medians(burst_inter),
                           "quiet_blocked_2": medians(quiet2), "quiet_interleaved_2": medians(quiet2_i)},
            "quiet_records_flagged": sorted(
                f"{label}:{m}" for label, recs in (("blocked-1", quiet1), ("interleaved-1", quiet1_i),
                                                   ("blocked-2", quiet2), ("interleaved-2", quiet2_i))
                for m, r in recs.items() if r.get("contended")),
        }
        if not args.no_torch:
            names = [s.name for s in specs]
            default = torch_sweep(names, args, root, None)
            passive = torch_sweep(names, args, root, "PASSIVE")
            report["torch_omp_passive_vs_default"] = repeat(default, passive)
            report["medians_ms"]["torch_default"] = medians(default)
            report["medians_ms"]["torch_passive"] = medians(passive)
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
