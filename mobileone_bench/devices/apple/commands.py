"""The external commands of the Apple path: each command line a pure function returning an argv list, and
:func:`run`, the one wrapper that executes them (streaming the output line by line).

Everything that runs a program on the Mac goes through :func:`run`, so that a test can stand in for the whole Mac by
replacing that one function.
"""

from __future__ import annotations

import re
import subprocess
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from mobileone_bench.devices.apple.report import LOG_PREFIX
from mobileone_bench.errors import DeviceUnavailableError, MeasurementError, MissingDependencyError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.devices.apple.destinations import Device

__all__ = [
    "APP_REPORTS_DIR", "coremlcompiler_argv", "xcodegen_argv", "devicectl_argv", "xcodebuild_argv",
    "xcresult_attachments_argv", "devicectl_copy_reports_argv", "xcodebuild_destination", "mac_runner_argv",
    "sysctl_argv", "RunResult", "run", "check", "first_error_line",
]

#: Where the headless test saves its report in the app's data container, after every model.
APP_REPORTS_DIR = "Documents/reports"


def coremlcompiler_argv(src: Path, out_dir: Path) -> list[str]:
    """Compile a ``.mlpackage``/``.mlmodel`` into ``<out_dir>/<stem>.mlmodelc``."""
    return ["xcrun", "coremlcompiler", "compile", str(src), str(out_dir)]


def xcodegen_argv() -> list[str]:
    """Generate ``MobileOneBench.xcodeproj`` from ``project.yml`` (run in the harness folder)."""
    return ["xcodegen", "generate"]


def devicectl_argv(json_out: Path) -> list[str]:
    """List the devices this Mac knows, as JSON written to ``json_out`` (Xcode 15 and later)."""
    return ["xcrun", "devicectl", "list", "devices", "--json-output", str(json_out), "--timeout", "10"]


def xcodebuild_argv(project: Path, destination: str | Sequence[str], *, team: str, bundle_id: str,
                    result_bundle: Path) -> list[str]:
    """Build, install and run the headless benchmark test on one device, or on several at once.

    Args:
        project: ``ios_harness/MobileOneBench.xcodeproj``.
        destination: The ``-destination`` value (:func:`xcodebuild_destination`), or a bare UDID (``id=UDID``); or
            several of them: one ``-destination`` flag each, and ``-maximum-concurrent-test-device-destinations``
            set to their number, so that Xcode runs the test on all of them concurrently (one build).
        team: Apple Developer team id (``DEVELOPMENT_TEAM``).
        bundle_id: App bundle id of the team's own (``APP_BUNDLE_ID``).
        result_bundle: Where the ``.xcresult`` goes (must not exist yet).
    """
    given = [destination] if isinstance(destination, str) else list(destination)
    if not given:
        raise UsageError("xcodebuild needs at least one destination")
    flags: list[str] = []
    for value in given:
        flags += ["-destination", value if "=" in value else f"id={value}"]
    if len(given) > 1:
        flags += ["-maximum-concurrent-test-device-destinations", str(len(given))]
    return ["xcodebuild", "test", "-project", str(project), "-scheme", "MobileOneBenchApp",
            *flags, "-only-testing:MobileOneBenchAppTests/HeadlessBenchmarkTests",
            "-resultBundlePath", str(result_bundle), f"DEVELOPMENT_TEAM={team}", f"APP_BUNDLE_ID={bundle_id}",
            "-allowProvisioningUpdates", "-allowProvisioningDeviceRegistration"]


def xcresult_attachments_argv(result_bundle: Path, out_dir: Path) -> list[str]:
    """Export a result bundle's attachments (one report per model, then the whole report) into ``out_dir``.

    ``export attachments`` is the Xcode 16 ``xcresulttool``; Xcode 15's has no such subcommand (its ``export``
    needs object ids from the deprecated ``get --format json`` graph), so on Xcode 15 this command fails and the
    app container (:func:`devicectl_copy_reports_argv`) is the fallback. Xcode 16 is the supported minimum for
    this channel.
    """
    return ["xcrun", "xcresulttool", "export", "attachments", "--path", str(result_bundle),
            "--output-path", str(out_dir)]


