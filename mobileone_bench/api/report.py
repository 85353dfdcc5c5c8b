"""``report``: the study as one self-contained HTML page (:mod:`mobileone_bench.analysis.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Union

from mobileone_bench import _args
from mobileone_bench._args import DEFAULT_RESULTS

__all__ = ["report", "DEFAULT_REPORT"]

#: Where ``report`` writes when ``out`` is not given.
DEFAULT_REPORT = "report.html"


def report(results: Union[str, Path, Sequence[Union[str, Path]]] = DEFAULT_RESULTS, *,
           out: str | Path | None = None, include_contended: bool = False) -> dict[str, Any]:
    """Write the study as one HTML file that works offline, as ``mobileone-bench report``: the header (what was
    measured, where, when, with which versions, under which conditions), Table 1 with intervals and Kendall's tau,
    the proxy ranking, Tables 9 and 14 beside the paper's figures with the rank agreement, Figures 1 and 2 and latency
    against each proxy (inline SVG, each point titled), and per model its samples' histogram, per-round values,
    environment, artifact hashes and per-operator breakdown where stored. Tables sort by a click on a header; every
    latency links to its record.

    ``results``: one folder or several read as one; ``out``: the file (default ``report.html``);
    ``include_contended``: use latency records flagged contended too (left out by default, and said so).

    Returns:
        ``{"out", "bytes", "records", "models", "tables", "figures", "missing"}``: ``missing`` says which parts
        of the page the store could not fill, and why.

    Raises:
        AnalysisError: The folder does not exist or holds no record. UsageError: ``out`` cannot be written.

    Example:
        >>> import mobileone_bench as mb
        >>> mb.report("results", out="study.html")["out"]   # doctest: +SKIP
        'study.html'
    """
    _args.check(locals())
    from mobileone_bench.analysis.report import write_report
    from mobileone_bench.store.frames import open_store

    return write_report(open_store(results), DEFAULT_REPORT if out is None else out,
                        include_contended=include_contended)
