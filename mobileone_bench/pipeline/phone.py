"""The Apple executor: models measured on iPhones or on this Mac by the Swift harness, or harness reports imported,
and every record made through :mod:`mobileone_bench.pipeline.recording`.

The device side (:mod:`mobileone_bench.devices.apple`) runs the harness and hands back plain harness runs; this
module knows the order of the steps: skip what is stored, export Core ML (fp16 by default), compile and stage, run
(``xcodebuild test`` on one iPhone or several, the macOS runner, or ``coremltools`` on a Mac without Swift), then
record each result (statistics recomputed from ``samples_ms``, the harness's summary only checked) or a failed record
for a model that produced none. :func:`import_reports` records reports made by hand (``--from-report``) the same way.

Records have the fields of the CPU/GPU path plus ``load_ms``, ``first_run_ms``, ``compute_units``, where the
report came from and the channel that delivered it (``report_channel``), and the placement summary of the model's
Core ML compute plan (:mod:`mobileone_bench.pipeline.phone_placement`, which stores the plan itself as an ``explain``
record). Their ``env_*`` fields describe the phone (or Mac) that ran the model, and the identity's
``machine`` is its model identifier (``iPhone13,2``); a measured iPhone's identity also holds ``device_id``, its UDID
(the CoreDevice identifier when ``devicectl`` gives no UDID), so that two phones of one model never share a key
(imported reports carry no UDID and have none). A result of an existing key is not stored again unless forced.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mobileone_bench.devices.apple import (RUNNER_COREMLTOOLS, RUNNER_IOS_APP, RUNNER_MAC, HarnessWarning, Progress,
                                           Warn, commands, default_warn, destination_names, destinations,
                                           harness_path, mac, placement, report, xcodebuild)
from mobileone_bench.devices.apple._common import CHANNEL_REPORT_FILE
from mobileone_bench.errors import BenchError, ExportError, MeasurementError, UsageError, one_line
from mobileone_bench.pipeline import phone_placement, recording

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.devices.apple import Device
    from mobileone_bench.formats._base import ExportResult
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.records import ResultsStore

__all__ = ["measure", "import_reports", "rows", "phone_summaries", "destination_names", "harness_name",
           "resolve_harness_model", "HarnessWarning", "RUNNER_IOS_APP", "RUNNER_MAC", "RUNNER_COREMLTOOLS"]

def harness_name(spec: ModelSpec) -> str:
    """The name a model has in the harness (its ``.mlmodelc`` stem): ``timm:resnet18`` -> ``timm__resnet18``."""
    from mobileone_bench.formats._base import safe_name

    return safe_name(spec.name)


def resolve_harness_model(model: str) -> ModelSpec | None:
    """The registry's spec for a harness model name (``mobilevit_s`` -> ``mobilevit-s``), or ``None`` if the
    registry does not know it (the record then keeps the harness name)."""
    from mobileone_bench.models import registry

    candidates = [model] + ([model.replace("__", ":", 1)] if "__" in model else [])
    for candidate in candidates:
        try:
            return registry.resolve(candidate)
        except BenchError:
            continue
    return None


# ------------------------------------------------------------------------------------------------------ records


def _env(device: dict[str, Any], harness_version: str | None, phone: Device | None) -> dict[str, Any]:
    """``env_*`` fields: the phone or Mac that ran the model, and a measured iPhone's name and ids."""
    from mobileone_bench._version import __version__

    env = {**report.device_env(device, harness_version), "env_tool": __version__}
    if phone is not None:
        env.update(env_device_name=phone.name, env_device_udid=phone.udid, env_device_identifier=phone.identifier)
    return env


def _input_shape(result: dict[str, Any] | None, spec: ModelSpec | None, job: LatencyJob) -> list[int] | None:
    """NCHW input shape: the one the harness built (an image input ``[H, W]`` -> ``[1, 3, H, W]``), else the
    registry's for the job."""
    from mobileone_bench.models import registry

    for inp in (result or {}).get("inputs") or []:
        return list(inp["shape"]) if inp["kind"] == "multiarray" else [1, 3, *inp["shape"]]
    return list(registry.input_shape(spec, job.input_size)) if spec is not None else None


