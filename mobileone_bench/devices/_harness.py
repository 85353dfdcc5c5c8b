"""Plumbing between ``mobileone_bench`` and the Swift harness in ``ios_harness/`` (private to
:mod:`mobileone_bench.devices.apple`).

Four groups, all free of results-store logic so that each can be tested on any platform:

* **reports**: the versioned JSON report (``mobileone_bench/data/harness_report.schema.json``), checked with
  ``jsonschema`` plus what a JSON Schema cannot say (``len(samples_ms) == runs`` for an ``ok`` result), read from a
  report file or picked out of a log as ``MOBILEONE_BENCH_REPORT {json}`` lines, which are merged back into runs;
* **staging**: compiled models into ``App/Models/`` and ``App/run_config.json`` (validated against the schema's
  ``$defs/run_config``);
* **external commands**: each one a pure function returning an argv list, and :func:`_run`, the one wrapper that
  executes them (streaming the output line by line);
* **devices**: the connected iPhones, parsed from ``xcrun devicectl list devices --json-output FILE``.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from mobileone_bench.errors import (
    DeviceUnavailableError,
    MissingDependencyError,
    ReportError,
    UsageError,
)

__all__ = [
    "MARKER",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "COMPUTE_UNITS",
    "LOG_PREFIX",
    "load_schema",
    "report_problems",
    "validate_report",
    "marked_json",
    "marked_lines",
    "parse_marked",
    "merge_runs",
    "read_reports",
    "reports_in_folder",
    "reports_in_folder_file",
    "make_run_config",
    "write_run_config",
    "stage_models",
    "staged_models_dir",
    "coremlcompiler_argv",
    "xcodegen_argv",
    "devicectl_argv",
    "xcodebuild_argv",
    "xcresult_attachments_argv",
    "devicectl_copy_reports_argv",
    "xcodebuild_destination",
    "APP_REPORTS_DIR",
    "THROTTLED_THERMAL_STATES",
    "result_conditions",
    "mac_runner_argv",
    "sysctl_argv",
    "Device",
    "parse_devicectl",
    "select_device",
    "select_devices",
    "ALL_DEVICES",
    "attachment_devices",
    "first_error_line",
    "os_version3",
    "RunResult",
]

MARKER = "MOBILEONE_BENCH_REPORT"
SCHEMA_NAME = "mobileone-bench/harness-report"
SCHEMA_VERSION = 1
COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")
LOG_PREFIX = "[mobileone-bench]"
APP_REPORTS_DIR = "Documents/reports"
THROTTLED_THERMAL_STATES = ("fair", "serious", "critical")
_MARKED = re.compile(re.escape(MARKER) + r" (\{.*)$")
_MAX_PROBLEMS = 4


# ------------------------------------------------------------------------------------------------------ reports


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The shared report schema (``mobileone_bench/data/harness_report.schema.json``)."""
    text = resources.files("mobileone_bench").joinpath("data/harness_report.schema.json").read_text("utf-8")
    return json.loads(text)


