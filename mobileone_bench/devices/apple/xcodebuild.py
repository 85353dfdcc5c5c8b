"""The iPhone run: compiled models staged into the harness app, the Xcode project generated, and ``xcodebuild test``
run on one phone or on several at once, its reports collected from every channel that carries them.

Three channels, each carrying every model as soon as it is done: the marked lines of the output (``stdout``: they
may never reach ``xcodebuild`` from a device run without the debugger); for every staged model without a complete
marked line (whatever the exit status), the result bundle's attachments (``attachment``: ``xcresulttool export
attachments``, Xcode 16, found through the ``manifest.json`` it writes, never by file extension: the exported files
are named by UUID); and for those still missing, the report the test saved in the app's ``Documents/reports``
(``container``: ``devicectl device copy from``), if it was written during this run. Every run says which channel
delivered it (``run["channel"]``). The compute plans (:mod:`~mobileone_bench.devices.apple.placement`) travel the
same three channels. What comes back are runs and plans (plain dicts), never records.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import re

from mobileone_bench.devices.apple import commands, placement
from mobileone_bench.devices.apple._collect import Collector, log_path, stream
from mobileone_bench.devices.apple._common import CHANNEL_ATTACHMENT, CHANNEL_CONTAINER, CHANNEL_STDOUT, Progress, Warn
from mobileone_bench.devices.apple.destinations import Device
from mobileone_bench.devices.apple.report import (
    SCHEMA_NAME,
    created_since,
    folder_runs,
    merge_runs,
    missing_models,
    only_models,
    os_version3,
    read_reports,
    write_run_config,
)
from mobileone_bench.errors import DeviceUnavailableError, MeasurementError, ReportError

__all__ = ["BY_HAND", "HARNESS_TEST", "require_xcode", "staged_models_dir", "stage_models", "compile_package",
           "prepare_project", "Attachment", "manifest_attachments", "attachment_devices", "attachment_documents",
           "PhoneRun", "test_one", "test_several"]

#: The headless test (``testIdentifier`` of its attachments in the result bundle's manifest).
HARNESS_TEST = "HeadlessBenchmarkTests"
#: ``XCTAttachment.name`` of every document the headless test attaches starts with this.
ATTACHMENT_PREFIX = "mobileone-bench-"
#: ``suggestedHumanReadableName`` is the attachment's name with ``_<n>_<UUID>`` put before its extension.
_SUGGESTED = re.compile(r"^(?P<stem>.*)_\d+_[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                        r"[0-9A-Fa-f]{12}(?P<ext>\.[^.]*)?$")

#: How to measure an iPhone without this tool driving Xcode.
BY_HAND = ("run the app by hand instead (ios_harness/README.md: build ios_harness/ in Xcode on any Mac, run it on "
           "the iPhone, tap Run all, export the report with the share button) and import it with "
           "`mobileone-bench latency --device iphone --from-report REPORT.json`")


def require_xcode() -> None:
    """Raise :class:`DeviceUnavailableError` unless this is macOS with Xcode and XcodeGen."""
    if sys.platform != "darwin":
        raise DeviceUnavailableError(
            f"--device iphone needs a Mac (macOS with Xcode, XcodeGen and a connected iPhone in Developer Mode) and "
            f"this machine runs {sys.platform}; {BY_HAND}")
    missing = [tool for tool in ("xcrun", "xcodebuild", "xcodegen") if shutil.which(tool) is None]
    if missing:
        raise DeviceUnavailableError(
            f"--device iphone needs {', '.join(missing)} on this Mac (Xcode from the App Store, selected with "
            f"xcode-select; XcodeGen with `brew install xcodegen`); or {BY_HAND}")


# ------------------------------------------------------------------------------------------------------ staging


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


def compile_package(package: Path, out_dir: Path) -> tuple[Path | None, str | None]:
    """``xcrun coremlcompiler compile`` one Core ML package into ``out_dir`` (created).

    Returns:
        ``(the .mlmodelc folder, None)``, or ``(None, why it failed)``.
    """
    out_dir.mkdir(parents=True)
    result = commands.run(commands.coremlcompiler_argv(Path(package), out_dir))
    bundles = sorted(out_dir.glob("*.mlmodelc"))
    if result.returncode == 0 and len(bundles) == 1:
        return bundles[0], None
    return None, commands.first_error_line(result.tail) or f"exit {result.returncode}, no .mlmodelc"


def prepare_project(harness: Path, compiled: Mapping[str, Path], config: Mapping[str, Any],
                    progress: Progress) -> Path:
    """Stage the compiled models and the run configuration into the harness app and generate its Xcode project;
    returns the project (``MobileOneBench.xcodeproj``).

    Raises:
        MeasurementError: ``xcodegen generate`` failed.
    """
    stage_models(harness, compiled)
    write_run_config(harness / "App" / "run_config.json", config)
    progress("xcodegen generate", False)
    commands.check(commands.run(commands.xcodegen_argv(), cwd=harness), "xcodegen generate")
    return harness / "MobileOneBench.xcodeproj"


# ------------------------------------------------------------------------------------------------ which phone


@dataclass(frozen=True)
class Attachment:
    """One exported attachment, as the result bundle's ``manifest.json`` lists it.

    Attributes:
        path: The exported file (``exportedFileName``: a UUID and an extension ``xcresulttool`` chooses).
        name: The name the test gave it (``suggestedHumanReadableName`` without the ``_<n>_<UUID>`` Xcode adds).
        test: ``testIdentifier`` (``HeadlessBenchmarkTests/testBenchmarkBundledModels()``).
        device_id: ``deviceId``: the UDID of the device the test ran on, when the manifest says.
        device_name: ``deviceName``, when the manifest says.
    """

    path: Path
    name: str
    test: str | None
    device_id: str | None
    device_name: str | None


def _attachment_name(item: Mapping[str, Any]) -> str:
    suggested = str(item.get("suggestedHumanReadableName") or "")
    match = _SUGGESTED.match(suggested)
    return (match.group("stem") + (match.group("ext") or "")) if match else suggested


def manifest_attachments(folder: Path) -> list[Attachment]:
    """The attachments of the headless test that ``xcresulttool export attachments`` wrote into ``folder``, found
    through its ``manifest.json`` (a list of ``{testIdentifier, attachments: [{exportedFileName,
    suggestedHumanReadableName, deviceId, deviceName, ...}]}``): those of :data:`HARNESS_TEST` whose name starts with
    :data:`ATTACHMENT_PREFIX` and whose file exists, in manifest order. Empty without a readable manifest."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for test in manifest if isinstance(manifest, list) else []:
        if not isinstance(test, dict):
            continue
        ident = test.get("testIdentifier")
        if ident is not None and HARNESS_TEST not in str(ident):
            continue
        for item in test.get("attachments") or []:
            if not isinstance(item, dict) or not item.get("exportedFileName"):
                continue
            path = Path(folder) / Path(str(item["exportedFileName"])).name
            name = _attachment_name(item)
            if name.startswith(ATTACHMENT_PREFIX) and path.is_file():
                out.append(Attachment(path, name, str(ident) if ident else None,
                                      str(item["deviceId"]) if item.get("deviceId") else None,
                                      str(item["deviceName"]) if item.get("deviceName") else None))
    return out


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