def _compute_units(job: LatencyJob) -> str:
    """The job's Core ML compute units (``runtime_options``; ``all`` by default), checked."""
    return report.check_compute_units(dict(job.runtime_options).get("compute_units", "all"))


class _Records:
    """The records of one job on one device, made through :mod:`~mobileone_bench.pipeline.recording`.

    Args:
        store: The results store.
        job: The resolved latency job.
        force: Store even when the key exists.
        source: ``report`` (imported) or ``measured`` (this tool drove the harness).
        warn: Where warnings go.
        phone: The iPhone measured (``devicectl``'s description): its UDID (or CoreDevice identifier) goes into
            the identity as ``device_id`` and its name and ids into the ``env_device_*`` fields.
    """

    def __init__(self, store: ResultsStore, job: LatencyJob, *, force: bool, source: str, warn: Warn,
                 phone: Device | None = None):
        self.store = store
        self.job = replace(job, protocol=None)  # the harness has one protocol: it is not part of the identity
        self.force = force
        self.source = source
        self.warn = warn
        self.phone = phone
        self.weights_sha = recording.weights_sha(job.weights)

    def identity(self, name: str, spec: ModelSpec | None, device: dict[str, Any], runner: str, *, warmup: int,
                 runs: int, compute_units: str, input_shape: list[int] | None) -> dict[str, Any]:
        """:func:`~mobileone_bench.pipeline.recording.latency_identity` with what the device decides."""
        unknown = {} if spec is not None else {"model": name, "target": name, "patches": []}
        mine = {"device_id": self.phone.udid or self.phone.identifier} if self.phone is not None else {}
        return recording.latency_identity(
            spec, self.job, self.weights_sha, **unknown, input_shape=input_shape, threads=None, warmup=warmup,
            runs=runs, runtime_options={"compute_units": compute_units, "runner": runner},
            machine=device.get("model_identifier"), versions={"os": report.os_text(device)}, **mine)

    def _planned_identity(self, spec: ModelSpec, device: dict[str, Any], runner: str) -> dict[str, Any]:
        job = self.job
        return self.identity(spec.name, spec, device, runner, warmup=int(job.warmup or 0), runs=int(job.runs or 0),
                             compute_units=_compute_units(job), input_shape=_input_shape(None, spec, job))

    def planned(self, spec: ModelSpec, device: dict[str, Any], runner: str) -> dict[str, Any] | None:
        """The stored successful record of what the job would measure for ``spec``, if any (never when forced)."""
        return recording.stored(self.store, "latency", self._planned_identity(spec, device, runner),
                                force=self.force)

    def result(self, run: dict[str, Any], result: dict[str, Any], *, spec: ModelSpec | None, where: str,
               runner: str, extra: dict[str, Any] | None = None,
               plan: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store one harness result (``ok`` with statistics from its samples, ``error`` as a failed record) with
        the channel that delivered it and the placement of its compute plan (``plan``; its ``explain`` record is
        stored next to it); a result already stored (successfully, or from the same harness run) is returned
        instead."""
        job = self.job
        device = run["device"]
        identity = self.identity(result["model"], spec, device, runner, warmup=result["warmup"],
                                 runs=result["runs"], compute_units=result["compute_units"],
                                 input_shape=_input_shape(result, spec, job))
        existing = recording.stored(self.store, "latency", identity, force=self.force,
                                    same_run=("report_created", run["created"]))
        if existing is not None:
            return existing
        ok = result["status"] == "ok"
        fields: dict[str, Any] = {
            "status": "ok" if ok else "failed",
            "error": None if ok else str(result["error"]),
            "report": job.report,
            "paper_name": spec.paper_name if spec else None,
            "source": self.source,
            "seconds": None,
            "artifact_format": "coreml",
            "artifact_path": None,
            "artifact_sha256": None,
            "harness_model": result["model"],
            "harness_file": result["file"],
            "harness_version": run["harness_version"],
            "compute_units": result["compute_units"],
            "load_ms": result["load_ms"],
            "first_run_ms": result["first_run_ms"],
            "inputs": result["inputs"],
            "clock": result["clock"],
            "runtime_settings": {"runner": runner, "compute_units": result["compute_units"],
                                 "clock": result["clock"], "harness_version": run["harness_version"]},
            "report_created": run["created"],
            "report_tag": run["config"]["tag"],
            "report_file": where,
            "report_channel": run.get("channel", CHANNEL_REPORT_FILE),
            **report.condition_fields(result, device),
            **phone_placement.placement_fields(plan),
            **(extra or {}),
        }
        for message in report.throttle_messages(where, result, device):
            self.warn(message)
        samples = None
        if ok:
            samples = [float(x) for x in result["samples_ms"]]
            stats = recording.summary_fields(samples, str(job.report))
            mismatches = report.summary_mismatches(result["summary"], stats) if result["summary"] else []
            fields.update(stats, summary_check="; ".join(mismatches) or ("ok" if result["summary"] else None))
            if mismatches:
                self.warn(f"{where}: {result['model']}: the harness summary disagrees with its samples "
                          f"({'; '.join(mismatches)}); the statistics are recomputed from samples_ms")
        stored = recording.append_latency(self.store, identity, fields,
                                          _env(device, run["harness_version"], self.phone), samples,
                                          report=str(job.report))
        phone_placement.store_plan(self.store, stored, plan, force=self.force)
        return stored

    def failure(self, spec: ModelSpec, device: dict[str, Any], runner: str, message: str,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store a failed record for a model that produced no harness result (export, compile, lost run)."""
        job = self.job
        fields = {"status": "failed", "error": message, "report": job.report, "paper_name": spec.paper_name,
                  "source": self.source, "seconds": None, "artifact_format": "coreml", "artifact_path": None,
                  "artifact_sha256": None, "harness_model": harness_name(spec),
                  "compute_units": _compute_units(job), "runtime_settings": {"runner": runner}, **(extra or {})}
        return recording.append_latency(self.store, self._planned_identity(spec, device, runner), fields,
                                        _env(device, None, self.phone))


# ------------------------------------------------------------------------------------------------------ import


def import_reports(paths: list[str], store: ResultsStore, *, job: LatencyJob, models: list[ModelSpec] | None = None,
                   force: bool = False, on_warning: Warn | None = None) -> list[dict[str, Any]]:
    """Import harness reports (JSON report files, or logs holding marked lines) into the results store.

    Every file is read and validated before anything is stored, so a malformed file stores nothing. Each result's
    ``model`` becomes the registry's name when the registry knows it. A result with ``status: "error"`` is stored
    as a failed record. Statistics are recomputed from ``samples_ms`` (the report's summary is only cross-checked),
    and ``latency_ms`` is the job's ``report`` statistic (the minimum by default, as the paper). A result whose key is
    already stored (successfully, or from the same harness run) is not stored again unless ``force``; its stored
    record is returned in its place.

    Args:
        paths: Report files or logs.
        store: The results store.
        job: The latency job (``device`` ``iphone`` or ``mac``; its precision, weights and input size describe the
            artifacts the reports measured; warmup, runs and compute units come from the reports).
        models: Import only the results of these models (all when ``None``).
        force: Store results even when their key is already stored.
        on_warning: Receives warnings (default: :class:`HarnessWarning` through :mod:`warnings`).

    Returns:
        The records, in report order.

    Raises:
        ReportError: A file that is unreadable, not JSON, breaks the schema, or holds no report.
        UsageError: A report from another kind of device, or none of ``models`` in the reports.
    """
    job = job.resolved()
    warn = on_warning or default_warn
    runs, plans = placement.read_files(paths, CHANNEL_REPORT_FILE)
    checked = [(where, run, report.runner_for(run["device"], job.device, where)) for where, run in runs]
    wanted = {s.name for s in models} if models is not None else None
    records = _Records(store, job, force=force, source="report", warn=warn)
    specs: dict[str, ModelSpec | None] = {}
    found: list[str] = []
    out = []
    for where, run, runner in checked:
        for result in run["results"]:
            if result["model"] not in specs:
                specs[result["model"]] = resolve_harness_model(result["model"])
            spec = specs[result["model"]]
            name = spec.name if spec else result["model"]
            found.append(name)
            if wanted is None or name in wanted:
                plan = plans.get((result["model"], run["created"])) or plans.get((result["model"], None))
                out.append(records.result(run, result, spec=spec, where=where, runner=runner, plan=plan))
    if wanted is not None:
        missing = sorted(wanted - set(found))
        if not out:
            raise UsageError(f"the reports hold no result for {', '.join(missing)} (they hold: "
                             f"{', '.join(dict.fromkeys(found)) or 'nothing'})")
        if missing:
            warn(f"no result for {', '.join(missing)} in the reports")
    return out


# ------------------------------------------------------------------------------------------------------ measure


def _export(spec: ModelSpec, job: LatencyJob, force: bool) -> ExportResult:
    """Build the inference-time model and export (or reuse) its Core ML package."""
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one
    from mobileone_bench.pipeline.preparing import prepare

    if not spec.available:
        raise BenchError(f"unavailable: {spec.reason}")
    prepared = prepare(spec, weights=job.weights, input_size=job.input_size, reparameterize=job.reparameterize,
                       check=job.reparameterize)
    result = export_one(prepared, FORMATS["coreml"], Path(job.models_dir), ExportOptions(precision=job.precision),
                        force=force)
    if not result.ok:
        raise ExportError(f"coreml export: {result.error or result.status}")
    return result


def _artifact_fields(export: Any) -> dict[str, Any]:
    """The ``artifact_*`` fields of a record, from an ``ExportResult``."""
    return {"artifact_format": "coreml", "artifact_path": export.path,
            "artifact_sha256": (export.manifest or {}).get("sha256")}


def _logs(store: ResultsStore) -> Path:
    """``<results>/logs``: the whole output of every harness run, kept for diagnosis."""
    return Path(store.root) / "logs"


def _log_name(text: str) -> str:
    from mobileone_bench.formats._base import safe_name

    return safe_name(text)


def measure(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *,
            destination: str | Sequence[str] | None = None, sequential: bool = False, force: bool = False,
            harness_dir: str | Path | None = None, team: str | None = None, bundle_id: str | None = None,
            on_progress: Progress | None = None, on_warning: Warn | None = None) -> list[dict[str, Any]]:
    """Measure models on the connected iPhone(s) (``job.device == "iphone"``) or on this Mac (``"mac"``).

    A model already measured the same way on the same device is not measured again unless ``force``. A model that
    fails (export, compile, load on the device, or no result at all) is stored as a failed record; the others go on.

    Several iPhones (``destination`` a list of more than one, or ``"all"``): the models are exported and compiled
    once, then measured on every phone by one ``xcodebuild test`` with one ``-destination`` per phone (Xcode runs
    them concurrently), or by one ``xcodebuild test`` per phone, one after the other (``sequential``). Each phone
    gets its own records (``device_id`` in the identity); a phone that is not connected, that Xcode could not
    build for or install on, or whose reports are missing gets failed records, and the other phones' records are
    stored.

    Args:
        specs: The models.
        job: The latency job (warmup, runs, precision, ``compute_units`` in ``runtime_options``...).
        store: The results store.
        destination: iPhone: device name, UDID or CoreDevice identifier (default: the only connected one); a list
            of them; or ``"all"``: every connected, paired and available iOS device.
        sequential: iPhone, several devices: one ``xcodebuild test`` per device, one after the other.
        force: Measure (and re-export) even if stored.
        harness_dir: The ``ios_harness`` folder (default: the checkout's).
        team: iPhone: Apple Developer team id used to sign the app.
        bundle_id: iPhone: app bundle id (default ``com.example.mobileone-bench.<team>``).
        on_progress: Receives ``(status text, whether a model just finished)``.
        on_warning: Receives warnings (default: :class:`HarnessWarning` through :mod:`warnings`).

    Returns:
        One record per spec, in order; with several iPhones, one per spec for each phone (phone after phone, in
        the order named or listed by ``devicectl``).

    Raises:
        DeviceUnavailableError: Not macOS, Xcode/XcodeGen missing, no such device, or none of them connected.
        UsageError: No team for the iPhone, several devices and no ``destination``, ``all`` beside other
            destinations, bad compute units.
        MeasurementError: One iPhone: the harness ran but reported nothing (build, signing or install failure).
    """
    job = job.resolved()
    progress = on_progress or (lambda _text, _done: None)
    warn = on_warning or default_warn
    if job.device == "iphone":
        return _measure_iphone(specs, job, store, destination=destination, sequential=sequential, force=force,
                               harness_dir=harness_dir, team=team, bundle_id=bundle_id, progress=progress, warn=warn)
    if sequential:
        raise UsageError("--sequential applies to --device iphone with several --destination")
    if job.device == "mac":
        return _measure_mac(specs, job, store, force=force, harness_dir=harness_dir, progress=progress, warn=warn)
    raise UsageError(f"apple.measure runs on iphone or mac, not {job.device}")


def phone_summaries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per iPhone of measured records, in the order met: ``phone`` (its name), ``device_id``,
    ``machine``, ``os``, ``ok``, ``failed``, ``records``. Records without a phone (imported, Mac) are left out."""
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        ident = rec.get("device_id")
        if not ident:
            continue
        row = out.setdefault(str(ident), {"phone": rec.get("env_device_name"), "device_id": ident,
                                          "machine": rec.get("machine"), "os": rec.get("env_os"), "ok": 0,
                                          "failed": 0, "records": 0})
        row["records"] += 1
        row["ok" if rec.get("status") == "ok" else "failed"] += 1
    return list(out.values())


def rows(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, reports: Sequence[str],
         destination: str | Sequence[str] | None, force: bool) -> list[dict[str, Any]]:
    """Rows like :func:`mobileone_bench.pipeline.run_models`' for the iPhone/Mac (``run``/``ablate``): profiles
    here, latencies from the Core ML harness (imported from ``reports`` when given, else measured)."""
    from mobileone_bench.pipeline.preparing import profile_record

    if reports:
        records = import_reports(list(reports), store, job=job, models=specs, force=force)
    else:
        records = measure(specs, job, store, destination=destination, force=force)
    by_model = {r.get("model"): r for r in records}
    out = []
    for spec in specs:
        prof, _ = profile_record(spec, store)
        lat = by_model.get(spec.name) or {"status": "failed", "error": "not in the harness report"}
        out.append({"model": spec.name, "profile": prof, "latency": lat,
                    "skipped": {"profile": True, "latency": False}})
    return out


@dataclass
class _Target:
    """One device of a run (an iPhone, or this Mac): its records, the device fields of records made before the
    harness reported, its runner, and its records so far (by model)."""

    records: _Records
    info: dict[str, Any]
    runner: str
    tag: str = ""
    device: Any = None  # an iPhone: devicectl's description (a Device)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fail(self, spec: ModelSpec, message: str, export: Any = None) -> None:
        """Store a failed record for ``spec``."""
        self.done[spec.name] = self.records.failure(spec, self.info, self.runner, message,
                                                    _artifact_fields(export) if export is not None else None)

    def record(self, runs: list[dict[str, Any]], exports: dict[str, tuple[ModelSpec, Any]], where: str,
               plans: list[dict[str, Any]] | None = None) -> None:
        """Store the results of the staged models (by their harness name), each with its compute plan."""
        by_model = phone_placement.plans_by_model(plans or [])
        for run in runs:
            for result in run["results"]:
                if result["model"] in exports:
                    spec, export = exports[result["model"]]
                    plan = by_model.get(result["model"])
                    if plan is not None and plan.get("status") == "ok":  # the convolutions' kinds, from the package
                        plan = {**plan, "conv_kinds": placement.conv_kinds(export.path)}
                    self.done[spec.name] = self.records.result(run, result, spec=spec, where=where,
                                                               runner=self.runner, extra=_artifact_fields(export),
                                                               plan=plan)


def _pending(specs: list[ModelSpec], targets: list[_Target], progress: Progress) -> dict[str, tuple[ModelSpec, Any]]:
    """Each target's stored records into its ``done``; the models some target still needs, exported once (by
    harness name); a failed export is a failed record of every target that needs the model."""
    exports: dict[str, tuple[ModelSpec, Any]] = {}
    for spec in specs:
        for target in targets:
            stored = target.records.planned(spec, target.info, target.runner)
            if stored is not None:
                target.done[spec.name] = stored
                progress(f"{target.tag}{spec.name}: already measured", True)
        needing = [target for target in targets if spec.name not in target.done]
        if not needing:
            continue
        job = needing[0].records.job
        progress(f"{spec.name}: export Core ML {job.precision}", False)
        try:
            exports[harness_name(spec)] = (spec, _export(spec, job, needing[0].records.force))
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
            for target in needing:
                target.fail(spec, f"export: {one_line(exc)}")
                progress(f"{target.tag}{spec.name}: export failed", True)
    return exports


def _measure_mac(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *, force: bool,
                 harness_dir: str | Path | None, progress: Progress, warn: Warn) -> list[dict[str, Any]]:
    mac.require_macos()
    harness = harness_path(harness_dir, "Package.swift")
    runner = mac.choose_runner(harness)
    target = _Target(_Records(store, job, force=force, source="measured", warn=warn), mac.mac_device(), runner)
    exports = _pending(specs, [target], progress)
    units = _compute_units(job)
    if exports and runner == RUNNER_MAC:
        assert harness is not None
        runs, log, plans = mac.run_harness(harness, {name: Path(export.path) for name, (_spec, export) in exports.items()},
                                    warmup=int(job.warmup or 0), runs=int(job.runs or 0), compute_units=units,
                                    logs=_logs(store), progress=progress, warn=warn)
        target.record(runs, exports, str(log), plans)
    else:
        for name, (spec, export) in exports.items():
            progress(f"{spec.name}: coremltools predict, {job.warmup}+{job.runs} runs", False)
            try:
                run = mac.coremltools_run(name, Path(export.path), export.manifest or {}, warmup=int(job.warmup or 0),
                                          runs=int(job.runs or 0), compute_units=units, device=target.info)
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
                target.fail(spec, f"coremltools: {one_line(exc)}", export)
            else:
                target.record([run], exports, "coremltools")
            progress(f"{spec.name}: done", True)
    for spec in specs:
        if spec.name not in target.done:
            target.fail(spec, "no result from the harness", exports[harness_name(spec)][1])
            progress(f"{spec.name}: no result", True)
    return [target.done[spec.name] for spec in specs]


# ------------------------------------------------------------------------------------------------------ iPhone


def _measure_iphone(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *,
                    destination: str | Sequence[str] | None, sequential: bool, force: bool,
                    harness_dir: str | Path | None, team: str | None, bundle_id: str | None, progress: Progress,
                    warn: Warn) -> list[dict[str, Any]]:
    names = destination_names(destination)
    xcodebuild.require_xcode()
    if not team:
        raise UsageError("--team TEAM_ID is needed to sign the app for the iPhone (your Apple Developer team id: "
                         "Xcode > Settings > Accounts; or set MOBILEONE_BENCH_TEAM)")
    harness = harness_path(harness_dir, "project.yml")
    if harness is None:
        raise UsageError("the ios_harness folder of the mobileone-bench repository is needed; pass --harness DIR")
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        progress("looking for the iPhone (xcrun devicectl)", False)
        chosen = destinations.choose(tmp, names)
        several = len(chosen) > 1
        phones = [_Target(_Records(store, job, force=force, source="measured", warn=warn, phone=d),
                          destinations.reported_device(d), RUNNER_IOS_APP, f"{d.name}: " if several else "", d)
                  for d in chosen]
        for phone in phones:
            if not phone.device.ready:
                for spec in specs:
                    stored = phone.records.planned(spec, phone.info, phone.runner)
                    if stored is not None:  # measured before: its record stands
                        phone.done[spec.name] = stored
                    else:
                        phone.fail(spec, str(phone.device.problem()))
                progress(f"{phone.tag}not ready", False)
        live = [phone for phone in phones if phone.device.ready]
        exports = _pending(specs, live, progress)
        compiled = _compile(exports, tmp, live, progress)
        if compiled:
            from mobileone_bench._version import __version__

            config = report.make_run_config(warmup=int(job.warmup or 0), runs=int(job.runs or 0),
                                            compute_units=_compute_units(job), models=list(compiled),
                                            tag=f"mobileone-bench {__version__}")
            project = xcodebuild.prepare_project(harness, compiled, config, progress)
            app_id = bundle_id or f"com.example.mobileone-bench.{team.lower()}"
            staged = list(compiled)
            # only the phones that still need a model run the test
            todo = [ph for ph in live if any(exports[n][0].name not in ph.done for n in staged)]
            if len(todo) > 1 and not sequential:
                progress(f"building and installing on {', '.join(ph.device.name for ph in todo)}", False)
                outcomes = xcodebuild.test_several(project, [ph.device for ph in todo], work=tmp, logs=_logs(store),
                                                   team=team, bundle_id=app_id, staged=staged, progress=progress,
                                                   warn=warn)
                for phone, outcome in zip(todo, outcomes):
                    _finish_phone(phone, outcome, exports, staged, progress)
            else:
                for i, phone in enumerate(todo):
                    progress(f"building and installing on {phone.device.name}", False)
                    work = tmp / f"phone-{i}" if several else tmp
                    work.mkdir(exist_ok=True)
                    ident = phone.device.udid or phone.device.identifier
                    try:
                        outcome = xcodebuild.test_one(
                            project, phone.device, work=work, logs=_logs(store),
                            log_name=_log_name(f"xcodebuild-{ident}" if several else "xcodebuild"), team=team,
                            bundle_id=app_id, staged=staged, progress=progress, warn=warn)
                    except MeasurementError as exc:
                        if not several:
                            raise
                        for name in staged:
                            spec, export = exports[name]
                            if spec.name not in phone.done:
                                phone.fail(spec, f"on {phone.device.label()}: {exc}", export)
                        progress(f"{phone.tag}no model reported", True)
                        continue
                    _finish_phone(phone, outcome, exports, staged, progress)
    return [phone.done[spec.name] for phone in phones for spec in specs]


def _compile(exports: dict[str, tuple[ModelSpec, Any]], tmp: Path, phones: list[_Target],
             progress: Progress) -> dict[str, Path]:
    """``xcrun coremlcompiler compile`` each package; returns harness name -> ``.mlmodelc`` (a failure is a failed
    record of every phone that needs the model)."""
    compiled: dict[str, Path] = {}
    for name, (spec, export) in exports.items():
        progress(f"{spec.name}: xcrun coremlcompiler compile", False)
        bundle, reason = xcodebuild.compile_package(Path(export.path), tmp / "compiled" / name)
        if bundle is not None:
            compiled[name] = bundle
            continue
        for phone in phones:
            if spec.name not in phone.done:
                phone.fail(spec, f"compile: {reason}", export)
                progress(f"{phone.tag}{spec.name}: compile failed", True)
    return compiled


def _finish_phone(phone: _Target, outcome: xcodebuild.PhoneRun, exports: dict[str, tuple[ModelSpec, Any]],
                  staged: list[str], progress: Progress) -> None:
    """Store a phone's results, and a failed record for each staged model it has no result for."""
    phone.record(outcome.runs, exports, str(outcome.log), outcome.plans)
    for name in staged:
        spec, export = exports[name]
        if spec.name not in phone.done:
            where = f" on {phone.device.label()}" if phone.tag else ""
            why = f": {outcome.reason}" if outcome.reason else ""
            phone.fail(spec, f"no result from the harness{where} (xcodebuild exit {outcome.exit_code}{why}; log: "
                             f"{outcome.log}; not in the result bundle's attachments nor in the app's "
                             f"{commands.APP_REPORTS_DIR} either)", export)
            progress(f"{phone.tag}{spec.name}: no result", True)
