"""ExecuTorch (XNNPACK) vs onnxruntime on this CPU: the latency ratio per model, at 1 and 2 threads, in one run.

Every model of the zoo is prepared and exported once (ONNX, ExecuTorch fp32 and, with ``--int8``, ExecuTorch int8;
cached under ``--models-dir``). Then each thread count is measured in its own child process, because ExecuTorch's
XNNPACK thread pool is one per process and is sized before any method is loaded: the child loads every runner
(onnxruntime and ExecuTorch for every model) and times them in ``--rounds`` interleaved rounds, visiting every
(model, runtime) pair once per round in a fresh seeded order, each block after a short warm-up, so that drift in
the machine's load hits both runtimes alike. The ratio per model is ExecuTorch's median over onnxruntime's median
(below 1: ExecuTorch is faster); int8 is reported against ExecuTorch fp32 and against onnxruntime.

Spin policy (stated in the output): onnxruntime's intra-op workers do not spin (``allow_spinning`` off, the tool's
default; ``--ort-spinning`` turns it on); ExecuTorch's pthreadpool has a compiled-in spin of up to 1e6 yields before
a worker sleeps, which no Python API changes. With 1 thread neither has workers, so the 1-thread ratio is free of
this difference.

Run it alone on a quiet machine (it measures; the CI box's timings move by +-15%):

    python benchmarks/executorch_vs_ort.py                       # quick zoo, 1 and 2 threads, 100 runs, 5 rounds
    python benchmarks/executorch_vs_ort.py --int8                # + ExecuTorch int8 (about a minute per model)
    python benchmarks/executorch_vs_ort.py --models mobileone_tiny --runs 3 --rounds 1 --threads 1   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch  # noqa: E402 - benchmarks/_scratch.py

ROOT = Path(__file__).resolve().parents[1]


def _export_all(models: list[str], out: Path, int8: bool) -> list[dict[str, Any]]:
    """Prepare and export every model; one plan entry per model that exported (failures are listed, not fatal)."""
    from mobileone_bench import pipeline
    from mobileone_bench.models import registry
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one

    plan = []
    for name in models:
        spec = registry.resolve(name)
        entry: dict[str, Any] = {"model": spec.name}
        if not spec.available:
            entry["error"] = f"unavailable: {spec.reason}"
            plan.append(entry)
            continue
        try:
            prepared = pipeline.prepare(spec)
        except Exception as exc:  # noqa: BLE001 - reported per model
            entry["error"] = f"prepare: {exc}"
            plan.append(entry)
            continue
        entry["input_shape"] = list(prepared.input_shape)
        artifacts = {"onnxruntime": (FORMATS["onnx"], ExportOptions()),
                     "executorch": (FORMATS["executorch"], ExportOptions())}
        if int8:
            artifacts["executorch-int8"] = (FORMATS["executorch"], ExportOptions(precision="int8"))
        for key, (fmt, options) in artifacts.items():
            result = export_one(prepared, fmt, out, options)
            if result.ok:
                entry[key] = result.path
                delegation = (result.manifest or {}).get("format_meta", {}).get("delegation")
                if delegation:
                    entry[f"{key}_delegation"] = {k: delegation[k] for k in ("delegated_nodes", "non_delegated_nodes",
                                                                             "non_delegated_ops")}
            else:
                entry[f"{key}_error"] = result.error
        plan.append(entry)
        print(f"exported {spec.name}: " + ", ".join(k for k in artifacts if k in entry), file=sys.stderr)
    return plan


def _worker(plan: list[dict[str, Any]], threads: int, runs: int, warmup: int, rounds: int, seed: int,
            ort_spinning: bool) -> dict[str, Any]:
    """Load every runner at ``threads`` threads and time them in interleaved rounds (in this process)."""
    from mobileone_bench.devices._protocol import time_runs
    from mobileone_bench.devices.executorch import XNNPACK_SPIN_POLICY, ExecuTorchRunner
    from mobileone_bench.devices.onnxruntime import OnnxRuntimeRunner

    runners: dict[tuple[str, str], Any] = {}
    errors: dict[str, str] = {}
    for entry in plan:
        shape = tuple(entry.get("input_shape") or ())
        for key in ("onnxruntime", "executorch", "executorch-int8"):
            if key not in entry:
                continue
            try:
                if key == "onnxruntime":
                    runners[(entry["model"], key)] = OnnxRuntimeRunner(Path(entry[key]), shape, threads,
                                                                       allow_spinning=ort_spinning)
                else:
                    runners[(entry["model"], key)] = ExecuTorchRunner(Path(entry[key]), shape, threads,
                                                                      "int8" if key.endswith("int8") else "fp32")
            except Exception as exc:  # noqa: BLE001 - reported per model
                errors[f"{entry['model']}/{key}"] = str(exc)[:300]
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in runners}
    rng = random.Random(seed)
    order = list(runners)
    for r, n in enumerate(per_round):
        rng.shuffle(order)
        for key in order:
            samples[key] += time_runs(runners[key], warmup if r == 0 else min(2, warmup), n)
    settings = {f"{m}/{k}": runners[(m, k)].settings() for (m, k) in runners}
    for runner in runners.values():
        runner.close()
    return {"threads": threads, "medians_ms": {f"{m}/{k}": statistics.median(v) for (m, k), v in samples.items()},
            "n": {f"{m}/{k}": len(v) for (m, k), v in samples.items()}, "errors": errors,
            "ort_allow_spinning": ort_spinning, "xnnpack_spin_policy": XNNPACK_SPIN_POLICY,
            "settings": settings, "runs_per_round": per_round}


def _table(results: list[dict[str, Any]], plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for entry in plan:
        m = entry["model"]
        row: dict[str, Any] = {"model": m}
        for res in results:
            t = res["threads"]
            med = res["medians_ms"]
            ort, et, et8 = med.get(f"{m}/onnxruntime"), med.get(f"{m}/executorch"), med.get(f"{m}/executorch-int8")
            row[f"ort_ms_t{t}"] = round(ort, 4) if ort else None
            row[f"et_ms_t{t}"] = round(et, 4) if et else None
            row[f"et_over_ort_t{t}"] = round(et / ort, 3) if et and ort else None
            if et8:
                row[f"et_int8_ms_t{t}"] = round(et8, 4)
                row[f"int8_over_fp32_t{t}"] = round(et8 / et, 3) if et else None
                row[f"int8_over_ort_t{t}"] = round(et8 / ort, 3) if ort else None
        row["error"] = entry.get("error") or "; ".join(f"{k}: {v}" for k, v in entry.items() if k.endswith("_error"))
        rows.append(row)
    return rows


def _markdown(rows: list[dict[str, Any]], threads: list[int], int8: bool) -> str:
    cols = ["model"]
    for t in threads:
        cols += [f"ort_ms_t{t}", f"et_ms_t{t}", f"et_over_ort_t{t}"]
        if int8:
            cols += [f"et_int8_ms_t{t}", f"int8_over_fp32_t{t}"]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("-" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")
    ratios = {t: [r[f"et_over_ort_t{t}"] for r in rows if r.get(f"et_over_ort_t{t}")] for t in threads}
    for t, values in ratios.items():
        if values:
            geo = statistics.geometric_mean(values)
            lines.append(f"\n{t} thread(s): ExecuTorch / onnxruntime geometric mean {geo:.3f} over {len(values)} "
                         f"models (min {min(values):.3f}, max {max(values):.3f})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="quick")
    parser.add_argument("--models", nargs="*", default=None, help="models instead of the zoo")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--int8", action="store_true", help="also ExecuTorch int8 (post-training static)")
    parser.add_argument("--ort-spinning", action="store_true", help="let onnxruntime's workers spin")
    parser.add_argument("--models-dir", default=None, help="artifact folder (default: a temporary one)")
    parser.add_argument("--out", default=None, help="write the JSON result here too")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # plan file: measure one thread count
    args = parser.parse_args()
    if args.runs < 1 or args.rounds < 1 or args.warmup < 0 or min(args.threads) < 1:
        parser.error("--runs, --rounds and --threads must be >= 1, --warmup >= 0")

    if args.worker:
        plan = json.loads(Path(args.worker).read_text())
        res = _worker(plan, args.threads[0], args.runs, args.warmup, min(args.rounds, args.runs), args.seed,
                      args.ort_spinning)
        print(json.dumps(res, default=str))
        return

    from mobileone_bench.api import select
    from mobileone_bench.environment import cpu_info, library_versions

    names = [s.name for s in select(args.models or None, None if args.models else args.zoo)]
    with scratch("mobileone-bench-et-", args.models_dir) as out:
        plan = _export_all(names, out, args.int8)
        plan_file = out / "executorch_vs_ort.plan.json"
        plan_file.write_text(json.dumps(plan))
        results = []
        for t in args.threads:
            cmd = [sys.executable, __file__, "--worker", str(plan_file), "--threads", str(t), "--runs", str(args.runs),
                   "--warmup", str(args.warmup), "--rounds", str(args.rounds), "--seed", str(args.seed)]
            if args.ort_spinning:
                cmd.append("--ort-spinning")
            print(f"measuring at {t} thread(s)...", file=sys.stderr)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ})
            if proc.returncode != 0:
                raise SystemExit(f"the {t}-thread worker failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        rows = _table(results, plan)
        libs = library_versions(("torch", "onnxruntime", "executorch", "torchao"))
        report = {
            "what": "ExecuTorch (XNNPACK) / onnxruntime latency ratio per model, medians, interleaved rounds",
            "machine": {k: cpu_info().get(k) for k in ("cpu", "cores_physical", "cores_logical")}, "versions": libs,
            "runs": args.runs, "warmup": args.warmup, "rounds": args.rounds, "seed": args.seed,
            "spin_policy": {"onnxruntime_allow_spinning": args.ort_spinning,
                            "executorch": results[0]["xnnpack_spin_policy"] if results else None},
            "note": "XNNPACK's x86 kernels on this CPU, not a phone's ARM kernels",
            "rows": rows, "worker_errors": {r["threads"]: r["errors"] for r in results if r["errors"]},
            "delegation": {e["model"]: e.get("executorch_delegation") for e in plan},
        }
        text = json.dumps(report, indent=2, default=str)
        print(text)
        print(_markdown(rows, args.threads, args.int8), file=sys.stderr)
        if args.out:
            Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
