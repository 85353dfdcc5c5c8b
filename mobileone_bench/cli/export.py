"""``export``: ONNX, Core ML and TensorRT artifacts with parity checks, a manifest each, and a cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mobileone_bench.cli._common import (
    emit,
    input_size_option,
    models_argument,
    progress,
    select_models,
    weights_option,
    zoo_option,
)

__all__ = ["export_cmd", "COMMANDS", "run_exports"]


def run_exports(specs: list[Any], formats: list[Any], out: Path, options: Any, *, weights: str | None,
                input_size: tuple[int, int] | None, reparameterize: bool, force: bool,
                on_step: Any = None) -> list[Any]:
    """Export every model to every format; a model's failure is a result, the sweep goes on."""
    from mobileone_bench import pipeline
    from mobileone_bench.errors import BenchError, UsageError
    from mobileone_bench.export import FORMATS
    from mobileone_bench.export._base import FAILED, UNAVAILABLE, ExportResult, export_one

    results: list[ExportResult] = []
    for spec in specs:
        if on_step:
            on_step(spec.name)
        if not spec.available:
            for fmt in formats:
                results.append(ExportResult(spec.name, fmt.name, options.precision_for(fmt), UNAVAILABLE,
                                            error=spec.reason))
            continue
        try:
            prepared = pipeline.prepare(spec, weights=weights, input_size=input_size, reparameterize=reparameterize,
                                        check=reparameterize)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded per format, the sweep goes on
            msg = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            for fmt in formats:
                results.append(ExportResult(spec.name, fmt.name, options.precision_for(fmt), FAILED,
                                            error=f"model: {msg}"[:400]))
            continue
        context: dict[str, Any] = {"out": str(out)}
        for fmt in formats:
            if fmt.name == "tensorrt" and "onnx" not in context:
                onnx = next((r for r in results if r.model == spec.name and r.format == "onnx"), None)
                if onnx is None:
                    onnx = export_one(prepared, FORMATS["onnx"], out, _fp32(options), force=force)
                if onnx.ok:
                    context.update(onnx=onnx.path, onnx_manifest=onnx.manifest)
            result = export_one(prepared, fmt, out, options, force=force, context=context)
            if fmt.name == "onnx" and result.ok:
                context.update(onnx=result.path, onnx_manifest=result.manifest)
            results.append(result)
    return results


def _fp32(options: Any) -> Any:
    from dataclasses import replace

    return replace(options, precision="fp32")


@click.command("export")
@models_argument()
@zoo_option()
@click.option("--format", "formats", default="onnx", show_default=True, metavar="LIST",
              help="Comma-separated formats: onnx, coreml, tensorrt.")
@click.option("--out", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Root of the artifact tree: <out>/<model>/<format>-<precision>-<H>x<W>/.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default=None,
              help="Artifact precision (default per format: onnx fp32, coreml fp16, tensorrt fp16).")
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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def export_cmd(models: tuple[str, ...], zoo: str | None, formats: str, out: str, precision: str | None,
               weights: str | None, input_size: tuple[int, int] | None, no_reparam: bool, force: bool,
               dynamic_batch: bool, opset: int, coreml_type: str, deployment_target: str | None, coreml_input: str,
               trt_workspace: int, as_json: bool) -> None:
    """Export models to ONNX, Core ML and/or TensorRT, check each artifact against PyTorch, and write a
    manifest.json beside it. Matching artifacts are reused (cache); --force redoes them.

    Exits with status 1 if any export failed or failed its parity check.

    \b
    Examples:
      mobileone-bench export mobileone_s0 --format onnx,coreml
      mobileone-bench export --zoo paper-table9 --format onnx
      mobileone-bench export 'mobileone*' --format coreml --coreml-input image --precision fp32
      mobileone-bench export mobileone_s1 --format tensorrt          (NVIDIA GPU + tensorrt extra)
    """
    from mobileone_bench.export import check_format_available, parse_formats
    from mobileone_bench.export._base import ExportOptions, ensure_writable

    fmts = parse_formats(formats)
    options = ExportOptions(precision=precision, opset=opset, dynamic_batch=dynamic_batch, coreml_type=coreml_type,
                            coreml_target=deployment_target, coreml_input=coreml_input,
                            trt_workspace_mb=trt_workspace)
    options.validate()
    for fmt in fmts:
        options.precision_for(fmt)  # unsupported precision: one line, before any work
        check_format_available(fmt)
        if fmt.needs_gpu:
            from mobileone_bench.export.tensorrt import require_gpu

            require_gpu()
    specs = select_models(models, zoo)
    root = ensure_writable(Path(out))
    with progress(len(specs), "export") as bar:
        task = bar.add_task("export", total=len(specs), status="")
        state = {"first": True}

        def step(name: str) -> None:
            if not state["first"]:
                bar.advance(task)
            state["first"] = False
            bar.update(task, status=name)

        results = run_exports(specs, fmts, root, options, weights=weights, input_size=input_size,
                              reparameterize=not no_reparam, force=force, on_step=step)
        bar.update(task, completed=len(specs), status="done")
    rows = [r.as_row() for r in results]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        emit(rows, "table", [("model", "Model"), ("format", "Format"), ("precision", "Precision"),
                             ("status", "Status"), ("parity", "Parity"), ("size_mb", "MB"), ("seconds", "s"),
                             ("error", "Error")], title=f"Export to {root}")
    bad = [r for r in results if r.status in ("failed", "parity failed")]
    if bad:
        click.echo(f"{len(bad)} of {len(results)} exports failed or failed their parity check.", err=True)
        raise SystemExit(1)


COMMANDS = [export_cmd]