def attachment_documents(folder: Path, warn: Warn) -> list[tuple[Attachment, str, dict[str, Any]]]:
    """The harness documents among the exported attachments (:func:`manifest_attachments`), whatever their file
    extension: ``(attachment, "run" or "plan", the run or the compute plan)``, each run marked as delivered by the
    ``attachment`` channel. A broken report or plan is a warning (``warn``) and is skipped."""
    out: list[tuple[Attachment, str, dict[str, Any]]] = []
    for item in manifest_attachments(folder):
        try:
            text = item.path.read_text(encoding="utf-8-sig", errors="replace")
            plans = placement.plans_in_text(text, f"{item.name} ({item.path.name})")
            if plans:
                out += [(item, "plan", {**plan, "channel": CHANNEL_ATTACHMENT}) for plan in plans]
                continue
            doc = json.loads(text) if text.lstrip().startswith("{") else None
            if isinstance(doc, dict) and doc.get("schema") == SCHEMA_NAME:
                out += [(item, "run", {**run, "channel": CHANNEL_ATTACHMENT}) for run in read_reports(item.path)]
        except (ReportError, ValueError) as exc:
            warn(f"{item.name}: {exc}" if isinstance(exc, ValueError) else str(exc))
    return out


def _container(device: Device, bundle_id: str, folder: Path, started: datetime,
               warn: Warn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The runs and compute plans of this run in the phone's ``Documents/reports`` (copied into ``folder``), runs
    marked as delivered by the ``container`` channel; ``None`` when the copy failed."""
    copy = commands.devicectl_copy_reports_argv(device.identifier, bundle_id, folder)
    if commands.run(copy).returncode != 0:
        return None
    recent = [{**r, "channel": CHANNEL_CONTAINER} for r in folder_runs(folder, warn) if created_since(r, started)]
    plans = [{**p, "channel": CHANNEL_CONTAINER} for p in placement.plans_in_folder(folder, warn)
             if created_since(p, started)]
    return recent, plans


def _owner(device: dict[str, Any], phones: list[Device]) -> int | None:
    """The index of the only phone a report's ``device`` can be (same model identifier and iOS version, where
    ``devicectl`` knows them), or ``None`` when it could be several (two phones of one model on one iOS) or none:
    a harness report does not name the phone, so such a report is taken from a channel that does."""
    fits = [i for i, ph in enumerate(phones)
            if ph.product_type in (None, device.get("model_identifier"))
            and (ph.os_version is None or os_version3(ph.os_version) == device.get("os_version"))]
    return fits[0] if len(fits) == 1 else None


def _attachment_owner(meta: dict[str, str | None] | None, phones: list[Device]) -> int | None:
    """The index of the phone an attachment's manifest entry names (``deviceId``: UDID or CoreDevice identifier;
    else ``deviceName``), or ``None``."""
    if not meta:
        return None
    ident, name = (meta.get("id") or "").casefold(), (meta.get("name") or "").casefold()
    for i, ph in enumerate(phones):
        if ident and ident in ((ph.udid or "").casefold(), ph.identifier.casefold()):
            return i
    named = [i for i, ph in enumerate(phones) if name and ph.name.casefold() == name]
    return named[0] if len(named) == 1 else None


def _about(lines: tuple[str, ...], device: Device) -> str | None:
    """The first error line of an xcodebuild output that names ``device`` (its name, UDID or identifier)."""
    marks = [m.casefold() for m in (device.name, device.udid, device.identifier) if m]
    return commands.first_error_line([ln for ln in lines if any(m in ln.casefold() for m in marks)])


# ------------------------------------------------------------------------------------------------------ the test


@dataclass
class PhoneRun:
    """What ``xcodebuild test`` gave for one phone.

    Attributes:
        device: The phone.
        runs: Its harness runs (results of staged models only, one per model), each with the ``channel`` that
            delivered it (``stdout``, ``attachment``, ``container``).
        exit_code: ``xcodebuild``'s exit status.
        log: The log of the whole output.
        reason: When it has no runs: the first error line about it (or the run's first error line).
        plans: Its compute plans (one per model at most, the first channel's), for
            :mod:`~mobileone_bench.devices.apple.placement`.
    """

    device: Device
    runs: list[dict[str, Any]]
    exit_code: int
    log: Path
    reason: str | None = None
    plans: list[dict[str, Any]] = field(default_factory=list)


def _argv(project: Path, devices: list[Device], team: str, bundle_id: str, bundle: Path) -> list[str]:
    targets = [commands.xcodebuild_destination(d) for d in devices]
    return commands.xcodebuild_argv(project, targets[0] if len(targets) == 1 else targets, team=team,
                                    bundle_id=bundle_id, result_bundle=bundle)


def _stdout(collector: Collector) -> list[dict[str, Any]]:
    return [{**run, "channel": CHANNEL_STDOUT} for run in merge_runs(collector.reports)]


def _first_plans(plans: list[dict[str, Any]], staged: list[str]) -> list[dict[str, Any]]:
    """One compute plan per staged model: the first met."""
    out: dict[str, dict[str, Any]] = {}
    for plan in plans:
        if plan["model"] in staged and plan["model"] not in out:
            out[plan["model"]] = plan
    return list(out.values())


def _export_attachments(work: Path, warn: Warn, where: str) -> list[tuple[Attachment, str, dict[str, Any]]] | None:
    folder = work / "attachments"
    folder.mkdir(exist_ok=True)
    if commands.run(commands.xcresult_attachments_argv(work / "test.xcresult", folder)).returncode != 0:
        warn(f"xcresulttool export attachments failed (it needs Xcode 16 or later); trying {where}")
        return None
    return attachment_documents(folder, warn)


def test_one(project: Path, device: Device, *, work: Path, logs: Path, log_name: str, team: str, bundle_id: str,
             staged: list[str], progress: Progress, warn: Warn) -> PhoneRun:
    """Run ``xcodebuild test`` on one phone and collect its runs (and compute plans) from the three channels.

    Args:
        project: The generated Xcode project.
        device: The phone.
        work: A fresh folder for the result bundle and what is copied back.
        logs: Where the log goes; ``log_name`` is its name (fit for a file name).
        team: Apple Developer team id; bundle_id: the app's bundle id.
        staged: The harness names of the staged models.

    Raises:
        MeasurementError: No model reported (build, signing, install or launch failed), with the first error line.
    """
    argv = _argv(project, [device], team, bundle_id, work / "test.xcresult")
    started = datetime.now(timezone.utc)
    collector = Collector(log_path(logs, log_name), progress, warn)
    result = stream(argv, collector)
    runs = _stdout(collector)
    plans = [{**plan, "channel": CHANNEL_STDOUT} for plan in collector.plans]
    missing = missing_models(runs, staged)
    if missing or len(_first_plans(plans, staged)) < len(staged):
        found = _export_attachments(work, warn, "the app's container")
        if found is not None:
            runs += only_models([doc for _item, kind, doc in found if kind == "run"], missing)
            plans += [doc for _item, kind, doc in found if kind == "plan"]
        missing = missing_models(runs, staged)
    if missing:
        folder = work / "container"
        folder.mkdir(exist_ok=True)
        copied = _container(device, bundle_id, folder, started, warn)
        if copied is not None:
            runs += only_models(copied[0][-1:], missing)
            plans += copied[1]
    if not runs:
        reason = commands.first_error_line(result.tail) or (
            "the test printed no MOBILEONE_BENCH_REPORT line, and neither its result bundle nor the app's container "
            "holds a report of this run")
        raise MeasurementError(f"xcodebuild test (exit {result.returncode}) reported no model: {reason} "
                               f"(log: {collector.log_path})")
    return PhoneRun(device, runs, result.returncode, collector.log_path, plans=_first_plans(plans, staged))


def test_several(project: Path, devices: list[Device], *, work: Path, logs: Path, team: str, bundle_id: str,
                 staged: list[str], progress: Progress, warn: Warn) -> list[PhoneRun]:
    """Run one ``xcodebuild test`` on several phones at once and sort the runs by phone, never raising for one
    phone (one :class:`PhoneRun` per device, in order).

    The three channels of :func:`test_one`, kept apart per phone: a marked line of the shared output goes to the
    only phone whose model identifier and iOS version its report has (else it is left to the other channels); the
    result bundle's attachments go to the phone their ``manifest.json`` entry names (``deviceId``), or by the same
    rule as the marked lines; each phone's own ``Documents/reports`` is copied with ``devicectl`` into a folder of
    its own. A compute plan goes to a phone by the same rules.
    """
    argv = _argv(project, devices, team, bundle_id, work / "test.xcresult")
    started = datetime.now(timezone.utc)
    collector = Collector(log_path(logs, "xcodebuild"), progress, warn)
    result = stream(argv, collector)
    per: list[list[dict[str, Any]]] = [[] for _ in devices]
    per_plans: list[list[dict[str, Any]]] = [[] for _ in devices]
    for run in _stdout(collector):
        owner = _owner(run["device"], devices)
        if owner is not None:
            per[owner].append(run)
    for plan in ({**plan, "channel": CHANNEL_STDOUT} for plan in collector.plans):
        owner = _owner(plan.get("device") or {}, devices)
        if owner is not None:
            per_plans[owner].append(plan)
    plans_missing = any(len(_first_plans(plans, staged)) < len(staged) for plans in per_plans)
    if plans_missing or any(missing_models(runs, staged) for runs in per):
        docs = _export_attachments(work, warn, "the apps' containers")
        found: list[list[dict[str, Any]]] = [[] for _ in devices]
        for item, kind, doc in docs or []:
            owner = _attachment_owner({"id": item.device_id, "name": item.device_name}, devices)
            owner = _owner(doc.get("device") or {}, devices) if owner is None else owner
            if owner is not None:
                (found if kind == "run" else per_plans)[owner].append(doc)
        for i, runs in enumerate(found):
            missing = missing_models(per[i], staged)
            if missing:
                per[i] += only_models(sorted(runs, key=lambda r: r["created"]), missing)
    for i, device in enumerate(devices):
        missing = missing_models(per[i], staged)
        if not missing:
            continue
        folder = work / "containers" / f"{i}-{device.udid or device.identifier}"
        folder.mkdir(parents=True, exist_ok=True)
        copied = _container(device, bundle_id, folder, started, warn)
        if copied is not None:
            per[i] += only_models(copied[0][-1:], missing)
            per_plans[i] += copied[1]
    general = commands.first_error_line(result.tail)
    return [PhoneRun(device, runs, result.returncode, collector.log_path,
                     None if runs else (_about(result.tail, device) or general), _first_plans(plans, staged))
            for runs, plans, device in zip(per, per_plans, devices)]
