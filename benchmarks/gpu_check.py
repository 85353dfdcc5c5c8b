"""The prepared GPU check of issue 28 (run by ``benchmarks/gpu_check.sh`` on a machine with an NVIDIA GPU).

Exports MobileOne-S0 and three of the paper's rows to TensorRT fp16 (strongly typed from the fp16 ONNX graph on
TensorRT 10/11), then measures each with TensorRT replayed from a CUDA graph (the default), TensorRT launched every
run (``cuda_graphs=False``) and torch-cuda (CUDA graph), all in one process, and prints one JSON summary: per model
the export status, the engine's per-layer precisions and the three medians (ms), and ``explain`` on TensorRT (the
layers read back to their ONNX nodes: category shares and coverage). Importable anywhere (nothing runs on import);
``--dry-run`` prints the plan without touching a GPU.

    python benchmarks/gpu_check.py --out /tmp/gpu-check [--runs 100] [--models mobileone_s0,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

#: MobileOne-S0 and three paper rows (Table 9): a depthwise CNN, a NAS CNN with squeeze-excite, a hybrid transformer.
MODELS = ("mobileone_s0", "mobilenetv2-x1.0", "efficientnet-b0", "mobilevit-xs")
#: (label, runtime, options): what each model is measured with.
MODES = (("tensorrt-graph", "tensorrt", {"cuda_graphs": True}),
         ("tensorrt-launch", "tensorrt", {"cuda_graphs": False}),
         ("torch-cuda-graph", "torch-cuda", {"cuda_graphs": True}))


def plan(models: tuple[str, ...] = MODELS, runs: int = 100) -> dict[str, Any]:
    """What the check does, as data (the ``--dry-run`` output)."""
    return {"models": list(models), "export": {"formats": "onnx,tensorrt", "precision": "fp16",
                                                                "opset": "default (18; TensorRT 8.6 needs 17)"},
            "modes": [{"label": label, "runtime": rt, **opts} for label, rt, opts in MODES], "runs": runs}


def _median(records: list[dict[str, Any]], model: str) -> float | None:
    for r in records:
        if r.get("model") == model and r.get("status") == "ok":
            return r.get("latency_ms")
    return None


def run(out: Path, models: tuple[str, ...] = MODELS, runs: int = 100) -> dict[str, Any]:
    """Export, measure and summarize (needs the GPU and the tensorrt extra)."""
    import mobileone_bench as mb
    from mobileone_bench.devices._tensorrt import installed_tensorrt

    out = Path(out)
    started = time.perf_counter()
    summary: dict[str, Any] = {"tensorrt": installed_tensorrt(), "plan": plan(models, runs), "models": {}}
    rows = mb.export(list(models), formats="onnx,tensorrt", out=out / "models", as_frame=False, yes=True)
    for row in rows:
        entry = summary["models"].setdefault(row["model"], {})
        entry[f"export_{row['format']}"] = (row["status"] if row.get("error") is None
                                            else f"{row['status']}: {row['error']}")
        if row["format"] == "tensorrt" and row.get("path"):
            manifest = json.loads((Path(row["path"]).parent / "manifest.json").read_text(encoding="utf-8"))
            meta = manifest.get("format_meta") or {}
            entry.update(typing=meta.get("typing"), onnx_dtype=meta.get("onnx_dtype"),
                         layer_precisions=meta.get("layer_precisions"),
                         parity=(manifest.get("parity") or {}).get("summary"))
    for label, runtime, options in MODES:
        records = mb.latency(list(models), device="gpu", runtime=runtime, precision="fp16", runs=runs,
                             results=out / "results", models_dir=out / "models", as_frame=False, yes=True, **options)
        for model in models:
            summary["models"].setdefault(model, {})[f"{label}_median_ms"] = _median(records, model)
        for r in records:
            if r.get("status") != "ok":
                summary["models"].setdefault(r.get("model"), {})[f"{label}_error"] = r.get("error")
            else:
                settings = r.get("runtime_settings") or {}
                settings = json.loads(settings) if isinstance(settings, str) else settings
                summary["models"].setdefault(r.get("model"), {})[f"{label}_launch"] = settings.get("launch")
    # explain on TensorRT: the layers read back to their ONNX nodes (issue 30), categories and coverage
    frame = mb.explain(list(models), device="gpu", runtime="tensorrt", precision="fp16", runs=runs, profiled_runs=10,
                       results=out / "results", models_dir=out / "models", as_frame=False, yes=True)
    for r in frame:
        shares = {k[len("share_"):]: v for k, v in r.items() if k.startswith("share_") and v}
        summary["models"].setdefault(r.get("model"), {})["explain_tensorrt"] = {
            "coverage": r.get("coverage"), "top_category": r.get("top_category"), "shares": shares}
    summary["explain_notes"] = [n for n in frame.attrs.get("notes", []) if "read back" in n or "failed" in n]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check"))
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    models = tuple(m for m in args.models.split(",") if m)
    result = plan(models, args.runs) if args.dry_run else run(args.out, models, args.runs)
    json.dump(result, sys.stdout, indent=1, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
