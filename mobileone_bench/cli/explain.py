"""``explain``: where each model's time goes on a runtime, operator by operator, by category, against FLOPs."""

from __future__ import annotations

from typing import Any

import click

from mobileone_bench.cli._common import (
    emit,
    format_option,
    input_size_option,
    models_argument,
    stdout,
    warn,
    weights_option,
    yes_option,
    zoo_option,
)

__all__ = ["explain_cmd", "COMMANDS", "WHERE_TABLE"]

WHERE_TABLE = [("model", "Model"), ("runtime", "Runtime"), ("e2e_ms", "Latency ms"), ("coverage", "Coverage"),
               ("profiler_overhead", "Overhead"), ("share_dense-conv", "Dense %"),
               ("share_depthwise-conv", "DW %"), ("share_pointwise-conv", "PW %"), ("share_linear", "Linear %"),
               ("share_attention", "Attn %"), ("share_activation", "Act %"), ("share_gating", "Gate %"),
               ("share_dynamic-activation", "DynAct %"), ("share_elementwise", "Merge %"),
               ("share_pooling", "Pool %"), ("share_data-movement", "Data %"), ("top_operators", "Top operators")]


def _table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        row = dict(r)
        for k, v in r.items():
            if k.startswith("share_") and v is not None:
                row[k] = round(100 * float(v), 1)
        if r.get("coverage") is not None:
            row["coverage"] = f"{r['coverage']:.2f}" + ("" if r.get("coverage_ok") else " (!)")
        if r.get("profiler_overhead") is not None:
            row["profiler_overhead"] = f"{100 * r['profiler_overhead']:+.0f}%"
        out.append(row)
    return out


@click.command("explain")
@models_argument()
@zoo_option()
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="Where to run (Core ML's per-operator view on an iPhone or a Mac is its compute plan).")
@click.option("--runtime", default=None,
              help="cpu: onnxruntime (default), torch, executorch; gpu: tensorrt (default), torch-cuda.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Precision (default: the runtime's).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: physical cores).")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Untimed runs before the unprofiled timing (default: the runtime's).")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Unprofiled timed runs, the end-to-end median coverage is held against (default: the runtime's).")
@click.option("--profiled-runs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Profiled runs; each operator's time is the median over them.")
@click.option("--ort-opt", type=click.Choice(["disable", "basic", "extended", "all"]), default="all",
              show_default=True, help="onnxruntime graph optimisation level (the nodes profiled are its graph's).")
@click.option("--no-cuda-graphs", is_flag=True, help="torch-cuda: time without CUDA graphs.")
@input_size_option()
@weights_option()
@click.option("--results", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Results folder the explain records are stored in.")
@click.option("--models-dir", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Root of the artifact tree (artifacts are exported there, or reused).")
@click.option("--force", is_flag=True, help="Profile again even when an identical profile is stored.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="Also list each model's N most expensive operators (0: none).")
@format_option(("table", "json", "csv"))
@yes_option()
def explain_cmd(models: tuple[str, ...], zoo: str | None, device: str, runtime: str | None, precision: str | None,
                threads: int | None, warmup: int | None, runs: int | None, profiled_runs: int, ort_opt: str,
                no_cuda_graphs: bool, input_size: tuple[int, int] | None, weights: str | None, results: str,
                models_dir: str, force: bool, top: int, fmt: str, yes: bool) -> None:
    """Where the time goes: run the runtime's own profiler on each model's inference-time artifact and store one
    record per model with a row per operator: its node name, op type, category, median time and share, FLOPs
    (profile's counting) and achieved GFLOP/s.

    The profile is held against an unprofiled run of the same artifact in the same process: coverage (the
    operators' times summed / the unprofiled median; flagged outside 0.8-1.25) and the profiler's own overhead are
    printed and stored. onnxruntime: its session profiler (nodes of its optimised graph); torch: torch.profiler;
    executorch: ETDump (an XNNPACK delegate is one block); tensorrt and torch-cuda on a GPU.

    Exits with status 1 if any model failed.

    \b
    Examples:
      mobileone-bench explain mobileone_s0 mixnet_s --threads 1
      mobileone-bench explain --zoo quick --runtime torch
      mobileone-bench explain 'ablation30-*' && mobileone-bench table --layout section32
      mobileone-bench plot --figure time-by-category --out figures/
    """
    from mobileone_bench import api

    rows = api.explain(list(models) or None, zoo=zoo, device=device, runtime=runtime, precision=precision,
                       threads=threads, warmup=warmup, runs=runs, profiled_runs=profiled_runs, ort_opt=ort_opt,
                       cuda_graphs=not no_cuda_graphs, input_size=input_size, weights=weights, results=results,
                       models_dir=models_dir, force=force, progress=True, as_frame=False, yes=yes)
    records = rows.attrs["records"]
    if fmt == "json":
        emit(records, "json", [])
    elif fmt == "csv":
        emit(list(rows), "csv", [(k, k) for k in dict.fromkeys(k for r in rows for k in r)])
    else:
        present = {k for r in rows for k, v in r.items() if v is not None}
        emit(_table_rows(list(rows)), "table", [c for c in WHERE_TABLE if c[0] in present or not
                                                c[0].startswith("share_")], title="Where the time goes")
        if top:
            from mobileone_bench.analysis.operators import top_operators

            out = stdout()
            for rec in records:
                if rec.get("status") != "ok":
                    continue
                out.print(f"{rec['model']} ({rec['runtime']}): top {top} operators", style="bold", markup=False)
                for r in top_operators(rec, top):
                    gf = f"{r['gflops_per_s']:.1f} GFLOP/s" if r.get("gflops_per_s") else "-"
                    ms = f"{r['time_ms']:.3f} ms" if r.get("time_ms") is not None else "-"
                    out.print(f"  {100 * r['share']:5.1f}%  {ms:>10}  {r['category']:<18} {r['op_type']:<14} "
                              f"{gf:>14}  {r['name']}", markup=False, highlight=False)
        for note in rows.attrs.get("notes") or []:
            if "coverage" in note or "could not" in note or "above the peak" in note:
                warn(note)
            else:
                stdout().print(f"  {note}", style="dim", markup=False, highlight=False)
    bad = [r for r in records if r.get("status") != "ok"]
    if bad:
        click.echo(f"{len(bad)} of {len(records)} profiles failed.", err=True)
        raise SystemExit(1)


COMMANDS = [explain_cmd]
