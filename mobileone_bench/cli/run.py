"""``run`` (the whole pipeline over a zoo) and ``ablate`` (the Section 3.2 bottleneck studies)."""

from __future__ import annotations

import json
from typing import Any

import click

from mobileone_bench.cli._common import emit, input_size_option, models_argument, select_models, stdout
from mobileone_bench.cli.latency import measurement_progress, protocol_options, wait_until_quiet

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
        click.option("--precision", type=click.Choice(["fp32", "fp16"]), default=None, help="Default per device."),
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


def _job(device: str, runtime: str | None, warmup: int | None, runs: int | None, threads: int | None,
         precision: str | None, models_dir: str, input_size: tuple[int, int] | None = None,
         compute_units: str | None = None, *, protocol: str | None = None, rounds: int | None = None, seed: int = 0,
         ort_spinning: bool | None = None) -> Any:
    from mobileone_bench import pipeline
    from mobileone_bench.devices import check_runtime_available, get_runtime
    from mobileone_bench.errors import UsageError

    if device in ("iphone", "mac") and compute_units is not None:
        return pipeline.LatencyJob(device=device, runtime=runtime, precision=precision, warmup=warmup, runs=runs,
                                   runtime_options=(("compute_units", compute_units),), input_size=input_size,
                                   models_dir=models_dir).resolved()
    if device in ("iphone", "mac"):
        raise UsageError(f"`run` and `ablate` measure on cpu or gpu; for {device}, export with `export --format "
                         f"coreml`, then `latency --device {device}` (or import the app's report with --from-report)")
    check_runtime_available(get_runtime(device, runtime))
    if device == "gpu":
        from mobileone_bench.devices.gpu import require_cuda

        require_cuda()
    from mobileone_bench.devices import ORT_SPINNING_DEFAULT, cpu_runtime_options

    spinning = ORT_SPINNING_DEFAULT if ort_spinning is None else ort_spinning
    options = cpu_runtime_options(runtime, allow_spinning=spinning) if device == "cpu" else (("cuda_graphs", True),)
    return pipeline.LatencyJob(device=device, runtime=runtime, precision=precision, warmup=warmup, runs=runs,
                               threads=threads, runtime_options=options, input_size=input_size,
                               models_dir=models_dir, protocol=protocol, rounds=rounds, seed=seed).resolved()


def _sweep(specs: list[Any], job: Any, store: Any, force: bool, title: str, *,
           force_latency: bool = False) -> list[dict[str, Any]]:
    """The pipeline over the specs with one progress bar over the timed blocks (interleaved for several)."""
    from mobileone_bench import pipeline

    job = job.for_models(len(specs))
    with measurement_progress(len(specs), job, title) as step:
        return pipeline.run_models(specs, job, store, force=force, force_latency=force_latency, on_step=step)


def _remeasure(rows: list[dict[str, Any]], specs: list[Any], job: Any, store: Any) -> list[dict[str, Any]]:
    """``--remeasure-flagged``: one more sweep over the models whose latency record is flagged; the new records are
    appended (readers take the newest per key) and replace the old ones in ``rows``."""
    from mobileone_bench.cli._common import stderr
    from mobileone_bench.pipeline import flagged

    again = [spec for spec, row in zip(specs, rows) if flagged(row["latency"])]
    if not again:
        stderr().print("--remeasure-flagged: no latency record is flagged", highlight=False)
        return rows
    stderr().print(f"--remeasure-flagged: measuring {len(again)} flagged model(s) again: "
                   f"{', '.join(s.name for s in again)}", highlight=False, markup=False)
    new = {r["model"]: r for r in _sweep(again, job, store, False, "remeasure", force_latency=True)}
    still = [name for name, r in new.items() if flagged(r["latency"])]
    if still:
        stderr().print(f"--remeasure-flagged: still flagged: {', '.join(still)}", highlight=False, markup=False)
    return [new.get(row["model"], row) for row in rows]


def _summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from mobileone_bench.analysis.reference import paper_row
    from mobileone_bench.pipeline import is_unavailable

    out = []
    for r in rows:
        prof, lat = r["profile"], r["latency"]
        paper = paper_row(r["model"]) or paper_row(r["model"], "table13") or {}
        paper_lat = (paper.get("latency_ms") or {}).get(lat.get("device"))
        state = "ok" if lat.get("status") == "ok" else f"failed: {lat.get('error')}"
        if is_unavailable(lat):
            state = str(lat.get("error"))
        if lat.get("status") == "ok" and r["skipped"]["latency"]:
            state = "ok (stored)"
        if lat.get("status") == "ok" and lat.get("contended"):
            state += f" (contended {lat.get('contended_share') or 0:.0%})"
        elif lat.get("status") == "ok" and lat.get("noise_warning"):
            state += " (noisy)"
        out.append({
            "model": r["model"], "params_m": prof.get("params_m"), "flops_m": prof.get("flops_m"),
            "latency_ms": lat.get("latency_ms"), "cv": lat.get("cv"),
            "paper_latency_ms": paper_lat, "status": state,
        })
    return out