def devicectl_copy_reports_argv(device: str, bundle_id: str, out_dir: Path) -> list[str]:
    """Copy the app's ``Documents/reports`` (where the headless test saves the report after every model) from the
    device into ``out_dir`` (Xcode 15 and later).

    Args:
        device: What ``devicectl --device`` takes: the CoreDevice identifier, the UDID or the name.
        bundle_id: The app's bundle id (``APP_BUNDLE_ID``): the data container to read.
        out_dir: Local folder.
    """
    return ["xcrun", "devicectl", "device", "copy", "from", "--device", device, "--domain-type", "appDataContainer",
            "--domain-identifier", bundle_id, "--source", APP_REPORTS_DIR, "--destination", str(out_dir)]


def xcodebuild_destination(device: Device) -> str:
    """``id=<UDID>``: a phone is always given to ``xcodebuild`` by its UDID (a name breaks on commas and on two phones
    of one name; :func:`~mobileone_bench.devices.apple.destinations.select_device` resolves names to UDIDs first).

    Raises:
        DeviceUnavailableError: ``devicectl`` gave no UDID for it (one line saying to name it by its UDID).
    """
    if not device.udid:
        raise DeviceUnavailableError(str(device.problem()))
    return f"id={device.udid}"


def mac_runner_argv(harness_dir: Path, models_dir: Path, config: Path, *, warmup: int, runs: int,
                    compute_units: str, out: Path) -> list[str]:
    """The harness's macOS runner (``swift run -c release mobileone-harness``) on a folder of models."""
    return ["swift", "run", "-c", "release", "--package-path", str(harness_dir), "mobileone-harness",
            "--models", str(models_dir), "--config", str(config), "--warmup", str(warmup), "--runs", str(runs),
            "--compute-units", compute_units, "--out", str(out)]


def sysctl_argv(name: str) -> list[str]:
    """Read one ``sysctl`` value (``hw.model`` is the Mac's model identifier, as the harness reports it)."""
    return ["sysctl", "-n", name]


# -------------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` returns.

    Attributes:
        returncode: The exit status.
        tail: The last lines of the combined stdout and stderr (all of them for short outputs).
    """

    returncode: int
    tail: tuple[str, ...]

    @property
    def output(self) -> str:
        """The kept lines, joined."""
        return "\n".join(self.tail)


def run(argv: list[str], *, cwd: Path | None = None, on_line: Callable[[str], None] | None = None,
        keep: int = 400) -> RunResult:
    """Run a command, streaming its combined stdout and stderr line by line to ``on_line``.

    Ctrl-C or SIGTERM while it runs (the interrupt rule of :mod:`mobileone_bench._interrupt`) stops the child too
    (``xcodebuild`` cancels its test run on SIGTERM) and goes up.

    Raises:
        MissingDependencyError: The program is not installed.
    """
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                encoding="utf-8", errors="replace", bufsize=1)
    except FileNotFoundError:
        raise MissingDependencyError(f"the command '{argv[0]}'", "install Xcode (and XcodeGen for the iPhone)") \
            from None
    tail: deque[str] = deque(maxlen=keep)
    assert proc.stdout is not None
    with proc:
        try:
            for raw in proc.stdout:
                line = raw.rstrip("\r\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
        except BaseException:  # Ctrl-C or SIGTERM: stop the child too, then go up
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return RunResult(proc.returncode, tuple(tail))


def first_error_line(lines: Iterable[str]) -> str | None:
    """What went wrong in a build/test log: the first ``error: ...`` (from ``error:`` on, without the file path
    before it; the harness's own per-model progress lines are not errors), else the last failure banner
    (``** TEST FAILED **``), else ``None``."""
    banner = None
    for line in lines:
        text = line.strip()
        if LOG_PREFIX in text:
            continue
        match = re.search(r"(?:^|\s)(error:.*)", text)
        if match:
            return match.group(1)
        if text.startswith("** ") and "FAILED" in text:
            banner = text
    return banner


def check(result: RunResult, what: str) -> None:
    """Raise :class:`MeasurementError` with the first error line when a command failed."""
    if result.returncode != 0:
        reason = first_error_line(result.tail) or (result.tail[-1] if result.tail else "no output")
        raise MeasurementError(f"{what} failed (exit {result.returncode}): {reason}")
