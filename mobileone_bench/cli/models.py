"""``list``, ``profile`` and ``reparam``: what the tool knows about models, before any export or timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mobileone_bench.cli._common import (
    FiniteFloat,
    emit,
    format_option,
    input_size_option,
    models_argument,
    progress,
    select_models,
    weights_option,
    zoo_option,
)
from mobileone_bench.errors import BenchError

__all__ = ["list_cmd", "profile_cmd", "reparam_cmd"]


@click.command("list")
@click.argument("pattern", required=False)
@zoo_option()
@click.option("--zoos", "show_zoos", is_flag=True, help="List the named zoos instead of models.")
@format_option()
def list_cmd(pattern: str | None, zoo: str | None, show_zoos: bool, fmt: str) -> None:
    """Every model the tool can build: own architectures, paper row names, and (with a prefix pattern such as
    'timm:mobilenet*' or 'torchvision:*') the outside zoos.

    \b
    Examples:
      mobileone-bench list
      mobileone-bench list 'mobileone*'
      mobileone-bench list --zoo paper-table9
      mobileone-bench list 'timm:repvgg*' --format json
    """
    from mobileone_bench import registry

    if show_zoos:
        rows = [{"zoo": k, "models": len(registry.zoo_models(k)), "description": d}
                for k, d in registry.list_zoos().items()]
        emit(rows, fmt, [("zoo", "Zoo"), ("models", "Models"), ("description", "Description")])
        return
    specs = registry.list_models(pattern, zoo)
    rows = []
    for s in specs:
        row = s.as_row()
        row["input"] = f"{s.input_size[0]}x{s.input_size[1]}"
        row["branches"] = "?" if s.reparameterizable is None else ("yes" if s.reparameterizable else "no")
        row["notes"] = s.reason or ", ".join(s.patches)
        rows.append(row)
    title = f"{len(rows)} models" + (f" in zoo {zoo}" if zoo else "")
    emit(rows, fmt, [("name", "Name"), ("source", "Source"), ("target", "Builds"), ("input", "Input"),
                     ("branches", "Re-param branches"), ("paper_name", "Paper name"), ("notes", "Notes")], title)


def _paper_figures(name: str) -> dict[str, Any]:
    from mobileone_bench.analysis.reference import paper_row

    for table in ("table9", "table13"):
        row = paper_row(name, table)
        if row:
            return {"paper_flops_m": row.get("flops_m"), "paper_params_m": row.get("params_m")}
    return {}


@click.command("profile")
@models_argument()
@zoo_option()
@input_size_option()
@weights_option()
@format_option(("table", "json", "csv"))
def profile_cmd(models: tuple[str, ...], zoo: str | None, input_size: tuple[int, int] | None, weights: str | None,
                fmt: str) -> None:
    """Params and FLOPs of the inference-time (re-parameterized) model, in the paper's convention: one
    multiply-add = one FLOP, BatchNorm folded, at each model's default input size (or --input-size).

    \b
    Examples:
      mobileone-bench profile mobileone_s0 mobilenetv2-x1.0
      mobileone-bench profile --zoo paper-table9 --format csv
    """
    from mobileone_bench import pipeline

    specs = select_models(models, zoo)
    rows: list[dict[str, Any]] = []
    failed = 0
    with progress(len(specs), "profile") as bar:
        task = bar.add_task("profile", total=len(specs), status="")
        for spec in specs:
            bar.update(task, status=spec.name)
            row: dict[str, Any] = {"model": spec.name, **_paper_figures(spec.name)}
            if not spec.available:
                row.update(status="unavailable", error=spec.reason)
            else:
                try:
                    prepared = pipeline.prepare(spec, weights=weights, input_size=input_size, check=False)
                    row.update(pipeline.profile(prepared), status="ok", error=None)
                    row["input"] = "x".join(str(d) for d in prepared.input_shape[2:])
                except BenchError as exc:
                    if len(specs) == 1:
                        raise
                    row.update(status="failed", error=str(exc))
                    failed += 1
            rows.append(row)
            bar.advance(task)
    emit(rows, fmt, [("model", "Model"), ("input", "Input"), ("params_m", "Params (M)"), ("flops_m", "FLOPs (M)"),
                     ("paper_params_m", "Paper params (M)"), ("paper_flops_m", "Paper FLOPs (M)"),
                     ("status", "Status"), ("error", "Error")],
         title="Inference-time complexity (1 FLOP = 1 multiply-add)", digits={"params_m": 3, "flops_m": 1,
                                                                                "paper_flops_m": 0, "paper_params_m": 1})
    if failed:
        raise SystemExit(1)


@click.command("reparam")
@click.argument("model")
@input_size_option()
@weights_option()
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare train-time and inference-time outputs on a random input.")
@click.option("--atol", type=FiniteFloat(min=0), default=1e-5, show_default=True, help="Absolute tolerance of the check.")
@click.option("--rtol", type=FiniteFloat(min=0), default=1e-4, show_default=True,
              help="Tolerance relative to the largest absolute output.")
@click.option("--save", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE",
              help="Write the inference-time state dict (fused layout) to FILE.")
@format_option()
def reparam_cmd(model: str, input_size: tuple[int, int] | None, weights: str | None, check: bool, atol: float,
                rtol: float, save: str | None, fmt: str) -> None:
    """Re-parameterize MODEL (Section 3.3: fold every branch's BatchNorm, the skip as a padded identity kernel, sum
    the branches; BN folded into preceding convs in plain CNNs) and check the outputs still match.

    Exits with status 1 when the check fails.

    \b
    Example:
      mobileone-bench reparam mobileone_s0 --check
    """
    from mobileone_bench import pipeline
    from mobileone_bench.complexity import count_params
    from mobileone_bench.errors import ReparamMismatchError

    try:
        prepared = pipeline.prepare(model, weights=weights, input_size=input_size, check=check, atol=atol, rtol=rtol)
    except ReparamMismatchError as exc:
        click.echo(f"FAILED: {exc}", err=True)
        raise SystemExit(1) from None
    row: dict[str, Any] = {
        "model": prepared.spec.name,
        "input": "x".join(str(d) for d in prepared.input_shape[2:]),
        "params_train": count_params(prepared.train_model),
        "params_infer": count_params(prepared.model),
        **(prepared.reparam or {}),
    }
    if prepared.verify:
        row.update({"max_abs_err": prepared.verify["max_abs_err"], "max_rel_err": prepared.verify["max_rel_err"],
                    "check": "passed" if prepared.verify["passed"] else "FAILED"})
    else:
        row["check"] = "not run"
    if save:
        import torch

        Path(save).parent.mkdir(parents=True, exist_ok=True)
        torch.save(prepared.model.state_dict(), save)
        row["saved"] = save
    if fmt == "json":
        emit([row], fmt, [])
        return
    from rich.markup import escape

    from mobileone_bench.cli._common import stdout

    out = stdout()
    for key, value in row.items():
        if isinstance(value, float):
            value = f"{value:.3g}"
        out.print(f"[bold]{key:>24}[/bold]  {escape(str(value))}")
COMMANDS = [list_cmd, profile_cmd, reparam_cmd]