@click.command("run")
@models_argument()
@click.option("--zoo", default=None, metavar="NAME", help="Zoo to run (default: quick; see `list --zoos`).")
@_measurement_options
@input_size_option()
@click.option("--remeasure-flagged", is_flag=True,
              help="After the sweep, measure again every latency that is flagged (contended, or noisy by its CV) "
                   "and append the new records (one more pass; the old records are kept).")
def run_cmd(models: tuple[str, ...], zoo: str | None, device: str, runtime: str | None, warmup: int | None,
            runs: int | None, threads: int | None, precision: str | None, results: str, models_dir: str,
            force: bool, protocol: str | None, rounds: int, seed: int, wait_quiet: float | None,
            ort_spinning: bool, fmt: str, input_size: tuple[int, int] | None, remeasure_flagged: bool) -> None:
    """The main job: for every model of a zoo, profile (params, FLOPs), export and measure latency, storing each
    step; then print the Table 9-style table and the Spearman correlations of latency with FLOPs and params.

    A failing model is recorded and the rest go on; a killed run resumes where it stopped (stored steps are
    skipped unless --force). The default zoo, 'quick', takes a few minutes on a laptop CPU.

    \b
    Examples:
      mobileone-bench run
      mobileone-bench run --zoo paper-table9 --threads 1
      mobileone-bench run 'mobileone*' --runs 300
    """
    from mobileone_bench.records import ResultsStore

    job = _job(device, runtime, warmup, runs, threads, precision, models_dir, input_size, protocol=protocol,
               rounds=rounds, seed=seed, ort_spinning=ort_spinning)
    specs = select_models(models, zoo, default_zoo="quick")
    store = ResultsStore(results)
    wait_until_quiet(wait_quiet)
    rows = _sweep(specs, job, store, force, "run")
    if remeasure_flagged:
        rows = _remeasure(rows, specs, job, store)
    summary = _summary_rows(rows)
    if fmt == "json":
        click.echo(json.dumps({"models": summary, **_report(store, specs, job, as_json=True)}, indent=2,
                              default=str))
    else:
        emit(summary, "table", [("model", "Model"), ("params_m", "Params (M)"), ("flops_m", "FLOPs (M)"),
                                ("latency_ms", f"{job.device} {job.runtime} (ms, {job.report} of {job.runs})"),
                                ("cv", "CV"), ("paper_latency_ms", f"Paper {job.device} (ms)"), ("status", "Status")],
             title=f"mobileone-bench run: {len(specs)} models", digits={"params_m": 2, "flops_m": 0, "cv": 3,
                                                                         "latency_ms": 3})
        _report(store, specs, job, as_json=False)
        from mobileone_bench.cli.latency import environment_line

        stdout().print(environment_line([r["latency"] for r in rows]), style="dim", markup=False,
                           highlight=False)
    failed = [s for s in summary if str(s["status"]).startswith("failed")]
    unavailable = [s for s in summary if str(s["status"]).startswith("unavailable")]
    if unavailable:
        click.echo(f"{len(unavailable)} of {len(summary)} models cannot be built here (listed with the reason).",
                   err=True)
    if failed:
        click.echo(f"{len(failed)} of {len(summary)} models failed (recorded in {store.records_path}).", err=True)
        raise SystemExit(1)


