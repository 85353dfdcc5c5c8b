"""Reading a harness's output as it runs: the log kept for diagnosis, the marked lines (reports and compute plans)
validated as they arrive, progress as models finish (private to the iPhone and Mac runners)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mobileone_bench.devices.apple import commands
from mobileone_bench.devices.apple import placement
from mobileone_bench.devices.apple._common import Progress, Warn
from mobileone_bench.devices.apple.report import LOG_PREFIX, marked_json, parse_marked
from mobileone_bench.errors import ReportError

__all__ = ["Collector", "log_path", "stream"]


class Collector:
    """Reads a harness's output line by line: writes the log, validates marked lines as they arrive and reports
    progress (a model finished, or the harness's own ``[mobileone-bench]`` progress line).

    Args:
        log_path: Where the whole output is written.
        progress: Progress callback.
        warn: Receives a malformed marked line (the model is then reported missing).
    """

    def __init__(self, log_path: Path, progress: Progress, warn: Warn):
        self.log_path = log_path
        self.progress = progress
        self.warn = warn
        self.reports: list[dict[str, Any]] = []
        self.plans: list[dict[str, Any]] = []  # compute plans (MOBILEONE_BENCH_COMPUTE_PLAN lines)
        self._number = 0
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "w", encoding="utf-8")

    def __call__(self, line: str) -> None:
        self._number += 1
        self._log.write(line + "\n")
        if placement.MARKER in line:
            try:
                plan = placement.plan_in_line(line, f"{self.log_path} line {self._number}")
            except ReportError as exc:
                self.warn(str(exc))
                return
            if plan is not None:
                self.plans.append(plan)
                return
        text = marked_json(line)
        if text is not None:
            try:
                report = parse_marked(text, f"{self.log_path} line {self._number}")
            except ReportError as exc:
                self.warn(str(exc))
                return
            self.reports.append(report)
            for r in report["results"]:
                self.progress(f"{r['model']}: {'done' if r['status'] == 'ok' else 'failed'}", True)
        elif LOG_PREFIX in line:
            self.progress(line.split(LOG_PREFIX, 1)[1].strip(), False)

    def close(self) -> None:
        """Close the log."""
        self._log.close()


def log_path(folder: Path, name: str) -> Path:
    """``<folder>/<name>-<UTC time>.log``: the whole output of a harness run, kept for diagnosis (a ``-2``...
    suffix when that name is taken: runs one after the other within a second, one per phone). ``name`` must be
    fit for a file name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = Path(folder) / f"{name}-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = Path(folder) / f"{name}-{stamp}-{n}.log"
    return path


def stream(argv: list[str], collector: Collector) -> commands.RunResult:
    """Run a harness command with ``collector`` reading its output, and close the log."""
    try:
        return commands.run(argv, on_line=collector)
    finally:
        collector.close()
