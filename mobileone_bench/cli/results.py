"""``merge`` and ``export-results``: results from many hosts in one study, and the store in forms dashboards read.

The analysis commands read several folders without copying (``--results A --results B``); ``merge`` copies them
into one folder for good; ``export-results`` writes a flat CSV, Parquet, or the PyTorch OSS benchmark JSON.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import click

from mobileone_bench.cli._common import emit
from mobileone_bench.errors import UsageError

__all__ = ["merge_cmd", "export_results_cmd", "COMMANDS", "results_option"]


def results_option(help_text: str = "Results folder to read (written by `run`, `latency`, `profile`); repeat it to "
                                    "read several as one (nothing is copied; see `merge`).") -> Callable[[Any], Any]:
    """``--results DIR`` given any number of times (default ``results``)."""
    return click.option("--results", multiple=True, default=("results",), show_default=True,
                        type=click.Path(file_okay=False), metavar="DIR", help=help_text)


@click.command("merge")
@click.argument("sources", nargs=-1, required=True, metavar="SRC...", type=click.Path(file_okay=False))
@click.option("--into", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Destination results folder (created if needed; an existing one keeps every record it has).")
@click.option("--dry-run", is_flag=True, help="Only say what would be copied; write nothing.")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def merge_cmd(sources: tuple[str, ...], into: str, dry_run: bool, fmt: str) -> None:
    """Copy the records of results folders SRC... (from other hosts, say) into DIR, each with its samples file,
    so that one folder holds the whole study. Nothing in DIR is rewritten or dropped.

    Records are matched by their record_id: one already in DIR with the same content is not copied again (merging
    twice copies nothing); one with the same record_id but different content is a conflict: DIR's is kept, the
    conflict is listed and the exit status is 1. Records from different hosts never collide: the machine is part
    of every latency record's key, so `table` and `correlate` on DIR show each device and runtime whichever host
    measured it. The merge holds DIR's lock, so two merges (or a merge and a measurement) can run at once.

    To read several folders without copying, give the analysis commands --results more than once.

    \b
    Examples:
      mobileone-bench merge hostA/results hostB/results --into study/
      mobileone-bench merge laptop-results/ --into results/ --dry-run
      mobileone-bench merge a/ b/ --into study/ --format json
    """
    from mobileone_bench import api

    fmt = fmt.lower()
    if fmt not in ("table", "json"):
        raise UsageError(f"unknown format {fmt!r}; choose from table, json")
    report = api.merge(list(sources), into, dry_run=dry_run, as_frame=False)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        verb = "Would copy" if dry_run else "Copied"
        emit(report["sources"], "table",
             [("source", "Source"), ("records", "Records"), ("copied", verb), ("already_present", "Already there"),
              ("conflicting", "Conflicting"), ("skipped", "Skipped"), ("unreadable_lines", "Unreadable lines"),
              ("samples_copied", "Samples copied" if not dry_run else "Samples to copy"),
              ("hosts", "Hosts")],
             title=f"{'Dry run: merge' if dry_run else 'Merged'} into {report['into']}")
        if report["conflicts"]:
            rows = [{**c, "fields": ", ".join(c["fields"])} for c in report["conflicts"]]
            emit(rows, "table", [("record_id", "record_id"), ("kind", "Kind"), ("model", "Model"),
                                 ("source", "Source"), ("what", "Differs"), ("fields", "Fields")],
                 title=f"Conflicts: same record_id, different content ({report['into']}'s kept)")
        if report["skipped_records"]:
            emit(report["skipped_records"], "table", [("record_id", "record_id"), ("source", "Source"),
                                                      ("line", "Line"), ("reason", "Why not copied")], title="Skipped")
    summary = (f"{'would copy' if dry_run else 'copied'} {report['copied']} record(s) into {report['into']}; "
               f"{report['already_present']} already there")
    if report["skipped"]:
        summary += f"; {report['skipped']} skipped (not copied; each is listed with the reason)"
    unreadable = sum(r["unreadable_lines"] for r in report["sources"])
    if unreadable:
        summary += f"; {unreadable} unreadable line(s) not copied"
    if report["missing_samples"]:
        summary += (f"; {report['missing_samples']} of them {'would be' if dry_run else 'were'} copied without "
                    f"their samples file (missing in the source too)")
    if report["conflicting"]:
        click.echo(f"{summary}; {report['conflicting']} conflicting record(s) not copied (same record_id, different "
                   f"content; {report['into']}'s kept)", err=True)
        raise SystemExit(1)
    click.echo(summary + ".", err=True)


@click.command("export-results")
@click.option("--format", "fmt", default=None, metavar="FORMAT",
              help="csv (default), parquet (needs pyarrow and --out) or pytorch-benchmark (the PyTorch OSS "
                   "benchmark database's JSON); with --out, taken from the file's suffix if not given.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write to FILE instead of stdout: .csv, .parquet (or .pq), or .json (pytorch-benchmark); any "
                   "other suffix, or one that names another format than --format, is refused.")
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              help="Only records of this kind: latency, profile, peak, explain, accuracy (repeat or comma-separate; "
                   "default: all).")
@click.option("--latest", is_flag=True,
              help="Only the newest successful record per key (what the analyses use), not the whole history.")
@results_option("Results folder to export; repeat it to export several as one (a record in two counts once).")
def export_results_cmd(fmt: str | None, out: str | None, kinds: tuple[str, ...], latest: bool,
                       results: tuple[str, ...]) -> None:
    """Write the results store in a form dashboards read: a flat CSV or Parquet table (one row per record, every
    field a column: model, device, runtime, latency statistics, machine, environment...), or the JSON list of the
    PyTorch OSS benchmark database (benchmark / model / metric / runners entries, one per latency record and
    statistic; the mapping is in mobileone_bench/store/export.py).

    \b
    Examples:
      mobileone-bench export-results --out results.csv
      mobileone-bench export-results --results hostA/results --results hostB/results --out study.parquet
      mobileone-bench export-results --format pytorch-benchmark --latest --out benchmark-results.json
      mobileone-bench export-results --kind latency --latest | head
    """
    from mobileone_bench import api
    from mobileone_bench.store.export import export_format

    fmt = export_format(fmt, out)  # before the store is read: results.xlsx is refused, not filled with CSV
    done = api.export_results(list(results), format=fmt, out=out, kinds=kinds, latest=latest)
    if done["out"] is None:
        click.echo(done["text"], nl=False)
        return
    what = "benchmark entries" if done["format"] == "pytorch-benchmark" else "rows"
    click.echo(f"wrote {done['out']}: {done['rows']} {what} from {done['records']} record(s)", err=True)


COMMANDS: list[Callable[..., Any]] = [merge_cmd, export_results_cmd]