def _validator(schema: dict[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError:
        raise MissingDependencyError("the harness report validator (Python module 'jsonschema')",
                                     "pip install jsonschema") from None
    return jsonschema.Draft202012Validator(schema)


def _pointer(path: Iterable[Any]) -> str:
    return "/" + "/".join(str(p) for p in path)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(error: Any) -> str:
    """``/json/pointer: what is wrong`` for one jsonschema error, with long values shortened."""
    if error.context:  # oneOf: the deepest problem of the branches that have the right type
        relevant = [e for e in error.context if e.validator != "type"] or list(error.context)
        error = max(relevant, key=lambda e: len(e.absolute_path))
    message = error.message
    full = repr(error.instance)
    if len(full) > 40 and full in message:
        message = message.replace(full, _short(error.instance))
    return f"{_pointer(error.absolute_path)}: {message}"


def report_problems(doc: Any) -> list[str]:
    """Everything wrong with a report, as ``/json/pointer: message`` lines (empty when valid).

    The schema is checked first (``schema_version`` and ``schema`` problems are listed first, since they explain the
    rest); a schema-valid report is then checked for what the schema cannot express: an ``ok`` result holds exactly
    ``runs`` samples.
    """
    errors = list(_validator(load_schema()).iter_errors(doc))
    if errors:
        def order(e: Any) -> tuple[Any, ...]:
            path = list(e.absolute_path)
            return (path[:1] not in (["schema_version"], ["schema"]),
                    tuple((isinstance(p, str), p) for p in path))

        return [_describe(e) for e in sorted(errors, key=order)]
    problems = []
    for i, result in enumerate(doc["results"]):
        if result["status"] == "ok" and len(result["samples_ms"]) != result["runs"]:
            problems.append(f"/results/{i}/samples_ms: {len(result['samples_ms'])} samples for runs = "
                            f"{result['runs']} (an ok result holds exactly runs samples)")
    return problems


def validate_report(doc: Any, where: str) -> dict[str, Any]:
    """Return ``doc`` if it is a valid report, else raise :class:`ReportError` (one line naming ``where``)."""
    problems = report_problems(doc)
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        listed = "; ".join(problems[:_MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise ReportError(f"{where}: invalid harness report: {listed}")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise ReportError(f"{where}: not valid JSON ({exc})") from None


def marked_json(line: str) -> str | None:
    """The JSON text of a marked line (``MOBILEONE_BENCH_REPORT {...}`` anywhere in it, the JSON running from the
    ``{`` to the end of the line, trailing whitespace stripped), or ``None`` for any other line."""
    match = _MARKED.search(line.rstrip())
    return match.group(1) if match else None


def marked_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, JSON text)`` of every marked line, numbered from 1."""
    for number, line in enumerate(lines, start=1):
        text = marked_json(line)
        if text is not None:
            yield number, text


def parse_marked(json_text: str, where: str) -> dict[str, Any]:
    """The validated report carried by one marked line (``where`` names the file and line in errors)."""
    return validate_report(_loads(json_text, where), where)


def merge_runs(reports: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group one-result reports into runs: reports sharing ``schema``, ``schema_version``, ``harness_version``,
    ``created``, ``device`` and ``config`` are one run, whose ``results`` are theirs concatenated in order."""
    runs: dict[str, dict[str, Any]] = {}
    for report in reports:
        header = {k: v for k, v in report.items() if k != "results"}
        key = json.dumps(header, sort_keys=True)
        if key not in runs:
            runs[key] = {**header, "results": []}
        runs[key]["results"].extend(report["results"])
    return list(runs.values())


def read_reports(path: str | Path) -> list[dict[str, Any]]:
    """The runs held by a file: a JSON report (as the app exports it, or ``--out`` of the macOS runner) or any text
    holding marked lines (an ``xcodebuild test`` log, the macOS runner's stdout).

    Raises:
        ReportError: Unreadable file, invalid JSON, a report that breaks the schema, or no report at all.
    """
    where = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise ReportError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if text.lstrip().startswith("{"):
        return [validate_report(_loads(text, where), where)]
    reports = [parse_marked(js, f"{where} line {n}") for n, js in marked_lines(text.splitlines())]
    if not reports:
        raise ReportError(f"{where}: no harness report in it (neither a JSON report nor a log with "
                          f"'{MARKER} {{...}}' lines)")
    return merge_runs(reports)


def reports_in_folder(folder: Path) -> list[dict[str, Any]]:
    """The runs of every harness report among the ``.json`` files under ``folder`` (e.g. the attachments exported
    from an ``.xcresult``); other JSON files are ignored, a broken report raises :class:`ReportError`."""
    runs: list[dict[str, Any]] = []
    for path in sorted(Path(folder).rglob("*.json")):
        runs.extend(reports_in_folder_file(path))
    return runs


def reports_in_folder_file(path: Path) -> list[dict[str, Any]]:
    """The runs of one ``.json`` file of :func:`reports_in_folder`: none when it is not a harness report (another
    JSON file, unreadable), else those of :func:`read_reports` (a broken report raises :class:`ReportError`)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return []
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA_NAME:
        return read_reports(path)
    return []


# ------------------------------------------------------------------------------------------------------ staging


def make_run_config(*, warmup: int, runs: int, compute_units: str, models: list[str],
                    tag: str | None) -> dict[str, Any]:
    """A run configuration (``App/run_config.json``, ``--config`` of the macOS runner), validated.

    Raises:
        UsageError: A value the harness would reject (checked with the schema's ``$defs/run_config``).
    """
    config = {"warmup": warmup, "runs": runs, "compute_units": compute_units, "models": list(models), "tag": tag}
    errors = list(_validator(load_schema()["$defs"]["run_config"]).iter_errors(config))
    if errors:
        raise UsageError(f"run configuration: {'; '.join(_describe(e) for e in errors)}")
    return config


def write_run_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write a run configuration as JSON to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def staged_models_dir(harness_dir: Path) -> Path:
    """``<harness>/App/Models``: the folder reference the app bundles as it is."""
    return Path(harness_dir) / "App" / "Models"


def stage_models(harness_dir: Path, compiled: Mapping[str, Path]) -> list[Path]:
    """Replace the contents of ``App/Models`` (all but ``.gitkeep``) with ``<name>.mlmodelc`` copies.

    Args:
        harness_dir: The ``ios_harness`` folder.
        compiled: Harness model name -> compiled ``.mlmodelc`` folder.

    Returns:
        The staged folders, in the order given.
    """
    folder = staged_models_dir(harness_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name == ".gitkeep":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    staged = []
    for name, source in compiled.items():
        target = folder / f"{name}.mlmodelc"
        shutil.copytree(source, target)
        staged.append(target)
    return staged


# ------------------------------------------------------------------------------------------- external commands


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


def attachment_devices(folder: Path) -> dict[str, dict[str, str | None]]:
    """Which device each exported attachment came from: ``exportedFileName`` -> ``{"id": deviceId, "name":
    deviceName}``, read from the ``manifest.json`` that ``xcresulttool export attachments`` writes beside the files
    (a list of tests, each with its ``attachments``). Empty when there is no readable manifest; an attachment
    without device fields maps to ``None`` values."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, dict[str, str | None]] = {}
    for test in manifest if isinstance(manifest, list) else []:
        for item in (test.get("attachments") or []) if isinstance(test, dict) else []:
            if isinstance(item, dict) and item.get("exportedFileName"):
                out[str(item["exportedFileName"])] = {
                    "id": str(item["deviceId"]) if item.get("deviceId") else None,
                    "name": str(item["deviceName"]) if item.get("deviceName") else None}
    return out


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


def xcodebuild_destination(device: "Device") -> str:
    """``id=<UDID>`` when ``devicectl`` gave the hardware UDID; otherwise ``platform=iOS,name=<name>``, because the
    CoreDevice identifier is not a UDID and ``xcodebuild -destination id=`` may not accept it."""
    if device.udid:
        return f"id={device.udid}"
    return f"platform=iOS,name={device.name}"


def mac_runner_argv(harness_dir: Path, models_dir: Path, config: Path, *, warmup: int, runs: int,
                    compute_units: str, out: Path) -> list[str]:
    """The harness's macOS runner (``swift run -c release mobileone-harness``) on a folder of models."""
    return ["swift", "run", "-c", "release", "--package-path", str(harness_dir), "mobileone-harness",
            "--models", str(models_dir), "--config", str(config), "--warmup", str(warmup), "--runs", str(runs),
            "--compute-units", compute_units, "--out", str(out)]


def sysctl_argv(name: str) -> list[str]:
    """Read one ``sysctl`` value (``hw.model`` is the Mac's model identifier, as the harness reports it)."""
    return ["sysctl", "-n", name]


@dataclass(frozen=True)
class RunResult:
    """What :func:`_run` returns.

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


def _run(argv: list[str], *, cwd: Path | None = None, on_line: Callable[[str], None] | None = None,
         keep: int = 400) -> RunResult:
    """Run a command, streaming its combined stdout and stderr line by line to ``on_line``.

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
        except BaseException:  # Ctrl-C or SIGTERM (the interrupt rule): stop the child too, then go up
            proc.terminate()  # xcodebuild cancels its test run on SIGTERM
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


# ------------------------------------------------------------------------------------------------------ devices


@dataclass(frozen=True)
class Device:
    """A device as ``devicectl`` describes it.

    Attributes:
        udid: The UDID ``xcodebuild -destination id=...`` takes (``hardwareProperties.udid``); ``None`` when
            ``devicectl`` gives no hardware UDID (as for some iOS 16 devices): the CoreDevice identifier is not
            a UDID, so :func:`xcodebuild_destination` then names the device instead.
        identifier: The CoreDevice identifier (what ``devicectl --device`` takes).
        name: The name the user gave the device.
        product_type: Model identifier (``iPhone13,2``), what the harness reports; ``None`` when unknown.
        marketing_name: ``iPhone 12``; ``None`` when unknown.
        platform: ``iOS``, ``watchOS``...; ``None`` when unknown.
        os_version: ``17.5.1``; ``None`` when unknown.
        connected: Reachable now (wired, on the network, or tunnel up), not merely remembered.
        paired: ``connectionProperties.pairingState`` is ``paired`` (``True`` when ``devicectl`` does not say).
        available: Ready for development: its developer disk image services are not reported unavailable and
            Developer Mode is not reported disabled (``True`` when ``devicectl`` does not say).
    """

    udid: str | None
    identifier: str
    name: str
    product_type: str | None
    marketing_name: str | None
    platform: str | None
    os_version: str | None
    connected: bool
    paired: bool = True
    available: bool = True

    def label(self) -> str:
        """``Jane's iPhone (iPhone 12, iOS 17.5.1, 00008101-...)``."""
        facts = [f for f in (self.marketing_name or self.product_type,
                             f"{self.platform or 'iOS'} {self.os_version}" if self.os_version else None,
                             self.udid or self.identifier)
                 if f]
        return f"{self.name} ({', '.join(facts)})"


def parse_devicectl(doc: Mapping[str, Any]) -> list[Device]:
    """The devices in ``devicectl list devices --json-output`` JSON (``result.devices``).

    Raises:
        DeviceUnavailableError: The JSON is not what ``devicectl`` writes.
    """
    devices = (doc.get("result") or {}).get("devices") if isinstance(doc, Mapping) else None
    if not isinstance(devices, list):
        raise DeviceUnavailableError("xcrun devicectl list devices wrote no device list (is Xcode 15 or later "
                                     "selected? xcode-select -p)")
    out = []
    for d in devices:
        hw = d.get("hardwareProperties") or {}
        props = d.get("deviceProperties") or {}
        conn = d.get("connectionProperties") or {}
        identifier = str(d.get("identifier", ""))
        out.append(Device(
            udid=str(hw["udid"]) if hw.get("udid") else None,
            identifier=identifier,
            name=str(props.get("name") or hw.get("marketingName") or identifier),
            product_type=hw.get("productType"),
            marketing_name=hw.get("marketingName"),
            platform=hw.get("platform"),
            os_version=props.get("osVersionNumber"),
            connected=bool(conn.get("transportType")) or conn.get("tunnelState") == "connected",
            paired=conn.get("pairingState") in (None, "paired"),
            available=props.get("ddiServicesAvailable") is not False and props.get("developerModeStatus") != "disabled",
        ))
    return out


_HINT = "connect and unlock it, trust this Mac, and turn on Developer Mode (Settings > Privacy & Security)"
ALL_DEVICES = "all"


def _ios(devices: list[Device]) -> list[Device]:
    return [d for d in devices if d.platform in (None, "iOS")]


def _named(ios: list[Device], destination: str) -> Device:
    """The iOS device named by ``destination`` (UDID, CoreDevice identifier or name, case insensitive)."""
    wanted = destination.strip().casefold()
    matches = [d for d in ios if wanted in ((d.udid or "").casefold(), d.identifier.casefold(), d.name.casefold())]
    if not matches:
        known = ", ".join(d.label() for d in ios) or "none"
        raise DeviceUnavailableError(f"no iOS device {destination!r} is known to this Mac (known: {known})")
    return matches[0]


def select_device(devices: list[Device], destination: str | None) -> Device:
    """The iOS device to run on: the one named by ``destination`` (UDID, CoreDevice identifier or name, case
    insensitive), or the only connected one.

    Raises:
        DeviceUnavailableError: No such device, or it is not connected.
        UsageError: Several devices are connected and none was named.
    """
    ios = _ios(devices)
    if destination:
        device = _named(ios, destination)
        if not device.connected:
            raise DeviceUnavailableError(f"{device.label()} is paired but not connected: {_HINT}")
        return device
    connected = [d for d in ios if d.connected]
    if not connected:
        raise DeviceUnavailableError(f"no iPhone is connected to this Mac: {_HINT}")
    if len(connected) > 1:
        raise UsageError("several devices are connected: " + "; ".join(d.label() for d in connected)
                         + "; choose one with --destination NAME|UDID, several with --destination given more "
                           "than once, or all of them with --destination all")
    return connected[0]


def select_devices(devices: list[Device], destinations: Sequence[str]) -> list[Device]:
    """The iOS devices of a run on several: each one named in ``destinations`` (as :func:`select_device` matches
    it), once, in the order named, connected or not (the caller records a device that is not connected as failed);
    or, for ``["all"]``, every connected, paired and available iOS device.

    Raises:
        UsageError: No destination, an empty one, or ``all`` beside other destinations.
        DeviceUnavailableError: A name no iOS device of this Mac has; ``all`` and no device is ready; or none of
            the named devices is connected.
    """
    names = [str(d) for d in destinations]
    if not names or any(not n.strip() for n in names):
        raise UsageError("--destination needs a device name, UDID or CoreDevice identifier (or 'all')")
    ios = _ios(devices)
    if any(n.strip().casefold() == ALL_DEVICES for n in names):
        if len(names) > 1:
            raise UsageError("--destination all means every connected iPhone; give it alone, or name the devices")
        ready = [d for d in ios if d.connected and d.paired and d.available]
        if not ready:
            raise DeviceUnavailableError(f"--destination all: no connected, paired and available iOS device "
                                         f"(known: {', '.join(d.label() for d in ios) or 'none'}): {_HINT}")
        return ready
    chosen = list(dict.fromkeys(_named(ios, n) for n in names))
    if not any(d.connected for d in chosen):
        raise DeviceUnavailableError(f"none of the named devices is connected "
                                     f"({'; '.join(d.label() for d in chosen)}): {_HINT}")
    return chosen


def result_conditions(result: Mapping[str, Any], device: Mapping[str, Any]) -> dict[str, Any]:
    """The device conditions of one result: thermal state and Low Power Mode before and after its timed runs
    (``conditions_before`` / ``conditions_after``, harness 0.2), else the session's (``device``, harness 0.1), and
    ``throttled``: the states above nominal that were seen, in order (empty when all were nominal or unknown)."""
    def pick(key: str) -> dict[str, Any]:
        given = result.get(key)
        if isinstance(given, Mapping):
            return {"thermal_state": given.get("thermal_state"), "low_power_mode": given.get("low_power_mode")}
        return {"thermal_state": device.get("thermal_state"), "low_power_mode": device.get("low_power_mode")}

    before, after = pick("conditions_before"), pick("conditions_after")
    states = [c["thermal_state"] for c in (before, after)]
    throttled = list(dict.fromkeys(s for s in states if s in THROTTLED_THERMAL_STATES))
    return {"before": before, "after": after, "throttled": throttled,
            "low_power_mode": before["low_power_mode"] is True or after["low_power_mode"] is True}


def os_version3(version: str) -> str:
    """``17.5`` -> ``17.5.0``: the harness always reports major.minor.patch."""
    parts = version.strip().split(".")
    if all(p.isdigit() for p in parts) and len(parts) < 3:
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)
