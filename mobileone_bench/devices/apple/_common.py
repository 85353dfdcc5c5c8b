"""What every part of the Apple device path shares: the runner names, the warning class, the callbacks' types and
where the Swift harness lives."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

__all__ = ["RUNNER_IOS_APP", "RUNNER_MAC", "RUNNER_COREMLTOOLS", "CHANNEL_STDOUT", "CHANNEL_ATTACHMENT",
           "CHANNEL_CONTAINER", "CHANNEL_REPORT_FILE", "CHANNEL_IN_PROCESS", "HarnessWarning", "Warn", "Progress",
           "default_warn", "default_harness_dir", "harness_path"]

#: ``runtime_options.runner`` of a record: the harness app on an iPhone, the harness's macOS runner, or
#: ``coremltools``' own prediction on a Mac without a Swift toolchain.
RUNNER_IOS_APP = "ios-app"
RUNNER_MAC = "mac-runner"
RUNNER_COREMLTOOLS = "coremltools"

#: ``report_channel`` of a record: how its harness result reached this host. The marked lines of the harness's
#: output; an attachment of the ``xcodebuild`` result bundle (found through its ``manifest.json``); the report the
#: app saved in its ``Documents/reports`` (copied with ``devicectl``); a report file (``--from-report``, or the macOS
#: runner's ``--out``); or ``coremltools`` in this process.
CHANNEL_STDOUT = "stdout"
CHANNEL_ATTACHMENT = "attachment"
CHANNEL_CONTAINER = "container"
CHANNEL_REPORT_FILE = "report-file"
CHANNEL_IN_PROCESS = "in-process"

#: Receives a warning's text.
Warn = Callable[[str], None]
#: Receives ``(status text, whether a model just finished)``.
Progress = Callable[[str, bool], None]


class HarnessWarning(UserWarning):
    """Something about a harness report worth a warning (a summary that disagrees with its samples, a requested
    model missing from the reports, a malformed line in a log, a model that ran at a thermal state above nominal or
    in Low Power Mode)."""


def default_warn(message: str) -> None:
    """Where warnings go when the caller gives no ``on_warning``: :class:`HarnessWarning` through :mod:`warnings`."""
    warnings.warn(message, HarnessWarning, stacklevel=3)


def default_harness_dir() -> Path | None:
    """``ios_harness/`` of the checkout this package runs from, or ``None`` (e.g. a wheel install)."""
    candidate = Path(__file__).resolve().parents[3] / "ios_harness"
    return candidate if (candidate / "Package.swift").is_file() else None


def harness_path(harness_dir: str | Path | None, marker: str) -> Path | None:
    """The harness folder (``--harness`` or the checkout's) if it holds ``marker``, else ``None``."""
    folder = Path(harness_dir) if harness_dir else default_harness_dir()
    return folder if folder is not None and (folder / marker).is_file() else None
