"""``run`` (the whole pipeline over a zoo) and ``ablate`` (the Section 3.2 bottleneck studies)."""

from __future__ import annotations

import json
from typing import Any

import click

from mobileone_bench.cli._common import emit, input_size_option, models_argument, stdout, yes_option
from mobileone_bench.cli.latency import protocol_options

__all__ = ["run_cmd", "ablate_cmd", "COMMANDS"]


def _measurement_options(f: Any) -> Any:
    """Options shared by ``run`` and ``ablate`` (a subset of ``latency``'s)."""
    options = [
        click.option("--device", type=click.Choice(["cpu", "gpu", "iphone", "mac"]), default="cpu",
                     show_default=True, help="Where to measure."),
        click.option("--runtime", default=None, help="Runtime (default: the device's, see `latency --help`)."),
        click.option("--warmup", type=click.IntRange(min=0), default=None, help="Untimed runs first."),
        click.option("--runs", type=click.IntRange(min=1), default=None, help="Timed runs (default 100 on CPU/GPU)."),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: physical cores)."),
        click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
                     help="Default per device (int8: --runtime executorch)."),
        click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
                     help="Results store folder."),
        click.option("--models-dir", default="models", show_default=True, type=click.Path(file_okay=False),
                     help="Artifact folder."),
        click.option("--force", is_flag=True, help="Measure again what is already stored."),
        click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True),
    ]
    for option in reversed(options):
        f = option(f)
    return protocol_options(f)


@click.command("run")
@models_argument()
@click.option("--zoo", default=None, metavar="NAME", help="Zoo to run (default: quick; see `list --zoos`).")
@_measurement_options
@input_size_option()
@click.option("--remeasure-flagged", is_flag=True,
              help="After the sweep, measure again every latency that is flagged (contended, or noisy by its CV) "
                   "and append the new records (one more pass; the old records are kept).")
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Measure on a Ray cluster (HOST:PORT, or auto): each model on a node of each --on label, one "
                   "measurement per node; records come back to --results. Needs "
                   "pip install 'mobileone-bench[cluster]'.")
@click.option("--on", "on", multiple=True, metavar="LABEL",
              help="--cluster: the host label to measure on (cpu-x86, gpu-h100...); repeat for several.")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="--cluster: send a measurement whose node died again, up to N times.")
@yes_option()
def run_cmd(models: tuple[str, ...], zoo: str | None, device: str, runtime: str | None, warmup: int | None,
            runs: int | None, threads: int | None, precision: str | None, results: str, models_dir: str,
            force: bool, protocol: str | None, rounds: int, seed: int, max_extra_rounds: int | None, extra_time: float | None, memory_budget: float | None, wait_quiet: float | None,
            ort_spinning: bool, fmt: str, input_size: tuple[int, int] | None, remeasure_flagged: bool,
            cluster: str | None, on: tuple[str, ...], retries: int, yes: bool) -> None:
    """The main job: for every model of a zoo, profile (params, FLOPs), export and measure latency, storing each
    step; then print the Table 9-style table and the Spearman correlations of latency with FLOPs and params.

    A failing model is recorded and the rest go on; a killed run resumes where it stopped (stored steps are
    skipped unless --force). The default zoo, 'quick', takes a few minutes on a laptop CPU.

    \b
    Examples:
      mobileone-bench run
      mobileone-bench run --zoo paper-table9 --threads 1
      mobileone-bench run 'mobileone*' --runs 300
      mobileone-bench run --cluster auto --on cpu-x86 --on gpu-h100 --device cpu
    """
    from mobileone_bench import api
    from mobileone_bench._progress import console
    from mobileone_bench.cli.latency import environment_line

    done = api.run(models, zoo=zoo, device=device, runtime=runtime, warmup=warmup, runs=runs, threads=threads,
                   precision=precision, results=results, models_dir=models_dir, force=force, protocol=protocol,
                   rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time,
                   memory_budget=memory_budget, wait_quiet=wait_quiet, ort_spinning=ort_spinning,
                   input_size=input_size, remeasure_flagged=remeasure_flagged, progress=True, cluster=cluster, on=on,
                   retries=retries, yes=yes, as_frame=False)
    job, summary, records = done.attrs["job"], done["models"], done["records"]
    for note in done.attrs["remeasure_notes"]:  # --remeasure-flagged: what was measured again
        console().print(note, highlight=False, markup=False)
    if fmt == "json":
        click.echo(json.dumps({"models": summary, **_report(done, as_json=True)}, indent=2, default=str))
    else:
        emit(summary, "table", [("model", "Model"), *([("on", "On")] if cluster else []),
                                ("params_m", "Params (M)"), ("flops_m", "FLOPs (M)"),
                                ("latency_ms", f"{job.device} {job.runtime} (ms, {job.report} of {job.runs})"),
                                ("cv", "CV"), ("paper_latency_ms", f"Paper {job.device} (ms)"), ("status", "Status")],
             title=f"mobileone-bench run: {len(records)} models", digits={"params_m": 2, "flops_m": 0, "cv": 3,
                                                                            "latency_ms": 3})
        _report(done, as_json=False)
        stdout().print(environment_line(records), style="dim", markup=False, highlight=False)
    failed = [s for s in summary if str(s["status"]).startswith("failed")]
    unavailable = [s for s in summary if str(s["status"]).startswith("unavailable")]
    if unavailable:
        click.echo(f"{len(unavailable)} of {len(summary)} models cannot be built here (listed with the reason).",
                   err=True)
    if failed:
        click.echo(f"{len(failed)} of {len(summary)} models failed (recorded in {done.attrs['results']}).", err=True)
        raise SystemExit(1)


