"""``latency``: measure latency on cpu, gpu, iphone or mac with one protocol and full statistics."""

from __future__ import annotations

import json
from typing import Any

import click

from mobileone_bench.cli._common import (
    emit,
    input_size_option,
    models_argument,
    stdout,
    weights_option,
    yes_option,
    zoo_option,
)

__all__ = ["latency_cmd", "COMMANDS", "latency_rows", "environment_line", "LATENCY_COLUMNS", "protocol_options"]

LATENCY_COLUMNS = [("model", "Model"), ("runtime", "Runtime"), ("precision", "Prec."), ("threads", "Thr."),
                   ("n", "n"), ("min_ms", "min"), ("median_ms", "median"), ("mean_ms", "mean"), ("std_ms", "std"),
                   ("p90_ms", "p90"), ("p99_ms", "p99"), ("cv", "CV"), ("latency_ms", "Latency (ms)"),
                   ("state", "Status")]


def latency_rows(records: list[dict[str, Any]], skipped: set[str] | None = None) -> list[dict[str, Any]]:
    """Records as table rows (a state column says measured / cached / failed and why)."""
    from mobileone_bench.pipeline import is_unavailable

    rows = []
    for rec in records:
        row = dict(rec)
        if is_unavailable(rec):
            row["state"] = str(rec.get("error"))
        elif rec.get("status") != "ok":
            row["state"] = f"failed: {rec.get('error')}"
        else:
            state = "cached" if skipped and rec.get("record_id") in skipped else "measured"
            if rec.get("contended"):
                state += f" (contended {rec.get('contended_share', 0):.0%})"
            if rec.get("noise_warning"):
                state += " (noisy)"
            row["state"] = state
        rows.append(row)
    return rows


def environment_line(records: list[dict[str, Any]]) -> str:
    """One line describing where the numbers come from."""
    rec = next((r for r in records if r.get("status") == "ok"), None) or (records[0] if records else None)
    if not rec:
        return ""
    parts = [f"device {rec.get('device')}"]
    if rec.get("device") in ("iphone", "mac"):
        parts.append(f"{rec.get('machine')} ({rec.get('env_os')}, thermal state {rec.get('env_thermal_state')})")
    elif rec.get("env_cpu"):
        parts.append(f"{rec.get('env_cpu')} ({rec.get('env_cores_logical')} logical / "
                     f"{rec.get('env_cores_physical') or '?'} physical cores)")
    if rec.get("env_gpu"):
        parts.append(f"{rec.get('env_gpu')} (driver {rec.get('env_gpu_driver')}, CUDA {rec.get('env_cuda')})")
    for lib in ("onnxruntime", "torch", "tensorrt", "coremltools"):
        if rec.get(f"env_{lib}"):
            parts.append(f"{lib} {rec.get(f'env_{lib}')}")
    settings = rec.get("runtime_settings")
    if isinstance(settings, str):  # records store dicts as JSON
        try:
            settings = json.loads(settings)
        except ValueError:
            settings = None
    if rec.get("runtime") == "executorch" and isinstance(settings, dict) and settings.get("executorch"):
        parts.append(f"executorch {settings['executorch']} (XNNPACK, {settings.get('threadpool_threads')} threads)")
    if rec.get("device") not in ("iphone", "mac"):
        parts.append(str(rec.get("env_os", "")))
    report = rec.get("report")
    if report:
        parts.append(f"latency = {report} of {rec.get('runs')} runs after {rec.get('warmup')} warmup")
    if rec.get("protocol") == "interleaved":
        from mobileone_bench.store.records import as_list

        sizes = as_list(rec.get("runs_per_round"))
        rounds = rec.get("rounds") or len(sizes)
        text = (f"interleaved: {rounds} rounds x {max(sizes) if sizes else '?'} runs over "
                f"{rec.get('models_in_rounds')} models, {rec.get('round_warmup')} warmup per round, "
                f"seed {rec.get('round_seed')}")
        replaced = int(rec.get("rounds_replaced") or 0)
        if replaced:
            text += f", {replaced} contended round{'s' if replaced != 1 else ''} replaced"
        if rec.get("replacement_budget_exhausted"):
            text += " (replacement budget ran out)"
        if rec.get("rounds_resumed"):
            text += f", {rec.get('rounds_resumed')} round(s) resumed from a journal"
        parts.append(text)
    return " | ".join(p for p in parts if p)


