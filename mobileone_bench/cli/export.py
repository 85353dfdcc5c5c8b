"""``export``: ONNX, Core ML, TensorRT and ExecuTorch artifacts with parity checks, a manifest each, and a cache."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mobileone_bench.cli._common import (
    emit,
    input_size_option,
    models_argument,
    weights_option,
    yes_option,
    zoo_option,
)

__all__ = ["export_cmd", "COMMANDS"]


@click.command("export")
@models_argument()
@zoo_option()
@click.option("--format", "formats", default="onnx", show_default=True, metavar="LIST",
              help="Comma-separated formats: onnx, coreml, tensorrt, executorch.")
@click.option("--out", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Root of the artifact tree: <out>/<model>/<format>-<precision>-<H>x<W>/.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Artifact precision (default per format: onnx fp32, coreml fp16, tensorrt fp16, executorch fp32; "
                   "int8: executorch only).")
@weights_option()
@input_size_option()
@click.option("--no-reparam", is_flag=True, help="Export the train-time model (branches kept); recorded.")
@click.option("--force", is_flag=True, help="Redo exports even when a matching artifact is cached.")
@click.option("--dynamic-batch", is_flag=True, help="ONNX/TensorRT: dynamic batch dimension.")
@click.option("--opset", type=click.IntRange(min=7), default=18, show_default=True, help="ONNX opset.")
@click.option("--coreml-type", type=click.Choice(["mlprogram", "neuralnetwork"]), default="mlprogram",
              show_default=True, help="ML program (.mlpackage) or the older neural network (.mlmodel).")
@click.option("--deployment-target", default=None, metavar="TARGET",
              help="Core ML minimum deployment target, e.g. iOS16 (default), iOS14 (neuralnetwork default).")
@click.option("--coreml-input", type=click.Choice(["tensor", "image"]), default="tensor", show_default=True,
              help="Core ML input as a tensor, or as an image with the ImageNet scale/bias.")
@click.option("--trt-workspace", type=click.IntRange(min=1), default=1024, show_default=True, metavar="MB",
              help="TensorRT builder workspace limit.")
@click.option("--tf32/--no-tf32", default=False, show_default=True,
              help="TensorRT: let fp32 layers use TF32 tensor cores (BuilderFlag.TF32).")
@click.option("--calibration-images", "--calibration", "calibration_images", type=click.Path(), default=None,
              metavar="DIR",
              help="executorch int8: calibrate on the images of DIR (or of its class sub-folders, in turns), "
                   "preprocessed as the model is evaluated, instead of random inputs.")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=16, show_default=True, metavar="N",
              help="executorch int8: random calibration inputs, or at most N images of --calibration-images.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@yes_option()
def export_cmd(models: tuple[str, ...], zoo: str | None, formats: str, out: str, precision: str | None,
               weights: str | None, input_size: tuple[int, int] | None, no_reparam: bool, force: bool,
               dynamic_batch: bool, opset: int, coreml_type: str, deployment_target: str | None, coreml_input: str,
               trt_workspace: int, tf32: bool, calibration_images: str | None, calibration_samples: int, as_json: bool,
               yes: bool) -> None:
    """Export models to ONNX, Core ML, TensorRT and/or ExecuTorch, check each artifact against PyTorch, and write
    a manifest.json beside it. Matching artifacts are reused (cache); --force redoes them.

    Exits with status 1 if any export failed or failed its parity check.

    \b
    Examples:
      mobileone-bench export mobileone_s0 --format onnx,coreml
      mobileone-bench export --zoo paper-table9 --format onnx
      mobileone-bench export 'mobileone*' --format coreml --coreml-input image --precision fp32
      mobileone-bench export mobileone_s1 --format tensorrt          (NVIDIA GPU + tensorrt extra)
      mobileone-bench export mobileone_s0 --format executorch --precision int8 --calibration-images imgs/
                                                                     (executorch extra)
    """
    from mobileone_bench import api

    rows = api.export(models, zoo=zoo, formats=formats, out=out, precision=precision, weights=weights,
                      input_size=input_size, reparameterize=not no_reparam, force=force, dynamic_batch=dynamic_batch,
                      opset=opset, coreml_type=coreml_type, deployment_target=deployment_target,
                      coreml_input=coreml_input, trt_workspace_mb=trt_workspace, tf32=tf32,
                      calibration_images=calibration_images, calibration_samples=calibration_samples, progress=True,
                      as_frame=False, yes=yes)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        emit(rows, "table", [("model", "Model"), ("format", "Format"), ("precision", "Precision"),
                             ("status", "Status"), ("parity", "Parity"), ("size_mb", "MB"), ("seconds", "s"),
                             ("error", "Error")], title=f"Export to {Path(out)}")
    bad = [r for r in rows if r.get("status") in ("failed", "parity failed")]
    if bad:
        click.echo(f"{len(bad)} of {len(rows)} exports failed or failed their parity check.", err=True)
        raise SystemExit(1)


COMMANDS = [export_cmd]
