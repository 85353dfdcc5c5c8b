"""``report``: the study as one HTML file that works offline (tables, figures, every record's distribution)."""

from __future__ import annotations

import json

import click

__all__ = ["report_cmd", "COMMANDS"]


def _results_option(f):  # noqa: ANN001, ANN202 - a click decorator
    from mobileone_bench.cli.results import results_option

    return results_option()(f)


@click.command("report")
@click.option("--out", type=click.Path(dir_okay=False), default="report.html", show_default=True, metavar="FILE",
              help="The HTML file to write.")
@click.option("--include-contended", is_flag=True,
              help="Use latency records flagged contended too (left out by default, and said so in the page).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How to say what was written.")
@_results_option
def report_cmd(out: str, include_contended: bool, fmt: str, results: tuple[str, ...]) -> None:
    """Write the study as one self-contained HTML page that works offline: what was measured, on which devices and
    runtimes, when, with which versions and under which conditions; Table 1 with intervals and Kendall's tau, the
    proxy ranking, Tables 9 and 14 beside the paper's figures; Figures 1 and 2 (hover a point for its model); and
    per model the distribution of its samples, its rounds, environment, artifact hashes and, where stored, where
    the time goes. Tables sort by a click on a header; every latency links to its record.

    \b
    Examples:
      mobileone-bench report
      mobileone-bench report --results results --results phone-results --out study.html
    """
    from mobileone_bench import api

    written = api.report(list(results), out=out, include_contended=include_contended)
    if fmt == "json":
        click.echo(json.dumps(written, indent=2))
        return
    click.echo(f"wrote {written['out']} ({written['bytes'] / 1e6:.2f} MB): {written['records']} records, "
               f"{written['models']} models, {len(written['tables'])} tables, {written['figures']} figures")
    for line in written["missing"]:
        click.echo(f"  not in the page: {line}", err=True)


COMMANDS = [report_cmd]