def _report(done: Any, *, as_json: bool) -> Any:
    """The Table 9 layout (with the paper's figures beside ours) and the Spearman correlations (Table 1 layout) of
    the models just run, as :func:`mobileone_bench.api.run` returned them."""
    from mobileone_bench.cli.analysis import rich_agreement, rich_correlation, rich_paper_table

    table, corr, note = done.attrs["built_table"], done["correlation"], done.attrs["correlation_note"]
    out: dict[str, Any] = {"table": done["table"], "agreement": done["agreement"], "correlation": corr}
    if corr is None and note:
        out["correlation_note"] = note
    if as_json:
        return out
    if table:
        stdout().print(rich_paper_table(table))
        for line in table.get("footnotes") or []:
            if "contended" in line:  # the other footnotes are `table`'s business
                stdout().print(f"  {line}", style="dim", highlight=False, markup=False)
        if table.get("agreement"):
            stdout().print(rich_agreement(table))
    elif done.attrs["table_note"]:
        stdout().print(f"Table 9 layout: {done.attrs['table_note']}")
    if corr:
        stdout().print(rich_correlation(corr))
    elif note:
        stdout().print(f"Spearman correlation: {note}")
    return out


@click.command("ablate")
@click.argument("study", type=click.Choice(["activations", "blocks"]))
@_measurement_options
@click.option("--formats", default="onnx,coreml", show_default=True,
              help="Formats every variant is exported to (a variant that cannot convert is recorded).")
@click.option("--destination", default=None, metavar="NAME|UDID", help="iphone: the device to run on.")
@click.option("--compute-units", type=click.Choice(["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"]), default="all",
              show_default=True, help="iphone/mac: Core ML compute units.")
@click.option("--from-report", "reports", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE", help="iphone/mac: import the harness report of the variants instead of measuring.")
def ablate_cmd(study: str, device: str, runtime: str | None, warmup: int | None, runs: int | None,
               threads: int | None, precision: str | None, results: str, models_dir: str, force: bool,
               protocol: str | None, rounds: int, seed: int, max_extra_rounds: int | None, extra_time: float | None, memory_budget: float | None, wait_quiet: float | None, ort_spinning: bool, fmt: str,
               formats: str, destination: str | None, compute_units: str, reports: tuple[str, ...]) -> None:
    """The Section 3.2 bottleneck studies: the 30-layer network with different activations (Table 2) or blocks
    (Table 3), exported and measured through the normal pipeline, with the latency ratio to the ReLU baseline
    beside the paper's iPhone figures.

    On --device iphone or mac the variants are measured with the Core ML harness (a Mac with Xcode), or imported
    from a report of the app run by hand (--from-report); see `latency --help`.

    \b
    Examples:
      mobileone-bench ablate activations
      mobileone-bench ablate blocks --threads 1 --runs 200
      mobileone-bench ablate activations --device iphone --from-report report.json
    """
    from mobileone_bench import api

    out_rows = api.ablate(study, device=device, runtime=runtime, warmup=warmup, runs=runs, threads=threads,
                          precision=precision, results=results, models_dir=models_dir, force=force, protocol=protocol,
                          rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time,
                          memory_budget=memory_budget, wait_quiet=wait_quiet, ort_spinning=ort_spinning,
                          formats=formats, destination=destination, compute_units=compute_units,
                          from_reports=reports, progress=True, as_frame=False)
    job, fmts = out_rows.attrs["job"], out_rows.attrs["formats"]
    if fmt == "json":
        click.echo(json.dumps(out_rows, indent=2, default=str))
    else:
        cols = [("variant", "Variant"), ("model", "Model"), ("flops_m", "FLOPs (M)"),
                ("latency_ms", f"{job.device} (ms, {job.report})"), ("ratio", "x ReLU"),
                ("paper_iphone_ms", "Paper iPhone 12 (ms)"), ("paper_ratio", "Paper x ReLU")]
        cols += [(f"export_{name}", name) for name in fmts]
        cols.append(("status", "Status"))
        title = ("Table 2: activation functions" if study == "activations" else "Table 3: architectural blocks") + \
                " in the 30-layer network"
        emit(out_rows, "table", cols, title=title, digits={"flops_m": 0, "latency_ms": 2, "ratio": 2,
                                                           "paper_ratio": 2})
        stdout().print("The network's widths and strides are ours (the paper gives none): see "
                       "mobileone_bench/models/archs/ablation.py.", style="dim")
    if any(str(r["status"]).startswith("failed") for r in out_rows):
        raise SystemExit(1)


COMMANDS = [run_cmd, ablate_cmd]