def _report(store: Any, specs: list[Any], job: Any, *, as_json: bool) -> Any:
    """The Table 9 layout (with the paper's figures beside ours) and the Spearman correlations (Table 1 layout) of
    the models just run."""
    from mobileone_bench.analysis.correlate import correlate_records
    from mobileone_bench.analysis.tables import build_table, flat_rows
    from mobileone_bench.cli.analysis import rich_agreement, rich_correlation, rich_paper_table
    from mobileone_bench.errors import AnalysisError

    names = [s.name for s in specs]
    out: dict[str, Any] = {}
    try:
        table = build_table(store, "table9", models=names, compare=True, runtimes=[job.runtime],
                            threads=job.threads, precision=job.precision)
        out["table"] = flat_rows(table)
        out["agreement"] = table.get("agreement")
        if not as_json:
            stdout().print(rich_paper_table(table))
            for note in table.get("footnotes") or []:
                if "contended" in note:  # the other footnotes are `table`'s business
                    stdout().print(f"  {note}", style="dim", highlight=False, markup=False)
            if table.get("agreement"):
                stdout().print(rich_agreement(table))
    except AnalysisError as exc:
        out["table"] = None
        if not as_json:
            stdout().print(f"Table 9 layout: {exc}")
    try:
        corr = correlate_records(store, models=names, device=job.device, runtime=job.runtime, threads=job.threads,
                                 precision=job.precision)
        out["correlation"] = corr
        if not as_json:
            stdout().print(rich_correlation(corr))
    except AnalysisError as exc:
        out["correlation"] = None
        out["correlation_note"] = str(exc)
        if not as_json:
            stdout().print(f"Spearman correlation: {exc}")
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
               protocol: str | None, rounds: int, seed: int, wait_quiet: float | None, ort_spinning: bool, fmt: str,
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
    from pathlib import Path

    from mobileone_bench.analysis.reference import paper_table
    from mobileone_bench.cli.export import run_exports
    from mobileone_bench.export import check_format_available, parse_formats
    from mobileone_bench.export._base import ExportOptions, ensure_writable
    from mobileone_bench.records import ResultsStore

    from mobileone_bench.errors import UsageError

    apple = device in ("iphone", "mac")
    if (reports or destination) and not apple:
        raise UsageError("--from-report and --destination apply to --device iphone or mac")
    job = _job(device, runtime, warmup, runs, threads, precision, models_dir,
               compute_units=compute_units if apple else None, protocol=protocol, rounds=rounds, seed=seed,
               ort_spinning=ort_spinning)
    zoo = "ablation-activations" if study == "activations" else "ablation-blocks"
    specs = select_models((), zoo)
    fmts = parse_formats(formats)
    for f in fmts:
        check_format_available(f)
    out = ensure_writable(Path(models_dir))
    exports = run_exports(specs, [f for f in fmts if f.name != "tensorrt"], out, ExportOptions(),
                          weights=None, input_size=None, reparameterize=True, force=force)
    store = ResultsStore(results)
    if apple:
        rows = _apple_rows(specs, job, store, reports, destination, force)
    else:
        wait_until_quiet(wait_quiet)
        rows = _sweep(specs, job, store, force, f"ablate {study}")
    table = paper_table("table2" if study == "activations" else "table3")
    paper = {r["model"]: r for r in table["rows"]}
    base = next((r["latency"].get("latency_ms") for r in rows if r["model"] == "ablation30-relu"), None)
    paper_base = paper.get("ablation30-relu", {}).get("latency_ms")
    out_rows = []
    for r in rows:
        lat = r["latency"]
        p = paper.get(r["model"], {})
        ours = lat.get("latency_ms") if lat.get("status") == "ok" else None
        ex = {e.format: e for e in exports if e.model == r["model"]}
        out_rows.append({
            "variant": p.get("paper_name") or r["model"].replace("ablation30-", ""),
            "model": r["model"],
            "flops_m": r["profile"].get("flops_m"),
            "latency_ms": ours,
            "ratio": (ours / base) if ours and base else None,
            "paper_iphone_ms": p.get("latency_ms"),
            "paper_ratio": (p["latency_ms"] / paper_base) if p.get("latency_ms") and paper_base else None,
            **{f"export_{k}": ("ok" if v.ok else f"{v.status}: {v.error}") for k, v in ex.items()},
            "status": "ok" if lat.get("status") == "ok" else f"failed: {lat.get('error')}",
        })
    if fmt == "json":
        click.echo(json.dumps(out_rows, indent=2, default=str))
    else:
        cols = [("variant", "Variant"), ("model", "Model"), ("flops_m", "FLOPs (M)"),
                ("latency_ms", f"{job.device} (ms, {job.report})"), ("ratio", "x ReLU"),
                ("paper_iphone_ms", "Paper iPhone 12 (ms)"), ("paper_ratio", "Paper x ReLU")]
        cols += [(f"export_{f.name}", f"{f.name}") for f in fmts if f.name != "tensorrt"]
        cols.append(("status", "Status"))
        title = ("Table 2: activation functions" if study == "activations" else "Table 3: architectural blocks") + \
                " in the 30-layer network"
        emit(out_rows, "table", cols, title=title, digits={"flops_m": 0, "latency_ms": 2, "ratio": 2,
                                                           "paper_ratio": 2})
        stdout().print("The network's widths and strides are ours (the paper gives none): see "
                       "mobileone_bench/archs/ablation.py.", style="dim")
    if any(str(r["status"]).startswith("failed") for r in out_rows):
        raise SystemExit(1)


def _apple_rows(specs: list[Any], job: Any, store: Any, reports: tuple[str, ...], destination: str | None,
                force: bool) -> list[dict[str, Any]]:
    """Rows like :func:`pipeline.run_models`' for the iPhone/Mac: profiles here, latencies from the Core ML harness."""
    from mobileone_bench import pipeline
    from mobileone_bench.devices import apple

    if reports:
        records = apple.import_reports(list(reports), store, job=job, models=specs, force=force)
    else:
        records = apple.measure(specs, job, store, destination=destination, force=force)
    by_model = {r.get("model"): r for r in records}
    rows = []
    for spec in specs:
        prof, _ = pipeline.profile_record(spec, store)
        lat = by_model.get(spec.name) or {"status": "failed", "error": "not in the harness report"}
        rows.append({"model": spec.name, "profile": prof, "latency": lat,
                     "skipped": {"profile": True, "latency": False}})
    return rows


COMMANDS = [run_cmd, ablate_cmd]
