"""``list``, ``profile`` and ``reparam``: what the tool knows about models, before any export or timing."""

from __future__ import annotations

import click

from mobileone_bench.cli._common import (
    FiniteFloat,
    emit,
    format_option,
    input_size_option,
    models_argument,
    weights_option,
    yes_option,
    zoo_option,
)

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
    from mobileone_bench import api

    if show_zoos:
        emit(api.list_zoos(as_frame=False), fmt, [("zoo", "Zoo"), ("models", "Models"), ("description", "Description")])
        return
    rows = api.list_models(pattern, zoo, as_frame=False)
    title = f"{len(rows)} models" + (f" in zoo {zoo}" if zoo else "")
    emit(rows, fmt, [("name", "Name"), ("source", "Source"), ("target", "Builds"), ("input", "Input"),
                     ("branches", "Re-param branches"), ("paper_name", "Paper name"), ("notes", "Notes")], title)


@click.command("profile")
@models_argument()
@zoo_option()
@input_size_option()
@weights_option()
@format_option(("table", "json", "csv"))
@yes_option()
@click.option("--results", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also store each model's profile in this results folder (as `run` does), where `correlate`, "
                   "`table` and `roofline` read FLOPs and params from.")
def profile_cmd(models: tuple[str, ...], zoo: str | None, input_size: tuple[int, int] | None, weights: str | None,
                fmt: str, yes: bool, results: str | None) -> None:
    """Params and FLOPs of the inference-time (re-parameterized) model, in the paper's convention: one
    multiply-add = one FLOP, BatchNorm folded, at each model's default input size (or --input-size).

    A model that fails (cannot be built, does not run at this input size...) is a row with its error, the others
    are still profiled, and the exit status is 1.

    \b
    Examples:
      mobileone-bench profile mobileone_s0 mobilenetv2-x1.0
      mobileone-bench profile --zoo paper-table9 --format csv
      mobileone-bench profile repvgg-b1 --results results    # FLOPs for records `latency` made
    """
    from mobileone_bench import api

    rows = api.profile(models, zoo=zoo, input_size=input_size, weights=weights, progress=True, as_frame=False,
                       yes=yes, results=results)
    failed = [str(r["model"]) for r in rows if r.get("status") == "failed"]
    emit(rows, fmt, [("model", "Model"), ("input", "Input"), ("params_m", "Params (M)"), ("flops_m", "FLOPs (M)"),
                     ("activations_m", "Activations (M)"), ("memory_mb_fp32", "Memory fp32 (MB)"),
                     ("memory_mb_fp16", "fp16 (MB)"), ("depth", "Depth"),
                     ("paper_params_m", "Paper params (M)"), ("paper_flops_m", "Paper FLOPs (M)"),
                     ("status", "Status"), ("error", "Error")],
         title="Inference-time complexity (1 FLOP = 1 multiply-add)", digits={"params_m": 3, "flops_m": 1,
                                                                                "paper_flops_m": 0, "paper_params_m": 1,
                                                                                "activations_m": 2, "memory_mb_fp32": 1,
                                                                                "memory_mb_fp16": 1})
    if failed:
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        click.echo(f"{len(failed)} of {len(rows)} models failed ({shown}): see the error column.", err=True)
        raise SystemExit(1)


def _check_save(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check that --save can be written while the arguments are parsed: one line before anything is built."""
    if value is None:
        return None
    from mobileone_bench.errors import UsageError
    from mobileone_bench.reparameterization import check_save_path

    try:
        check_save_path(value)
    except UsageError as exc:
        raise UsageError(f"--save: {exc}") from None
    return value


@click.command("reparam")
@click.argument("model")
@input_size_option()
@weights_option()
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare train-time and inference-time outputs on a random input.")
@click.option("--atol", type=FiniteFloat(min=0), default=1e-5, show_default=True,
              help="Fixed absolute tolerance of the check, on top of 10x the train-time model's measured fp32 "
                   "rounding.")
@click.option("--rtol", type=FiniteFloat(min=0), default=1e-4, show_default=True,
              help="Fixed tolerance relative to the largest absolute output, on top of the fp32 rounding.")
@click.option("--save", type=click.Path(dir_okay=False), default=None, metavar="FILE", callback=_check_save,
              help="Write the inference-time state dict (fused layout) to FILE (checked writable before any work).")
@format_option()
def reparam_cmd(model: str, input_size: tuple[int, int] | None, weights: str | None, check: bool, atol: float,
                rtol: float, save: str | None, fmt: str) -> None:
    """Re-parameterize MODEL (Section 3.3: fold every branch's BatchNorm, the skip as a padded identity kernel, sum
    the branches; BN folded into preceding convs in plain CNNs) and check the outputs still match.

    The check allows --atol + --rtol x the largest output, plus ten times the train-time model's own fp32 rounding
    error on that input (measured against a float64 evaluation), so a correct fusion passes at every input size
    while a wrong one fails by orders of magnitude. Exits with status 1 when the check fails.

    \b
    Example:
      mobileone-bench reparam mobileone_s0 --check
    """
    from mobileone_bench import api
    from mobileone_bench.errors import ReparamMismatchError

    try:
        row = api.reparam(model, weights=weights, input_size=input_size, check=check, atol=atol, rtol=rtol, save=save)
    except ReparamMismatchError as exc:
        click.echo(f"FAILED: {exc}", err=True)
        raise SystemExit(1) from None
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
