"""``correlate``, ``table``, ``plot`` and ``roofline``: what the stored measurements say (the paper's Table 1,
Tables 9 and 14, Figures 1 and 2), and how close each model comes to this CPU's peak.

These commands only read the results folder (``roofline`` also stores the CPU's measured peak there); nothing is
built or measured except that peak. ``--results`` given several times reads those folders as one (records from
other hosts included: one column or row per device and runtime, whichever host measured it); a peak measured now
is stored in the first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from mobileone_bench.cli._common import FiniteFloat, emit, models_argument, stdout, zoo_option
from mobileone_bench.errors import UsageError

__all__ = ["correlate_cmd", "table_cmd", "plot_cmd", "roofline_cmd", "COMMANDS", "rich_correlation",
           "rich_paper_table", "rich_agreement"]


def _results_option(f: Any) -> Any:
    from mobileone_bench.cli.results import results_option

    return results_option()(f)


def _contended_option(f: Any) -> Any:
    return click.option("--include-contended", is_flag=True,
                        help="Use latency records flagged contended too (measured while other processes used the CPU; "
                             "left out by default, with a note).")(f)


def _choice(value: str | None, allowed: Sequence[str], what: str, default: str) -> str:
    """A validated choice as one clear error line (instead of click's usage block)."""
    key = (value or default).lower()
    if key not in allowed:
        raise UsageError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
    return key


def _print_notes(notes: Sequence[str]) -> None:
    out = stdout()
    for n in notes:
        out.print(f"  {n}", style="dim", highlight=False, markup=False)


def _fmt_p(p: Any) -> Any:
    from mobileone_bench.analysis.tables import format_p

    return format_p(p)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _emit_for_scripts(result: dict[str, Any], fmt: str) -> bool:
    """Print a ``{"rows", "columns", ...}`` result as JSON or CSV; ``False`` when the format is for people."""
    if fmt == "json":
        _echo_json(result)
        return True
    if fmt == "csv":
        emit(result["rows"], fmt, [tuple(c) for c in result["columns"]])
        return True
    return False


# ------------------------------------------------------------------------------------------------------ correlate


@click.command("correlate")
@click.option("--device", "devices", multiple=True, metavar="DEVICE",
              help="cpu, gpu, iphone or mac (repeat or comma-separate; default: every device with records).")
@click.option("--against", default="flops,params", show_default=True,
              help="Proxies for the Table 1 columns: flops, params, activations, memory, depth (comma-separated), or "
                   "all. The ranking below the table always covers every proxy.")
@click.option("--models", "patterns", multiple=True, metavar="PATTERN",
              help="Names or wildcards of the models to use ('mobileone*'; repeat or comma-separate).")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Names or wildcards to leave out ('repvgg*').")
@zoo_option()
@click.option("--runtime", default=None, help="Only records of this runtime (onnxruntime, torch, tensorrt...).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Only CPU records measured with this many threads.")
@click.option("--precision", default=None, help="Only records of this precision (fp32, fp16).")
@click.option("--reference", default=None, metavar="paper",
              help="Add rows computed from the paper's own Table 9 numbers, beside its published Table 1.")
@click.option("--format", "fmt", default="table", show_default=True, help="table, json or csv.")
@_results_option
@_contended_option
def correlate_cmd(devices: tuple[str, ...], against: str, patterns: tuple[str, ...], exclude: tuple[str, ...],
                  zoo: str | None, runtime: str | None, threads: int | None, precision: str | None,
                  reference: str | None, fmt: str, results: tuple[str, ...], include_contended: bool) -> None:
    """Spearman rank correlation of latency with FLOPs and with parameter count, per device and runtime, in the
    layout of the paper's Table 1 (rows '<Device> Latency'; corr., p-value and n).

    Latency is the newest successful record per model/device/runtime (its 'report' statistic: median on CPU/GPU,
    min on the iPhone by default); FLOPs and params come from the newest `profile` record of the same model and
    input. A group with fewer than 5 models, or a constant column, gets a note instead of a coefficient.

    With --reference paper, rows computed from the paper's Table 9 (Mobile = its iPhone 12 column, CPU, GPU) are
    added beside the figures the paper prints in Table 1; this works without any records. The paper does not say
    which models its Table 1 used: the 20 Table 9 rows other than RepVGG and MobileOne come closest
    (--reference paper --exclude 'repvgg*,mobileone*').

    \b
    Examples:
      mobileone-bench correlate
      mobileone-bench correlate --device cpu --runtime onnxruntime --format json
      mobileone-bench correlate --reference paper
      mobileone-bench correlate --reference paper --exclude 'repvgg*,mobileone*'
    """
    from mobileone_bench import api

    fmt = _choice(fmt, ("table", "json", "csv"), "format", "table")
    result = api.correlate(list(results), devices=devices, against=against, models=patterns, exclude=exclude, zoo=zoo,
                           runtime=runtime, threads=threads, precision=precision, reference=reference,
                           include_contended=include_contended, as_frame=False)
    if _emit_for_scripts(result, fmt):
        return
    stdout().print(rich_correlation(result))
    if result.get("ranking"):
        stdout().print(rich_ranking(result))
    _print_notes(result["notes"])


def _with_intervals(rows: list[dict[str, Any]], columns: list[Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Rows and columns for people: each ``<x>rho`` cell shows its interval, ``0.93 [0.71, 0.99]``, and the
    ``_low`` / ``_high`` columns go (JSON and CSV keep the numbers)."""
    from mobileone_bench.cli._common import fmt_num

    shown = []
    for r in rows:
        r = dict(r)
        for key in [k for k, *_ in columns if k.endswith("rho")]:
            low, high = r.get(f"{key}_low"), r.get(f"{key}_high")
            if r.get(key) is not None and low is not None and high is not None:
                r[key] = f"{fmt_num(r[key])} [{fmt_num(low)}, {fmt_num(high)}]"
        shown.append(r)
    return shown, [c for c in columns if not c[0].endswith(("rho_low", "rho_high"))]


def rich_correlation(result: dict[str, Any]) -> Any:
    """The Table 1 layout (each rho with its 95% interval); row notes become numbered footnotes so the table stays
    narrow."""
    rows, columns = _with_intervals(result["rows"], result["columns"])
    shown = dict(result, rows=rows, columns=columns)
    table = _noted_table(shown, result["title"], digits={})
    result["notes"] = shown["notes"]
    return table


def rich_ranking(result: dict[str, Any]) -> Any:
    """Which proxy predicts latency: every proxy per device and runtime, ranked by |rho|, with intervals."""
    from mobileone_bench.analysis.correlate import RANKING_COLUMNS
    from mobileone_bench.cli._common import render_table

    rows, columns = _with_intervals(result.get("ranking") or [], RANKING_COLUMNS)
    rows = [{**r, "p": _fmt_p(r["p"])} for r in rows]
    return render_table(rows, columns, title="Which proxy predicts latency here: Spearman rho (95% CI), ranked by |rho|")


def _noted_table(result: dict[str, Any], title: str, digits: dict[str, int]) -> Any:
    """A rich table of ``result["rows"]`` whose ``note`` column holds footnote marks; the notes (the same note,
    the same mark) are put in front of ``result["notes"]``."""
    from rich.table import Table

    from mobileone_bench.cli._common import fmt_num

    cols = [tuple(c) for c in result["columns"] if c[0] != "note"]
    text_cols = {k for k, _ in cols if all(not isinstance(r.get(k), (int, float)) or isinstance(r.get(k), bool)
                                           for r in result["rows"])}
    t = Table(title=title, header_style="bold")
    for key, header in cols:
        t.add_column(header, justify="left" if key in text_cols else "right")
    has_notes = any(r.get("note") for r in result["rows"])
    if has_notes:
        t.add_column("Note", justify="left")
    marks: dict[str, int] = {}
    for r in result["rows"]:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            cells.append(_fmt_p(v) if key.endswith("_p") and v is not None else fmt_num(v, digits.get(key, 2)))
        note = r.get("note")
        if note and note not in marks:
            marks[note] = len(marks) + 1
        t.add_row(*cells, *([f"[{marks[note]}]" if note else ""] if has_notes else []))
    result["notes"] = [f"[{i}] {n}" for n, i in marks.items()] + list(result["notes"])
    return t


# ------------------------------------------------------------------------------------------------------ table


_SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".csv": "csv", ".tex": "latex", ".json": "json", ".txt": "rich"}


def rich_paper_table(table: dict[str, Any]) -> Any:
    from rich.table import Table

    from mobileone_bench.analysis.tables import table_cell

    t = Table(title=table["title"], header_style="bold", show_lines=False)
    for i, c in enumerate(table["columns"]):
        t.add_column(c["header"], justify="left" if i == 0 else "right", style="dim" if c.get("paper") else None,
                     overflow="fold", no_wrap=i == 0)
    for gi, g in enumerate(table["groups"]):
        if gi:
            t.add_section()
        if g["name"]:
            t.add_row(f"[bold italic]{g['name']}[/]", *[""] * (len(table["columns"]) - 1))
        for r in g["rows"]:
            t.add_row(*[table_cell(table, r, c["key"]) for c in table["columns"]])
    return t


def rich_agreement(table: dict[str, Any]) -> Any:
    from rich.table import Table

    from mobileone_bench.store.frames import DEVICE_LABELS
    from mobileone_bench.cli._common import fmt_num

    t = Table(title="Rank agreement with the paper (Spearman, over the models both have)", header_style="bold")
    for h in ("Ours", "Paper column", "rho", "p-value", "n", "Note"):
        t.add_column(h, justify="right" if h in ("rho", "p-value", "n") else "left", overflow="fold")
    for a in table["agreement"] or []:
        t.add_row(f"{DEVICE_LABELS.get(a['device'], a['device'])} {a['runtime']}", a["paper_column"] or "-",
                  fmt_num(a["rho"]), fmt_num(_fmt_p(a["p_value"])), str(a["n"]), a["note"] or "")
    return t


@click.command("table")
@models_argument()
@zoo_option()
@click.option("--layout", default="table9", show_default=True,
              help="table9, table14, section32 (Tables 2 and 3's ablation networks through their explain "
                   "records: how much of each variant's time its activation, gate or branches take), or accuracy "
                   "(top-1 of each evaluated artifact next to its latency: `evaluate` records).")
@click.option("--format", "fmt", default=None,
              help="rich (default), md, csv, latex or json; with --out, taken from the file's suffix if not given.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write to FILE instead of stdout.")
@click.option("--compare", is_flag=True,
              help="Put the paper's figure beside ours in each numeric column, and print the rank agreement "
                   "(Spearman of our latencies vs the paper's, per device).")
@click.option("--all", "all_rows", is_flag=True, help="Every row of the layout, measured or not.")
@click.option("--ci", is_flag=True, help="Show each latency with its 95% bootstrap interval: 2.43 (2.39-2.47).")
@click.option("--runtime", "runtimes", multiple=True, metavar="NAME",
              help="Runtime whose records fill a device column (default: the one with most models); repeat it "
                   "(or comma-separate) for one column per runtime, 'all' for every runtime stored.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Only CPU records measured with this many threads.")
@click.option("--precision", default=None, help="Only records of this precision.")
@_results_option
@_contended_option
def table_cmd(models: tuple[str, ...], zoo: str | None, layout: str, fmt: str | None, out: str | None,
              compare: bool, all_rows: bool, ci: bool, runtimes: tuple[str, ...], threads: int | None,
              precision: str | None, results: tuple[str, ...], include_contended: bool) -> None:
    """The paper's Table 9 (Transformer then Convolutional architectures, each sorted by mobile latency,
    descending) or Table 14, filled with your measurements: FLOPs and params from `profile` records, latency per
    device from `latency` records, top-1 from the paper. Missing measurements are '-', as in the paper. Headers
    say the unit, runtime and statistic of the records ('CPU onnxruntime (ms, median of 100)').

    Rows: the layout's models that have at least one record (all of them with --all), or MODEL... / --zoo. Rows are
    sorted by your iPhone latency when every row of a group has one, else kept in the paper's order.

    --compare adds the paper's figure beside each of ours and, below the table, the rank agreement: Spearman
    between your latencies and the paper's column over the models both have (same order as the paper = 1).

    \b
    Examples:
      mobileone-bench table
      mobileone-bench table --layout table9 --compare
      mobileone-bench table --all --compare --format md --out table9.md
      mobileone-bench table --layout table14 --format latex --out table14.tex
      mobileone-bench table mobileone_s0 mobilenetv2-x1.0 --format json
    """
    from mobileone_bench import api
    from mobileone_bench.analysis.tables import FORMATS, render

    if fmt is None:
        fmt = _SUFFIX_FORMATS.get(Path(out).suffix.lower(), "rich") if out else "rich"
    fmt = _choice("rich" if fmt.lower() == "table" else fmt, FORMATS + ("markdown", "tex"), "format", "rich")
    table = api.table(layout, models=models, zoo=zoo, all_rows=all_rows, compare=compare, runtimes=runtimes,
                      threads=threads, precision=precision, results=list(results), include_contended=include_contended,
                      ci=ci, as_frame=False)
    if fmt == "rich":
        import io

        from rich.console import Console

        console = Console(record=True, width=200, file=io.StringIO()) if out else stdout()
        console.print(rich_paper_table(table))
        for note in table["footnotes"]:
            console.print(f"  {note}", style="dim", highlight=False, markup=False)
        if table["agreement"]:
            console.print(rich_agreement(table))
        text = console.export_text() if out else None
    else:
        text = render(table, fmt)
    if out:
        try:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(text or "", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        click.echo(f"wrote {out}", err=True)
    elif text is not None:
        click.echo(text, nl=False)


# ------------------------------------------------------------------------------------------------------ plot


@click.command("plot")
@click.option("--figure", "figures", multiple=True, metavar="NAME",
              help="latency-vs-flops, latency-vs-params, accuracy-vs-latency (alias top1-vs-latency: measured "
                   "top-1 where `evaluate` stored one, the paper's otherwise, marked; the paper's three, the "
                   "default), or "
                   "latency-vs-activations, latency-vs-memory, latency-vs-depth; from explain records: "
                   "time-by-category, time-vs-flop-share (repeatable).")
@click.option("--device", "devices", multiple=True, metavar="DEVICE",
              help="cpu, gpu, iphone or mac (repeatable; default: every device with records).")
@click.option("--runtime", default=None, help="Only records of this runtime.")
@click.option("--models", "patterns", multiple=True, metavar="PATTERN", help="Names or wildcards to plot.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Names or wildcards to leave out.")
@zoo_option()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder for the PNG and SVG files (default: <results>/figures, the first --results).")
@click.option("--reference", default=None, metavar="paper",
              help="Overlay the paper's Table 9 points (open diamonds) on ours (filled circles).")
@click.option("--format", "fmt", default="table", show_default=True, help="How to list what was written: table "
                                                                          "or json.")
@_results_option
@_contended_option
def plot_cmd(figures: tuple[str, ...], devices: tuple[str, ...], runtime: str | None, patterns: tuple[str, ...],
             exclude: tuple[str, ...], zoo: str | None, out_dir: str | None, reference: str | None, fmt: str,
             results: tuple[str, ...], include_contended: bool) -> None:
    """The paper's Figure 2 (latency vs FLOPs, latency vs params; labelled scatter, log axes) and Figure 1 (top-1
    vs latency; top-1 from the paper) from your records, one PNG and one SVG per figure and device/runtime. The
    title names the device, runtime and statistic; colours are the Table 9 families.

    With --reference paper the paper's points for the same device are drawn too (iPhone 12, Xeon CPU, 2080Ti
    GPU), so you can see whether your ranking matches theirs; without records it plots the paper's points alone.

    \b
    Examples:
      mobileone-bench plot
      mobileone-bench plot --figure latency-vs-flops --device cpu --reference paper
      mobileone-bench plot --reference paper --device iphone --out figures/
    """
    from mobileone_bench import api
    from mobileone_bench.analysis.plots import parse_figures

    fmt = _choice(fmt, ("table", "json"), "format", "table")
    parse_figures(figures)  # an unknown figure: one line before any work
    target = Path(out_dir) if out_dir else Path(results[0]) / "figures"
    drawn = api.plot(figures, results=list(results), devices=devices, runtime=runtime, models=patterns,
                     exclude=exclude, zoo=zoo, reference=reference, include_contended=include_contended, out=target)
    written = drawn.attrs["panels"]
    if fmt == "json":
        _echo_json(written)
        return
    rows = [{**w, "files": str(Path(w["png"]).with_suffix("")) + ".{png,svg}"} for w in written]
    emit(rows, "table", [("figure", "Figure"), ("device", "Device"), ("runtime", "Runtime"),
                         ("points", "Our points"), ("reference_points", "Paper points"), ("files", "Files")],
         title=f"{len(written)} figure(s) written")
    _print_notes(list(dict.fromkeys(n for w in written for n in w["notes"])))


# ------------------------------------------------------------------------------------------------------ roofline


@click.command("roofline")
@click.option("--models", "patterns", multiple=True, metavar="PATTERN", help="Names or wildcards to keep.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Names or wildcards to leave out.")
@zoo_option()
@click.option("--runtime", default=None, help="Only CPU records of this runtime (onnxruntime or torch).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Only records measured with this many threads.")
@click.option("--remeasure", is_flag=True, help="Measure the peak again even if one is stored.")
@click.option("--peak-gflops", type=FiniteFloat(min=0, min_open=True), default=None, metavar="X",
              help="Use X GFLOP/s as the peak instead of measuring it.")
@click.option("--format", "fmt", default="table", show_default=True, help="table, json or csv.")
@_results_option
@_contended_option
def roofline_cmd(patterns: tuple[str, ...], exclude: tuple[str, ...], zoo: str | None, runtime: str | None,
                 threads: int | None, remeasure: bool, peak_gflops: float | None, fmt: str,
                 results: tuple[str, ...], include_contended: bool) -> None:
    """Is each model compute-bound or overhead-bound on this CPU? For every CPU latency record: the achieved
    GFLOP/s (2 x FLOPs / latency: the paper's FLOPs are multiply-adds) and its fraction of this CPU's peak.

    The peak is this machine's best float32 rate of the fastest kernels installed (torch.matmul 2048x2048, a large
    1x1 convolution through oneDNN and through onnxruntime; the winner is named, a few seconds in all), shown beside
    the theoretical peak of the ISA, FMA units, cores and clock, at the thread
    count of the records, measured once and stored in the results folder (kind 'peak', per machine and threads;
    --remeasure to redo it, --peak-gflops to give one). With several --results folders (records from other hosts),
    each machine's records use the peak stored for that machine in any of them; a peak measured now goes into the
    first.

    \b
    Reading it (rules of thumb):
      >= 40% of peak   compute-bound: FLOPs predict this model's latency on this CPU
      15-40%           partly compute-bound
      < 15%            overhead-bound: memory traffic (depthwise, 1x1 convs), many small operators,
                       per-operator framework overhead; FLOPs under-predict the latency
      > 100%           the runtime did fewer operations than counted (e.g. Winograd convolutions)

    \b
    Examples:
      mobileone-bench roofline
      mobileone-bench roofline --threads 1 --format json
    """
    from mobileone_bench import api

    fmt = _choice(fmt, ("table", "json", "csv"), "format", "table")

    def announce(threads: int) -> None:
        click.echo(f"measuring this CPU's float32 peak at {threads} thread(s) (a few seconds; stored for next "
                   f"time)...", err=True)

    result = api.roofline(list(results), models=patterns, exclude=exclude, zoo=zoo, runtime=runtime, threads=threads,
                          remeasure=remeasure, peak_gflops=peak_gflops, include_contended=include_contended,
                          announce=announce, as_frame=False)
    if _emit_for_scripts(result, fmt):
        return
    shown = dict(result, rows=[{**r, "fraction": None if r["fraction"] is None else 100.0 * r["fraction"]}
                               for r in result["rows"]])
    peaks = [f"peak {p['gflops']:.1f} GFLOP/s at {p['threads']} thread(s) ({p['method']}"
             f"{'; ' + p['winner'] + ' won' if p.get('winner') else ''}, {p['source']}"
             f"{', ' + p['cpu'] if p.get('cpu') else ''})"
             + (f"; theoretical {p['theoretical_gflops']:.1f} GFLOP/s (ISA x FMA units x cores x clock)"
                if p.get("theoretical_gflops") else "") for p in result["peaks"]]
    shown["notes"] = peaks + result["notes"]
    stdout().print(_noted_table(shown, "Achieved GFLOP/s and fraction of this CPU's measured float32 peak",
                                {"flops_m": 0, "latency_ms": 2, "achieved_gflops": 1, "peak_gflops": 1,
                                 "fraction": 1}))
    _print_notes(shown["notes"])


COMMANDS: list[Callable[..., Any]] = [correlate_cmd, table_cmd, plot_cmd, roofline_cmd]