def protocol_options(f: Any) -> Any:
    """``--protocol``, ``--rounds``, ``--seed``, ``--max-extra-rounds``, ``--extra-time``, ``--wait-quiet`` and
    ``--ort-spinning``: shared by latency, run and ablate."""
    from mobileone_bench.devices import ORT_SPINNING_DEFAULT
    from mobileone_bench.devices._rounds import DEFAULT_EXTRA_TIME_SHARE, DEFAULT_ROUNDS
    from mobileone_bench.pipeline import DEFAULT_MEMORY_BUDGET_GB

    options = [
        click.option("--protocol", type=click.Choice(["interleaved", "blocked"]), default=None,
                     help="Several models: interleaved rounds (default) or each model in one block (the paper's "
                          "way; always used for a single model)."),
        click.option("--rounds", type=click.IntRange(min=1), default=DEFAULT_ROUNDS, show_default=True,
                     help="Interleaved: rounds the runs are split into (each round visits every model once, in a "
                          "fresh random order)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of the interleaved visiting orders (recorded)."),
        click.option("--max-extra-rounds", type=click.IntRange(min=0), default=None, metavar="N",
                     help="Interleaved: a round read as contended does not count and the model gets a replacement "
                          "round, up to N per model (default: as many as --rounds; 0: only flag)."),
        click.option("--memory-budget", type=click.FloatRange(min=0), default=None, metavar="GB",
                     help="Interleaved: memory the loaded runtime sessions may add before the models loaded so far "
                          "are timed as a group and released (default "
                          f"{DEFAULT_MEMORY_BUDGET_GB:g} GB; 0: all models in one group)."),
        click.option("--extra-time", type=click.FloatRange(min=0), default=None, metavar="SHARE",
                     help="Interleaved: replacement rounds may take this share of the planned rounds' time "
                          f"(default {DEFAULT_EXTRA_TIME_SHARE:g}: the timed part takes at most "
                          f"{1 + DEFAULT_EXTRA_TIME_SHARE:g}x)."),
        click.option("--wait-quiet", type=click.FloatRange(min=0), default=None, is_flag=False, flag_value=60.0,
                     metavar="[SECONDS]", help="Before measuring, wait until other processes use < 10% of the CPUs "
                                               "(give up after SECONDS, default 60)."),
        click.option("--ort-spinning/--no-ort-spinning", default=ORT_SPINNING_DEFAULT, show_default=True,
                     help="onnxruntime: let idle intra-op threads spin (see the README for the measured effect)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("latency")
@models_argument()
@zoo_option()
@click.option("--device", type=click.Choice(["cpu", "gpu", "iphone", "mac"]), default="cpu", show_default=True,
              help="Where to measure.")
@click.option("--runtime", default=None,
              help="cpu: onnxruntime (default) | torch | executorch;  gpu: tensorrt (default) | torch-cuda;  "
                   "iphone/mac: coreml.")
@click.option("--warmup", type=click.IntRange(min=0), default=None, help="Untimed runs first (default 10; iPhone/Mac 1).")
@click.option("--runs", type=click.IntRange(min=1), default=None, help="Timed runs (default 100 on CPU/GPU, 1000 on iPhone/Mac).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: physical cores).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Default: fp32 on CPU, fp16 on GPU, iPhone and Mac (as the paper); int8: --runtime executorch.")
@click.option("--report", type=click.Choice(["median", "min", "mean", "trimmed_mean", "p90"]), default=None,
              help="The statistic reported as the latency (default: median on CPU/GPU, min on iPhone/Mac).")
@click.option("--ort-opt", type=click.Choice(["disable", "basic", "extended", "all"]), default="all",
              show_default=True, help="onnxruntime graph optimisation level.")
@click.option("--no-cuda-graphs", is_flag=True,
              help="gpu: launch every run (TensorRT: execute_async_v3; torch-cuda: eagerly) instead of replaying a "
                   "CUDA graph (the default, as trtexec --useCudaGraph).")
@click.option("--tf32/--no-tf32", default=False, show_default=True,
              help="gpu: let fp32 layers use TF32 tensor cores (TensorRT: BuilderFlag.TF32; torch-cuda: "
                   "allow_tf32); recorded.")
@click.option("--destination", "destinations", multiple=True, metavar="NAME|UDID|all",
              help="iphone: the device to run on; give it again for several (one xcodebuild runs them "
                   "concurrently), or 'all' for every connected one.")
@click.option("--sequential", is_flag=True, help="iphone, several devices: one xcodebuild per device, in turn.")
@click.option("--compute-units", type=click.Choice(["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"]), default="all",
              show_default=True, help="iphone/mac: Core ML compute units.")
@click.option("--from-report", "reports", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE", help="iphone/mac: import harness report(s) produced by hand instead of measuring.")
@click.option("--team", default=None, envvar="MOBILEONE_BENCH_TEAM", metavar="ID",
              help="iphone: Apple Developer team id that signs the app (env MOBILEONE_BENCH_TEAM).")
@click.option("--bundle-id", default=None, envvar="MOBILEONE_BENCH_BUNDLE_ID", metavar="ID",
              help="iphone: app bundle id (default com.example.mobileone-bench.<team>).")
@click.option("--harness", default=None, type=click.Path(file_okay=False, exists=True), metavar="DIR",
              help="iphone/mac: the ios_harness folder (default: this checkout's).")
@weights_option()
@input_size_option()
@click.option("--no-reparam", is_flag=True, help="Measure the train-time model (branches kept); recorded.")
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Results store folder.")
@click.option("--models-dir", default="models", show_default=True, type=click.Path(file_okay=False),
              help="Where artifacts are exported (and reused).")
@click.option("--force", is_flag=True, help="Measure again even if an identical measurement is stored.")
@protocol_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@yes_option()
def latency_cmd(models: tuple[str, ...], zoo: str | None, device: str, runtime: str | None, warmup: int | None,
                runs: int | None, threads: int | None, precision: str | None, report: str | None, ort_opt: str,
                no_cuda_graphs: bool, tf32: bool, destinations: tuple[str, ...], sequential: bool, compute_units: str,
                reports: tuple[str, ...],
                team: str | None, bundle_id: str | None, harness: str | None, weights: str | None,
                input_size: tuple[int, int] | None, no_reparam: bool, results: str,
                models_dir: str, force: bool, protocol: str | None, rounds: int, seed: int, max_extra_rounds: int | None, extra_time: float | None, memory_budget: float | None,
                wait_quiet: float | None, ort_spinning: bool, fmt: str, yes: bool) -> None:
    """Measure latency with the paper's protocol (Section 3.5): load, preallocate the input, warm up, then time
    every run separately with a monotonic clock (CUDA events on GPU). Every measurement is stored in the results
    folder with its raw samples, statistics and environment; identical measurements are skipped unless --force.

    Several models are measured in interleaved rounds: all are loaded first, then each round gives every model a
    short warm-up and a block of its runs, in a fresh seeded order, so a burst of other work touches a few rounds of
    every model rather than all runs of a few. What else the machine did is recorded with each block, and a record
    with over a third of its runs in contended blocks is flagged "contended".

    \b
    Examples:
      mobileone-bench latency mobileone_s0 mobilenetv2-x1.0
      mobileone-bench latency --zoo paper-table9 --threads 1 --runs 200
      mobileone-bench latency mobileone_s1 --device cpu --runtime torch
      mobileone-bench latency mobileone_s0 --runtime executorch --precision int8   (executorch extra)
      mobileone-bench latency mobileone_s1 --device gpu --runtime torch-cuda
      mobileone-bench latency --zoo quick --rounds 10 --wait-quiet
      mobileone-bench latency --device iphone --from-report report.json
    """
    from mobileone_bench import api
    from mobileone_bench.cli._common import warn
    from mobileone_bench.pipeline import is_unavailable

    records = api.latency(models, zoo=zoo, device=device, runtime=runtime, warmup=warmup, runs=runs, threads=threads,
                          precision=precision, report=report, ort_opt=ort_opt, cuda_graphs=not no_cuda_graphs, tf32=tf32,
                          destination=list(destinations) or None, sequential=sequential, compute_units=compute_units,
                          from_reports=reports, team=team, bundle_id=bundle_id, harness=harness, weights=weights,
                          input_size=input_size, reparameterize=not no_reparam, results=results,
                          models_dir=models_dir, force=force, protocol=protocol, rounds=rounds, seed=seed,
                          max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget,
                          wait_quiet=wait_quiet, ort_spinning=ort_spinning, progress=True, on_warning=warn, yes=yes,
                          as_frame=False)
    skipped, records_path, phones = set(records.attrs["reused"]), records.attrs["results"], records.attrs["phones"]
    rows = latency_rows(records, skipped)
    several = len(phones) > 1
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, default=str))
    else:
        columns = LATENCY_COLUMNS + [("env_device_name", "Phone")] * several  # several iPhones: which one
        emit(rows, fmt, columns, title=f"Latency (ms) on {device}, stored in {records_path}",
             digits={"cv": 3, "min_ms": 3, "median_ms": 3, "mean_ms": 3, "std_ms": 3, "p90_ms": 3, "p99_ms": 3,
                     "latency_ms": 3})
        if fmt == "table":
            stdout().print(environment_line(records), style="dim", markup=False, highlight=False)
            for rec in records:
                if rec.get("noise_warning") and rec.get("record_id") not in skipped:
                    click.echo(f"warning: {rec['model']}: {rec['noise_warning']}", err=True)
            for phone in phones if several else []:  # several iPhones: one line each
                click.echo(f"{phone['phone']} ({phone['machine']}, {phone['os']}, {phone['device_id']}): "
                           f"{phone['ok']} ok, {phone['failed']} failed")
    failed = [r for r in records if r.get("status") != "ok" and not is_unavailable(r)]
    if failed:
        click.echo(f"{len(failed)} of {len(records)} measurements failed (recorded in {records_path}).",
                   err=True)
        raise SystemExit(1)


COMMANDS = [latency_cmd]
