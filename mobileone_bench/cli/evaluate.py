"""``evaluate``: top-1 and top-5 of a model and of every artifact of it on the user's own validation images."""

from __future__ import annotations

import json
from typing import Any

import click

from mobileone_bench.cli._common import (
    emit,
    input_size_option,
    models_argument,
    warn,
    weights_option,
    yes_option,
    zoo_option,
)

__all__ = ["evaluate_cmd", "COMMANDS", "EVALUATE_TABLE"]

EVALUATE_TABLE = [("model", "Model"), ("artifact", "Artifact"), ("precision", "Prec."), ("runtime", "Runtime"),
                  ("n", "n"), ("top1_text", "Top-1 % (95% CI)"), ("top5", "Top-5 %"), ("agreement", "Agrees %"),
                  ("paper_top1", "Paper top-1"), ("state", "Status")]


def _rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for rec in records:
        row = dict(rec)
        if rec.get("status") == "ok" and rec.get("top1") is not None:
            row["top1_text"] = f"{rec['top1']:.2f} ({rec['top1_ci_low']:.2f}-{rec['top1_ci_high']:.2f})"
        row["state"] = "ok" if rec.get("status") == "ok" else f"failed: {rec.get('error')}"
        used = rec.get("calibration_used")  # lists and dicts are stored as compact JSON
        used = json.loads(used) if isinstance(used, str) and used.startswith("{") else used
        if isinstance(used, dict) and used.get("source"):
            row["state"] += f" (int8 calibrated on {used['source']})"
        rows.append(row)
    return rows


@click.command("evaluate")
@models_argument()
@zoo_option()
@click.option("--data", required=True, type=click.Path(), metavar="DIR",
              help="Labelled images: a class per sub-folder, or ImageNet's validation layout (the images and a "
                   "label file: val.txt, LOC_val_solution.csv, or --labels). Nothing is downloaded.")
@click.option("--labels", type=click.Path(), default=None, metavar="FILE",
              help="The label file of a folder of images ('<file> <index or synset>' lines).")
@weights_option()
@click.option("--format", "formats", default=None, metavar="LIST",
              help="Comma-separated: pytorch, onnx, executorch, tensorrt, coreml (default: PyTorch and every "
                   "artifact this machine can run; ExecuTorch at fp32 and int8).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Precision of the formats named (default: each format's own).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Evaluate the first N images (class folders in turns, so N covers the classes).")
@input_size_option()
@click.option("--calibration", type=click.Path(), default=None, metavar="DIR",
              help="ExecuTorch int8: calibrate on these images (a class per sub-folder, or images) instead of "
                   "random inputs; the record says which.")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=16, show_default=True, metavar="N",
              help="ExecuTorch int8: random calibration inputs, or at most N images of --calibration.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: physical cores).")
@click.option("--compute-units", type=click.Choice(["all", "cpu", "cpu-gpu", "cpu-ne"]), default="all",
              show_default=True, help="Core ML (macOS): the compute units predictions may use.")
@click.option("--results", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Results folder the accuracy records are stored in.")
@click.option("--models-dir", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Root of the artifact tree (artifacts are exported there, or reused).")
@click.option("--force", is_flag=True, help="Evaluate again even when an identical evaluation is stored.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@yes_option()
def evaluate_cmd(models: tuple[str, ...], zoo: str | None, data: str, labels: str | None, weights: str | None,
                 formats: str | None, precision: str | None, limit: int | None, input_size: tuple[int, int] | None,
                 calibration: str | None, calibration_samples: int, threads: int | None, compute_units: str,
                 results: str, models_dir: str, force: bool, as_json: bool, yes: bool) -> None:
    """Top-1 and top-5 accuracy of each model and of each of its artifacts (ONNX on onnxruntime, ExecuTorch fp32
    and int8, TensorRT on a GPU, Core ML on macOS) on a local labelled image folder, with 95% intervals and the
    share of images whose top-1 class agrees with PyTorch's. One accuracy record per (model, artifact, precision).

    Exits with status 1 if any evaluation failed.

    \b
    Examples:
      mobileone-bench evaluate mobileone_s0 --weights mobileone_s0.pth.tar --data imagenet/val --limit 5000
      mobileone-bench evaluate mobileone_s0 --data val/ --format executorch --precision int8 --calibration train_sample/
      mobileone-bench evaluate timm:resnet18 --weights resnet18.safetensors --data val/ --labels val.txt
    """
    from mobileone_bench import api

    records = api.evaluate(models, data=data, zoo=zoo, labels=labels, weights=weights, formats=formats,
                           precision=precision, limit=limit, input_size=input_size, calibration=calibration,
                           calibration_samples=calibration_samples, threads=threads, compute_units=compute_units,
                           results=results, models_dir=models_dir, force=force, progress=True, as_frame=False,
                           yes=yes)
    for note in records.attrs.get("notes") or []:
        warn(note)
    rows = _rows(list(records))
    if as_json:
        click.echo(json.dumps(list(records), indent=2, default=str))
    else:
        n = next((r.get("n") for r in rows if r.get("n")), "?")
        emit(rows, "table", EVALUATE_TABLE, title=f"Accuracy on {data} ({n} images)")
    bad = [r for r in records if r.get("status") != "ok"]
    if bad:
        click.echo(f"{len(bad)} of {len(records)} evaluations failed.", err=True)
        raise SystemExit(1)


COMMANDS = [evaluate_cmd]
