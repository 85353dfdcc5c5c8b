"""iPhone and Mac latency: the Swift harness in ``ios_harness/`` measures; this module drives it and turns its
reports into records.

Section 3.5 of the MobileOne paper: load the model, preallocate the input, run once, then time 1000 runs and report
the minimum, each run a full round trip of ``MLModel.prediction(from:)``. The harness does exactly that and keeps
every sample; here the samples go through :func:`mobileone_bench.stats.summarize` like any CPU or GPU measurement.

Three ways in, one way to records:

* ``latency --device iphone|mac --from-report FILE``: :func:`import_reports` reads reports made by hand (the app's
  share button, the macOS runner's ``--out``) or any log holding ``MOBILEONE_BENCH_REPORT {json}`` lines.
* ``latency --device iphone`` on a Mac with Xcode and XcodeGen: :func:`measure` exports Core ML (fp16 by default),
  compiles each ``.mlpackage`` with ``xcrun coremlcompiler``, stages the ``.mlmodelc`` folders and a
  ``run_config.json`` into the harness, generates the Xcode project, runs the headless test with
  ``xcodebuild test`` on the connected iPhone and imports the marked lines of its output.
* ``latency --device mac``: the harness's macOS runner (``swift run -c release mobileone-harness``) on the exported
  packages, or, without a Swift toolchain, ``coremltools``' own prediction timed by
  :func:`mobileone_bench.devices._protocol.time_runs` (``runtime_options.runner`` says which).

Records have the fields of the CPU/GPU path (``status``, ``error``, ``report``, ``latency_ms``, ``n``, ``min_ms``...,
``noise_warning``, ``runtime_settings``, ``clock``, ``artifact_*``, ``source``) plus ``load_ms``, ``first_run_ms``,
``compute_units`` and where the report came from. Their ``env_*`` fields describe the phone (or Mac) that ran the
model, and the identity's ``machine`` is its model identifier (``iPhone13,2``), so that phone and host measurements
never share a key; a measured iPhone's identity also holds ``device_id``, its UDID (the CoreDevice identifier when
``devicectl`` gives no UDID), so that two phones of the same model never share one either (imported reports carry no
UDID and have none). Several iPhones can be measured in one run (``--destination`` given more than once, or
``all``): one ``xcodebuild test`` with a ``-destination`` per phone, run concurrently by Xcode, or one after the other
(``sequential``); every phone gets its own records, and a phone that fails gets failed records. A result of an
existing key is not stored again unless forced: importing a file twice adds nothing.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mobileone_bench.devices import _harness
from mobileone_bench.errors import (
    BenchError,
    DeviceUnavailableError,
    ExportError,
    MeasurementError,
    MissingDependencyError,
    ReportError,
    UsageError,
)

if TYPE_CHECKING:  # pragma: no cover - the registry imports the families (torch)
    from mobileone_bench.models.registry import ModelSpec

__all__ = [
    "import_reports",
    "measure",
    "destinations",
    "phone_summaries",
    "HarnessWarning",
    "harness_name",
    "resolve_harness_model",
    "default_harness_dir",
    "RUNNER_IOS_APP",
    "RUNNER_MAC",
    "RUNNER_COREMLTOOLS",
]

RUNNER_IOS_APP = "ios-app"
RUNNER_MAC = "mac-runner"
RUNNER_COREMLTOOLS = "coremltools"

Warn = Callable[[str], None]
Progress = Callable[[str, bool], None]

_CT_UNITS = {"all": "ALL", "cpu_only": "CPU_ONLY", "cpu_and_gpu": "CPU_AND_GPU", "cpu_and_ne": "CPU_AND_NE"}
_BY_HAND = ("run the app by hand instead (ios_harness/README.md: build ios_harness/ in Xcode on any Mac, run it on "
            "the iPhone, tap Run all, export the report with the share button) and import it with "
            "`mobileone-bench latency --device iphone --from-report REPORT.json`")


class HarnessWarning(UserWarning):
    """Something about a harness report worth a warning (a summary that disagrees with its samples, a requested
    model missing from the reports, a malformed line in a log, a model that ran at a thermal state above nominal or
    in Low Power Mode)."""


def _default_warn(message: str) -> None:
    warnings.warn(message, HarnessWarning, stacklevel=3)


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


def default_harness_dir() -> Path | None:
    """``ios_harness/`` of the checkout this package runs from, or ``None`` (e.g. a wheel install)."""
    candidate = Path(__file__).resolve().parents[2] / "ios_harness"
    return candidate if (candidate / "Package.swift").is_file() else None


# ------------------------------------------------------------------------------------------------------ records


def _os_text(device: dict[str, Any]) -> str:
    """``iOS 17.5.1``."""
    return f"{device.get('os_name')} {device.get('os_version')}"


def _env(device: dict[str, Any], harness_version: str | None) -> dict[str, Any]:
    """``env_*`` fields: the phone or Mac that ran the model (as the harness saw it), not the host."""
    from mobileone_bench._version import __version__

    return {
        "env_machine": device.get("model_identifier"),
        "env_os": _os_text(device),
        "env_thermal_state": device.get("thermal_state"),
        "env_low_power_mode": device.get("low_power_mode"),
        "env_cores_logical": device.get("processor_count"),
        "env_memory_bytes": device.get("physical_memory_bytes"),
        "env_harness": harness_version,
        "env_tool": __version__,
    }


def _input_shape(result: dict[str, Any] | None, spec: ModelSpec | None, job: Any) -> list[int] | None:
    """NCHW input shape: the one the harness built (an image input ``[H, W]`` -> ``[1, 3, H, W]``), else the
    registry's for the job."""
    from mobileone_bench.models import registry

    for inp in (result or {}).get("inputs") or []:
        return list(inp["shape"]) if inp["kind"] == "multiarray" else [1, 3, *inp["shape"]]
    return list(registry.input_shape(spec, job.input_size)) if spec is not None else None


def _summary_mismatches(summary: dict[str, Any], stats: Any) -> list[str]:
    """Where the harness's display summary disagrees with statistics recomputed from its samples, beyond rounding
    (the harness's ``std`` has ddof = 0, :func:`~mobileone_bench.stats.summarize`'s ddof = 1)."""
    population_std = stats.std * math.sqrt((stats.n - 1) / stats.n) if stats.n > 1 else 0.0
    ours = {"n": stats.n, "min": stats.min, "median": stats.median, "mean": stats.mean, "std": population_std,
            "p90": stats.p90, "p99": stats.p99, "trimmed_mean": stats.trimmed_mean}
    return [f"{k} {summary[k]:.6g} vs {v:.6g}" for k, v in ours.items()
            if not math.isclose(summary[k], v, rel_tol=1e-6, abs_tol=1e-9)]


class _Recorder:
    """Turns harness results into stored records for one job, skipping keys already stored.

    Args:
        store: The results store.
        job: The resolved latency job.
        force: Store even when the key exists.
        source: ``report`` (imported) or ``measured`` (this tool drove the harness).
        warn: Where warnings go.
        phone: The iPhone measured (``devicectl``'s description): its UDID (or CoreDevice identifier) goes into
            the identity as ``device_id`` and its name and ids into the ``env_device_*`` fields.
    """

    def __init__(self, store: Any, job: Any, *, force: bool, source: str, warn: Warn,
                 phone: _harness.Device | None = None):
        from mobileone_bench.models.checkpoints import file_sha256

        self.phone = phone
        self.store = store
        self.job = job
        self.force = force
        self.source = source
        self.warn = warn
        self.weights_sha = file_sha256(job.weights) if job.weights else None
        self._records = store.records("latency")

    def identity(self, name: str, spec: ModelSpec | None, device: dict[str, Any], runner: str, *, warmup: int,
                 runs: int, compute_units: str, input_shape: list[int] | None) -> dict[str, Any]:
        """The identity fields of :func:`mobileone_bench.pipeline.latency_identity`, for the phone."""
        job = self.job
        return {
            "model": spec.name if spec else name,
            "target": spec.target if spec else name,
            "patches": list(spec.patches) if spec else [],
            "weights_sha256": self.weights_sha,
            "input_shape": input_shape,
            "reparameterized": job.reparameterize,
            "device": job.device,
            "runtime": job.runtime,
            "precision": job.precision,
            "threads": None,
            "warmup": warmup,
            "runs": runs,
            "runtime_options": {"compute_units": compute_units, "runner": runner},
            "machine": device.get("model_identifier"),
            "versions": {"os": _os_text(device)},
            **({"device_id": self.phone.udid or self.phone.identifier} if self.phone is not None else {}),
        }

    def planned(self, spec: ModelSpec, device: dict[str, Any], runner: str) -> dict[str, Any] | None:
        """The stored successful record of what the job would measure for ``spec``, if any (never when forced)."""
        from mobileone_bench.store.records import record_key

        job = self.job
        identity = self.identity(spec.name, spec, device, runner, warmup=job.warmup, runs=job.runs,
                                 compute_units=_compute_units(job), input_shape=_input_shape(None, spec, job))
        return self._stored(record_key(identity), None)

    def _stored(self, key: str, created: str | None) -> dict[str, Any] | None:
        """A successful record of ``key``, or one from the same harness run (``created``); ``None`` when forced."""
        if self.force:
            return None
        same = [r for r in self._records if r.get("key") == key]
        ok = [r for r in same if r.get("status") == "ok"]
        if ok:
            return ok[-1]
        run = [r for r in same if created is not None and r.get("report_created") == created]
        return run[-1] if run else None

    def _append(self, identity: dict[str, Any], fields: dict[str, Any], env: dict[str, Any],
                samples: list[float] | None) -> dict[str, Any]:
        from mobileone_bench.store.records import new_record

        if self.phone is not None:
            env = {**env, "env_device_name": self.phone.name, "env_device_udid": self.phone.udid,
                   "env_device_identifier": self.phone.identifier}
        stored = self.store.append(new_record("latency", identity, fields, env), samples)
        self._records.append(stored)
        return stored

    def result(self, run: dict[str, Any], result: dict[str, Any], *, spec: ModelSpec | None, where: str,
               runner: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store one harness result (``ok`` with statistics from its samples, ``error`` as a failed record)."""
        from mobileone_bench.store.records import record_key
        from mobileone_bench.stats import interval_ci, noise_warning, summarize

        job = self.job
        device = run["device"]
        identity = self.identity(result["model"], spec, device, runner, warmup=result["warmup"],
                                 runs=result["runs"], compute_units=result["compute_units"],
                                 input_shape=_input_shape(result, spec, job))
        existing = self._stored(record_key(identity), run["created"])
        if existing is not None:
            return existing
        ok = result["status"] == "ok"
        fields: dict[str, Any] = {
            "status": "ok" if ok else "failed",
            "error": None if ok else str(result["error"])[:500],
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
            **_condition_fields(result, device),
            **(extra or {}),
        }
        _warn_if_throttled(self.warn, where, result, device)
        samples = None
        if ok:
            samples = [float(x) for x in result["samples_ms"]]
            stats = summarize(samples)
            mismatches = _summary_mismatches(result["summary"], stats) if result["summary"] else []
            fields.update(stats.as_dict(), latency_ms=stats.value(str(job.report)),
                          noise_warning=noise_warning(stats), **interval_ci(samples, str(job.report)),
                          summary_check="; ".join(mismatches) or ("ok" if result["summary"] else None))
            if mismatches:
                self.warn(f"{where}: {result['model']}: the harness summary disagrees with its samples "
                          f"({'; '.join(mismatches)}); the statistics are recomputed from samples_ms")
        return self._append(identity, fields, _env(device, run["harness_version"]), samples)

    def failure(self, spec: ModelSpec, device: dict[str, Any], runner: str, message: str,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store a failed record for a model that produced no harness result (export, compile, lost run)."""
        job = self.job
        identity = self.identity(spec.name, spec, device, runner, warmup=job.warmup, runs=job.runs,
                                 compute_units=_compute_units(job), input_shape=_input_shape(None, spec, job))
        fields = {"status": "failed", "error": message[:500], "report": job.report, "paper_name": spec.paper_name,
                  "source": self.source, "seconds": None, "artifact_format": "coreml", "artifact_path": None,
                  "artifact_sha256": None, "harness_model": harness_name(spec),
                  "compute_units": _compute_units(job), "runtime_settings": {"runner": runner}, **(extra or {})}
        return self._append(identity, fields, _env(device, None), None)


def _condition_fields(result: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
    """Record fields for the device conditions of a result (per model with harness 0.2, else the session's) and
    the predictions before its first sample (``runs_before_timing``; ``None`` for harness 0.1)."""
    conditions = _harness.result_conditions(result, device)
    return {
        "runs_before_timing": result.get("runs_before_timing"),
        "thermal_state_before": conditions["before"]["thermal_state"],
        "thermal_state_after": conditions["after"]["thermal_state"],
        "low_power_mode_before": conditions["before"]["low_power_mode"],
        "low_power_mode_after": conditions["after"]["low_power_mode"],
        "throttle_warning": bool(conditions["throttled"]) or conditions["low_power_mode"],
    }


def _warn_if_throttled(warn: Warn, where: str, result: dict[str, Any], device: dict[str, Any]) -> None:
    """Warn when a model ran at a thermal state above nominal, or with Low Power Mode on."""
    conditions = _harness.result_conditions(result, device)
    seen = "per model" if isinstance(result.get("conditions_before"), dict) else "for the session"
    if conditions["throttled"]:
        warn(f"{where}: {result['model']}: ran at thermal state {' then '.join(conditions['throttled'])} "
             f"(before the timed runs: {conditions['before']['thermal_state']}, after: "
             f"{conditions['after']['thermal_state']}, read {seen}); the device may have throttled, so its "
             f"latencies may be slower than the device can be: let it cool down and measure again")
    if conditions["low_power_mode"]:
        warn(f"{where}: {result['model']}: ran with Low Power Mode on (read {seen}), which throttles the CPU and GPU")


def _compute_units(job: Any) -> str:
    """The job's Core ML compute units (``runtime_options``; ``all`` by default), checked."""
    units = dict(job.runtime_options).get("compute_units", "all")
    if units not in _harness.COMPUTE_UNITS:
        raise UsageError(f"unknown compute units {units!r}; choose from {', '.join(_harness.COMPUTE_UNITS)}")
    return str(units)


def _runner_for(device: dict[str, Any], job_device: str, where: str) -> str:
    """The runner a report's device implies, after checking it matches ``--device``."""
    ident = str(device["model_identifier"])
    os_name = device["os_name"]
    if ident.startswith("simulator:"):
        raise UsageError(f"{where}: made in the iOS Simulator ({ident}); Simulator timings are not device latency")
    if job_device == "iphone" and os_name != "iOS":
        hint = "; import it with --device mac" if os_name == "macOS" else ""
        raise UsageError(f"{where}: made on {os_name} ({ident}), not on an iPhone{hint}")
    if job_device == "mac" and os_name != "macOS":
        hint = "; import it with --device iphone" if os_name == "iOS" else ""
        raise UsageError(f"{where}: made on {os_name} ({ident}), not on a Mac{hint}")
    return RUNNER_IOS_APP if job_device == "iphone" else RUNNER_MAC


# ------------------------------------------------------------------------------------------------------ import


def import_reports(paths: list[str], store: Any, *, job: Any, models: list[ModelSpec] | None = None,
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
        store: The :class:`~mobileone_bench.store.records.ResultsStore`.
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
    warn = on_warning or _default_warn
    runs = [(str(path), run) for path in paths for run in _harness.read_reports(path)]
    checked = [(where, run, _runner_for(run["device"], job.device, where)) for where, run in runs]
    wanted = {s.name for s in models} if models is not None else None
    recorder = _Recorder(store, job, force=force, source="report", warn=warn)
    specs: dict[str, ModelSpec | None] = {}
    found: list[str] = []
    records = []
    for where, run, runner in checked:
        for result in run["results"]:
            if result["model"] not in specs:
                specs[result["model"]] = resolve_harness_model(result["model"])
            spec = specs[result["model"]]
            name = spec.name if spec else result["model"]
            found.append(name)
            if wanted is None or name in wanted:
                records.append(recorder.result(run, result, spec=spec, where=where, runner=runner))
    if wanted is not None:
        missing = sorted(wanted - set(found))
        if not records:
            raise UsageError(f"the reports hold no result for {', '.join(missing)} (they hold: "
                             f"{', '.join(dict.fromkeys(found)) or 'nothing'})")
        if missing:
            warn(f"no result for {', '.join(missing)} in the reports")
    return records


# ------------------------------------------------------------------------------------------------------ measure


def _require_xcode() -> None:
    """Raise :class:`DeviceUnavailableError` unless this is macOS with Xcode and XcodeGen."""
    if sys.platform != "darwin":
        raise DeviceUnavailableError(
            f"--device iphone needs a Mac (macOS with Xcode, XcodeGen and a connected iPhone in Developer Mode) and "
            f"this machine runs {sys.platform}; {_BY_HAND}")
    missing = [tool for tool in ("xcrun", "xcodebuild", "xcodegen") if shutil.which(tool) is None]
    if missing:
        raise DeviceUnavailableError(
            f"--device iphone needs {', '.join(missing)} on this Mac (Xcode from the App Store, selected with "
            f"xcode-select; XcodeGen with `brew install xcodegen`); or {_BY_HAND}")


def _require_macos() -> None:
    """Raise :class:`DeviceUnavailableError` unless this is macOS."""
    if sys.platform != "darwin":
        raise DeviceUnavailableError(
            f"--device mac measures Core ML on this Mac and needs macOS (this machine runs {sys.platform}); on a Mac, "
            f"run `swift run -c release mobileone-harness --models DIR --out report.json` in ios_harness/ and "
            f"import the report with `mobileone-bench latency --device mac --from-report report.json`")


def _harness_path(harness_dir: str | Path | None, marker: str) -> Path | None:
    """The harness folder (``--harness`` or the checkout's) if it holds ``marker``, else ``None``."""
    folder = Path(harness_dir) if harness_dir else default_harness_dir()
    return folder if folder is not None and (folder / marker).is_file() else None


def _one_line(exc: BaseException) -> str:
    """An exception as one line (with its type unless it is one of the tool's own errors)."""
    if isinstance(exc, BenchError):
        return " ".join(str(exc).split())
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _export(spec: ModelSpec, job: Any, force: bool) -> Any:
    """Build the inference-time model and export (or reuse) its Core ML package; returns the ``ExportResult``."""
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one
    from mobileone_bench.pipeline import prepare

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


class _Collector:
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
        self._number = 0
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "w", encoding="utf-8")

    def __call__(self, line: str) -> None:
        self._number += 1
        self._log.write(line + "\n")
        text = _harness.marked_json(line)
        if text is not None:
            try:
                report = _harness.parse_marked(text, f"{self.log_path} line {self._number}")
            except ReportError as exc:
                self.warn(str(exc))
                return
            self.reports.append(report)
            for r in report["results"]:
                self.progress(f"{r['model']}: {'done' if r['status'] == 'ok' else 'failed'}", True)
        elif _harness.LOG_PREFIX in line:
            self.progress(line.split(_harness.LOG_PREFIX, 1)[1].strip(), False)

    def close(self) -> None:
        self._log.close()


def _log_path(store: Any, tool: str) -> Path:
    """``<results>/logs/<tool>-<UTC time>.log``: the whole output of a harness run, kept for diagnosis (a ``-2``...
    suffix when that name is taken: runs one after the other within a second, one per phone)."""
    from mobileone_bench.formats._base import safe_name

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(store.root) / "logs"
    path = folder / f"{safe_name(tool)}-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{safe_name(tool)}-{stamp}-{n}.log"
    return path


def _stream(argv: list[str], collector: _Collector) -> _harness.RunResult:
    """Run a harness command with ``collector`` reading its output, and close the log."""
    try:
        return _harness._run(argv, on_line=collector)
    finally:
        collector.close()


def _check(result: _harness.RunResult, what: str) -> None:
    """Raise :class:`MeasurementError` with the first error line when a command failed."""
    if result.returncode != 0:
        reason = _harness.first_error_line(result.tail) or (result.tail[-1] if result.tail else "no output")
        raise MeasurementError(f"{what} failed (exit {result.returncode}): {reason}")


def measure(specs: list[ModelSpec], job: Any, store: Any, *, destination: str | Sequence[str] | None = None,
            sequential: bool = False, force: bool = False, harness_dir: str | Path | None = None,
            team: str | None = None, bundle_id: str | None = None, on_progress: Progress | None = None,
            on_warning: Warn | None = None) -> list[dict[str, Any]]:
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
    warn = on_warning or _default_warn
    if job.device == "iphone":
        return _measure_iphone(specs, job, store, destination=destination, sequential=sequential, force=force,
                               harness_dir=harness_dir, team=team, bundle_id=bundle_id, progress=progress, warn=warn)
    if sequential:
        raise UsageError("--sequential applies to --device iphone with several --destination")
    if job.device == "mac":
        return _measure_mac(specs, job, store, force=force, harness_dir=harness_dir, progress=progress, warn=warn)
    raise UsageError(f"apple.measure runs on iphone or mac, not {job.device}")


def destinations(destination: str | Sequence[str] | None) -> list[str]:
    """``--destination`` as a list (``None`` -> ``[]``, one name -> ``[name]``)."""
    if destination is None:
        return []
    return [destination] if isinstance(destination, str) else [str(d) for d in destination]


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


def _pending(specs: list[ModelSpec], recorder: _Recorder, device: dict[str, Any], runner: str,
             progress: Progress) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[ModelSpec, Any]]]:
    """Records already stored, failed exports, and the exported packages still to measure (by harness name)."""
    done: dict[str, dict[str, Any]] = {}
    exports: dict[str, tuple[ModelSpec, Any]] = {}
    for spec in specs:
        stored = recorder.planned(spec, device, runner)
        if stored is not None:
            done[spec.name] = stored
            progress(f"{spec.name}: already measured", True)
            continue
        progress(f"{spec.name}: export Core ML {recorder.job.precision}", False)
        try:
            exports[harness_name(spec)] = (spec, _export(spec, recorder.job, recorder.force))
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
            done[spec.name] = recorder.failure(spec, device, runner, f"export: {_one_line(exc)}")
            progress(f"{spec.name}: export failed", True)
    return done, exports


def _record_runs(runs: list[dict[str, Any]], recorder: _Recorder, exports: dict[str, tuple[ModelSpec, Any]],
                 done: dict[str, dict[str, Any]], *, where: str, runner: str) -> None:
    """Store the results of the staged models (by their harness name) into ``done``."""
    for run in runs:
        for result in run["results"]:
            if result["model"] in exports:
                spec, export = exports[result["model"]]
                done[spec.name] = recorder.result(run, result, spec=spec, where=where, runner=runner,
                                                  extra=_artifact_fields(export))


@dataclass
class _Phone:
    """One iPhone of a run: what ``devicectl`` says of it, its recorder, and its records so far (by model)."""

    device: _harness.Device
    recorder: _Recorder
    tag: str
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def info(self) -> dict[str, Any]:
        """The device fields of records made before the harness reported (devicectl's view of the phone)."""
        d = self.device
        return {"model_identifier": d.product_type or d.udid or d.identifier, "os_name": "iOS",
                "os_version": _harness.os_version3(d.os_version) if d.os_version else None}

    def fail(self, spec: ModelSpec, message: str, export: Any = None) -> None:
        self.done[spec.name] = self.recorder.failure(spec, self.info, RUNNER_IOS_APP, message,
                                                     _artifact_fields(export) if export is not None else None)


def _measure_iphone(specs: list[ModelSpec], job: Any, store: Any, *, destination: str | Sequence[str] | None,
                    sequential: bool, force: bool, harness_dir: str | Path | None, team: str | None,
                    bundle_id: str | None, progress: Progress, warn: Warn) -> list[dict[str, Any]]:
    names = destinations(destination)
    _require_xcode()
    if not team:
        raise UsageError("--team TEAM_ID is needed to sign the app for the iPhone (your Apple Developer team id: "
                         "Xcode > Settings > Accounts; or set MOBILEONE_BENCH_TEAM)")
    harness = _harness_path(harness_dir, "project.yml")
    if harness is None:
        raise UsageError("the ios_harness folder of the mobileone-bench repository is needed; pass --harness DIR")
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        progress("looking for the iPhone (xcrun devicectl)", False)
        _check(_harness._run(_harness.devicectl_argv(tmp / "devices.json")), "xcrun devicectl list devices")
        known = _harness.parse_devicectl(_read_json(tmp / "devices.json"))
        several = len(names) > 1 or any(n.strip().casefold() == _harness.ALL_DEVICES for n in names)
        chosen = (_harness.select_devices(known, names) if several
                  else [_harness.select_device(known, names[0] if names else None)])
        several = len(chosen) > 1
        phones = [_Phone(d, _Recorder(store, job, force=force, source="measured", warn=warn, phone=d),
                         f"{d.name}: " if several else "") for d in chosen]
        for phone in phones:
            if not phone.device.connected:
                for spec in specs:
                    stored = phone.recorder.planned(spec, phone.info, RUNNER_IOS_APP)
                    if stored is not None:  # measured before: its record stands
                        phone.done[spec.name] = stored
                    else:
                        phone.fail(spec, f"{phone.device.label()} is paired but not connected: connect and unlock "
                                         f"it, trust this Mac, and turn on Developer Mode")
                progress(f"{phone.tag}not connected", False)
        live = [phone for phone in phones if phone.device.connected]
        exports = _pending_phones(specs, live, progress)
        compiled = _compile(exports, tmp, live, progress)
        if compiled:
            _harness.stage_models(harness, compiled)
            from mobileone_bench._version import __version__

            config = _harness.make_run_config(warmup=int(job.warmup), runs=int(job.runs),
                                              compute_units=_compute_units(job), models=list(compiled),
                                              tag=f"mobileone-bench {__version__}")
            _harness.write_run_config(harness / "App" / "run_config.json", config)
            progress("xcodegen generate", False)
            _check(_harness._run(_harness.xcodegen_argv(), cwd=harness), "xcodegen generate")
            app_id = bundle_id or f"com.example.mobileone-bench.{team.lower()}"
            project = harness / "MobileOneBench.xcodeproj"
            staged = list(compiled)
            # only the phones that still need a model run the test
            todo = [ph for ph in live if any(exports[n][0].name not in ph.done for n in staged)]
            if len(todo) > 1 and not sequential:
                progress(f"building and installing on {', '.join(ph.device.name for ph in todo)}", False)
                argv = _harness.xcodebuild_argv(project, [_harness.xcodebuild_destination(ph.device) for ph in todo],
                                                team=team, bundle_id=app_id, result_bundle=tmp / "test.xcresult")
                outcome = _headless_test_phones(argv, tmp, store, progress, warn, staged=staged, phones=todo,
                                                bundle_id=app_id)
                for phone, (runs, reason) in zip(todo, outcome.per_phone):
                    _finish_phone(phone, runs, exports, staged, outcome.exit_code, outcome.log, reason, progress)
            else:
                for i, phone in enumerate(todo):
                    progress(f"building and installing on {phone.device.name}", False)
                    work = tmp / f"phone-{i}" if several else tmp
                    work.mkdir(exist_ok=True)
                    argv = _harness.xcodebuild_argv(project, _harness.xcodebuild_destination(phone.device),
                                                    team=team, bundle_id=app_id,
                                                    result_bundle=work / "test.xcresult")
                    try:
                        runs, exit_code, log = _headless_test(
                            argv, work, store, progress, warn, staged=staged, device_id=phone.device.identifier,
                            bundle_id=app_id, log_name=f"xcodebuild-{phone.device.udid or phone.device.identifier}"
                            if several else "xcodebuild")
                    except MeasurementError as exc:
                        if not several:
                            raise
                        for name in staged:
                            spec, export = exports[name]
                            if spec.name not in phone.done:
                                phone.fail(spec, f"on {phone.device.label()}: {exc}", export)
                        progress(f"{phone.tag}no model reported", True)
                        continue
                    _finish_phone(phone, runs, exports, staged, exit_code, log, None, progress)
    return [phone.done[spec.name] for phone in phones for spec in specs]


def _pending_phones(specs: list[ModelSpec], phones: list[_Phone],
                    progress: Progress) -> dict[str, tuple[ModelSpec, Any]]:
    """Each phone's stored records into its ``done``; the models some phone still needs, exported once (by harness
    name); a failed export is a failed record of every phone that needs the model."""
    exports: dict[str, tuple[ModelSpec, Any]] = {}
    for spec in specs:
        for phone in phones:
            stored = phone.recorder.planned(spec, phone.info, RUNNER_IOS_APP)
            if stored is not None:
                phone.done[spec.name] = stored
                progress(f"{phone.tag}{spec.name}: already measured", True)
        needing = [phone for phone in phones if spec.name not in phone.done]
        if not needing:
            continue
        job = needing[0].recorder.job
        progress(f"{spec.name}: export Core ML {job.precision}", False)
        try:
            exports[harness_name(spec)] = (spec, _export(spec, job, needing[0].recorder.force))
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
            for phone in needing:
                phone.fail(spec, f"export: {_one_line(exc)}")
                progress(f"{phone.tag}{spec.name}: export failed", True)
    return exports


def _finish_phone(phone: _Phone, runs: list[dict[str, Any]], exports: dict[str, tuple[ModelSpec, Any]],
                  staged: list[str], exit_code: int, log: Path, reason: str | None, progress: Progress) -> None:
    """Store a phone's results, and a failed record for each staged model it has no result for."""
    _record_runs(runs, phone.recorder, exports, phone.done, where=str(log), runner=RUNNER_IOS_APP)
    for name in staged:
        spec, export = exports[name]
        if spec.name not in phone.done:
            where = f" on {phone.device.label()}" if phone.tag else ""
            why = f": {reason}" if reason else ""
            phone.fail(spec, f"no result from the harness{where} (xcodebuild exit {exit_code}{why}; log: {log}; "
                             f"not in the result bundle's attachments nor in the app's {_harness.APP_REPORTS_DIR} "
                             f"either)", export)
            progress(f"{phone.tag}{spec.name}: no result", True)


def _compile(exports: dict[str, tuple[ModelSpec, Any]], tmp: Path, phones: list[_Phone],
             progress: Progress) -> dict[str, Path]:
    """``xcrun coremlcompiler compile`` each package; returns harness name -> ``.mlmodelc`` (a failure is a failed
    record of every phone that needs the model)."""
    compiled: dict[str, Path] = {}
    for name, (spec, export) in exports.items():
        progress(f"{spec.name}: xcrun coremlcompiler compile", False)
        out = tmp / "compiled" / name
        out.mkdir(parents=True)
        result = _harness._run(_harness.coremlcompiler_argv(Path(export.path), out))
        bundles = sorted(out.glob("*.mlmodelc"))
        if result.returncode == 0 and len(bundles) == 1:
            compiled[name] = bundles[0]
            continue
        reason = _harness.first_error_line(result.tail) or f"exit {result.returncode}, no .mlmodelc"
        for phone in phones:
            if spec.name not in phone.done:
                phone.fail(spec, f"compile: {reason}", export)
                progress(f"{phone.tag}{spec.name}: compile failed", True)
    return compiled


def _headless_test(argv: list[str], tmp: Path, store: Any, progress: Progress, warn: Warn, *,
                   staged: list[str], device_id: str, bundle_id: str,
                   log_name: str = "xcodebuild") -> tuple[list[dict[str, Any]], int, Path]:
    """Run ``xcodebuild test`` on one device and collect the runs; returns ``(runs, exit status, log)``.

    Three channels, each carrying every model as soon as it is done: the marked lines of the output; for every
    staged model without a complete marked line (whatever the exit status), the result bundle's attachments
    (``xcresulttool export attachments``, Xcode 16); and for those still missing, the report the test saved in the
    app's ``Documents/reports`` (``devicectl device copy from``), if it was written during this run.

    Raises:
        MeasurementError: No model reported (build, signing, install or launch failed), with the first error line.
    """
    started = datetime.now(timezone.utc)
    collector = _Collector(_log_path(store, log_name), progress, warn)
    result = _stream(argv, collector)
    runs = _harness.merge_runs(collector.reports)
    missing = _missing(runs, staged)
    if missing:
        bundle = Path(argv[argv.index("-resultBundlePath") + 1])
        folder = tmp / "attachments"
        folder.mkdir(exist_ok=True)
        if _harness._run(_harness.xcresult_attachments_argv(bundle, folder)).returncode == 0:
            runs += _only(_folder_runs(folder, warn), missing)
        else:
            warn("xcresulttool export attachments failed (it needs Xcode 16 or later); trying the app's container")
        missing = _missing(runs, staged)
    if missing:
        folder = tmp / "container"
        folder.mkdir(exist_ok=True)
        if _harness._run(_harness.devicectl_copy_reports_argv(device_id, bundle_id, folder)).returncode == 0:
            recent = [r for r in _folder_runs(folder, warn) if _created_since(r, started)]
            runs += _only(recent[-1:], missing)
    if not runs:
        reason = _harness.first_error_line(result.tail) or (
            "the test printed no MOBILEONE_BENCH_REPORT line, and neither its result bundle nor the app's container "
            "holds a report of this run")
        raise MeasurementError(f"xcodebuild test (exit {result.returncode}) reported no model: {reason} "
                               f"(log: {collector.log_path})")
    return runs, result.returncode, collector.log_path


@dataclass
class _PhonesOutcome:
    """What one ``xcodebuild test`` on several phones gave: per phone (in order) its runs and, when it has none,
    the first error line about it; the exit status; the log."""

    per_phone: list[tuple[list[dict[str, Any]], str | None]]
    exit_code: int
    log: Path


def _owner(device: dict[str, Any], phones: list[_Phone]) -> int | None:
    """The index of the only phone a report's ``device`` can be (same model identifier and iOS version, where
    ``devicectl`` knows them), or ``None`` when it could be several (two phones of one model on one iOS) or none:
    a harness report does not name the phone, so such a report is taken from a channel that does."""
    fits = [i for i, ph in enumerate(phones)
            if ph.device.product_type in (None, device.get("model_identifier"))
            and (ph.device.os_version is None
                 or _harness.os_version3(ph.device.os_version) == device.get("os_version"))]
    return fits[0] if len(fits) == 1 else None


def _attachment_owner(meta: dict[str, str | None] | None, phones: list[_Phone]) -> int | None:
    """The index of the phone an attachment's manifest entry names (``deviceId``: UDID or CoreDevice identifier;
    else ``deviceName``), or ``None``."""
    if not meta:
        return None
    ident, name = (meta.get("id") or "").casefold(), (meta.get("name") or "").casefold()
    for i, ph in enumerate(phones):
        if ident and ident in ((ph.device.udid or "").casefold(), ph.device.identifier.casefold()):
            return i
    named = [i for i, ph in enumerate(phones) if name and ph.device.name.casefold() == name]
    return named[0] if len(named) == 1 else None


def _about(lines: tuple[str, ...], device: _harness.Device) -> str | None:
    """The first error line of an xcodebuild output that names ``device`` (its name, UDID or identifier)."""
    marks = [m.casefold() for m in (device.name, device.udid, device.identifier) if m]
    return _harness.first_error_line([ln for ln in lines if any(m in ln.casefold() for m in marks)])


def _headless_test_phones(argv: list[str], tmp: Path, store: Any, progress: Progress, warn: Warn, *,
                          staged: list[str], phones: list[_Phone], bundle_id: str) -> _PhonesOutcome:
    """Run one ``xcodebuild test`` on several phones and sort the runs by phone, never raising for one phone.

    The three channels of :func:`_headless_test`, kept apart per phone: a marked line of the shared output goes to
    the only phone whose model identifier and iOS version its report has (else it is left to the other channels);
    the result bundle's attachments go to the phone their ``manifest.json`` entry names (``deviceId``), or by the
    same rule as the marked lines; each phone's own ``Documents/reports`` is copied with ``devicectl`` into a
    folder of its own.
    """
    started = datetime.now(timezone.utc)
    collector = _Collector(_log_path(store, "xcodebuild"), progress, warn)
    result = _stream(argv, collector)
    per: list[list[dict[str, Any]]] = [[] for _ in phones]
    for run in _harness.merge_runs(collector.reports):
        owner = _owner(run["device"], phones)
        if owner is not None:
            per[owner].append(run)
    if any(_missing(runs, staged) for runs in per):
        bundle = Path(argv[argv.index("-resultBundlePath") + 1])
        folder = tmp / "attachments"
        folder.mkdir(exist_ok=True)
        if _harness._run(_harness.xcresult_attachments_argv(bundle, folder)).returncode == 0:
            meta = _harness.attachment_devices(folder)
            found: list[list[dict[str, Any]]] = [[] for _ in phones]
            for path in sorted(folder.rglob("*.json")):
                try:
                    file_runs = _harness.reports_in_folder_file(path)
                except ReportError as exc:
                    warn(str(exc))
                    continue
                for run in file_runs:
                    owner = _attachment_owner(meta.get(path.name), phones)
                    owner = _owner(run["device"], phones) if owner is None else owner
                    if owner is not None:
                        found[owner].append(run)
            for i, runs in enumerate(found):
                missing = _missing(per[i], staged)
                if missing:
                    per[i] += _only(sorted(runs, key=lambda r: r["created"]), missing)
        else:
            warn("xcresulttool export attachments failed (it needs Xcode 16 or later); trying the apps' containers")
    for i, phone in enumerate(phones):
        missing = _missing(per[i], staged)
        if not missing:
            continue
        folder = tmp / "containers" / f"{i}-{phone.device.udid or phone.device.identifier}"
        folder.mkdir(parents=True, exist_ok=True)
        copy = _harness.devicectl_copy_reports_argv(phone.device.identifier, bundle_id, folder)
        if _harness._run(copy).returncode == 0:
            recent = [r for r in _folder_runs(folder, warn) if _created_since(r, started)]
            per[i] += _only(recent[-1:], missing)
    general = _harness.first_error_line(result.tail)
    return _PhonesOutcome([(runs, None if runs else (_about(result.tail, ph.device) or general))
                           for runs, ph in zip(per, phones)], result.returncode, collector.log_path)


def _missing(runs: list[dict[str, Any]], staged: list[str]) -> list[str]:
    """The staged model names that no run has a result for."""
    have = {r["model"] for run in runs for r in run["results"]}
    return [name for name in staged if name not in have]


def _only(runs: list[dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    """``runs`` cut down to one result for each of ``models`` (the first met), dropping empty runs."""
    wanted = set(models)
    out = []
    for run in runs:
        results = []
        for r in run["results"]:
            if r["model"] in wanted:
                wanted.discard(r["model"])
                results.append(r)
        if results:
            out.append({**run, "results": results})
    return out


def _folder_runs(folder: Path, warn: Warn) -> list[dict[str, Any]]:
    """The runs of the reports in ``folder``, oldest first; a broken report is a warning and is skipped."""
    runs: list[dict[str, Any]] = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            runs += _harness.reports_in_folder_file(path)
        except ReportError as exc:
            warn(str(exc))
    return sorted(runs, key=lambda run: run["created"])


def _created_since(run: dict[str, Any], started: datetime, slack_s: float = 300.0) -> bool:
    """Whether a report was created after ``started`` (less ``slack_s`` for the phone's clock): the app's
    container keeps the reports of earlier runs too."""
    try:
        created = datetime.strptime(run["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (KeyError, ValueError):
        return False
    return (created - started).total_seconds() >= -slack_s


def _read_json(path: Path) -> Any:
    """The JSON ``devicectl`` wrote."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeviceUnavailableError(f"cannot read the device list {path.name}: {exc}") from None


def _mac_device() -> dict[str, Any]:
    """This Mac as the harness would report it (``sysctl hw.model``, macOS version, cores, memory)."""
    def sysctl(name: str) -> str | None:
        result = _harness._run(_harness.sysctl_argv(name))
        return (result.output.strip() or None) if result.returncode == 0 else None

    memory = sysctl("hw.memsize")
    return {"model_identifier": sysctl("hw.model") or platform.machine(), "os_name": "macOS",
            "os_version": _harness.os_version3(platform.mac_ver()[0] or "0"), "thermal_state": "unknown",
            "low_power_mode": None, "processor_count": os.cpu_count() or 1,
            "physical_memory_bytes": int(memory) if memory and memory.isdigit() else 0}


def _measure_mac(specs: list[ModelSpec], job: Any, store: Any, *, force: bool, harness_dir: str | Path | None,
                 progress: Progress, warn: Warn) -> list[dict[str, Any]]:
    _require_macos()
    harness = _harness_path(harness_dir, "Package.swift")
    swift = harness is not None and shutil.which("swift") is not None
    runner = RUNNER_MAC if swift else RUNNER_COREMLTOOLS
    if not swift:
        import importlib.util

        if importlib.util.find_spec("coremltools") is None:
            raise MissingDependencyError("a Core ML runner (the Swift harness or coremltools)",
                                         "install Xcode or the Command Line Tools (swift), or pip install coremltools")
    device = _mac_device()
    recorder = _Recorder(store, job, force=force, source="measured", warn=warn)
    done, exports = _pending(specs, recorder, device, runner, progress)
    if exports and swift:
        assert harness is not None
        with tempfile.TemporaryDirectory(prefix="mobileone-bench-") as tmp_dir:
            tmp = Path(tmp_dir)
            models = tmp / "models"
            for name, (_spec, export) in exports.items():
                shutil.copytree(export.path, models / f"{name}.mlpackage")
            config = _harness.write_run_config(tmp / "run_config.json", _harness.make_run_config(
                warmup=int(job.warmup), runs=int(job.runs), compute_units=_compute_units(job), models=list(exports),
                tag=None))
            out = tmp / "report.json"
            collector = _Collector(_log_path(store, "mobileone-harness"), progress, warn)
            progress("swift run -c release mobileone-harness", False)
            result = _stream(_harness.mac_runner_argv(harness, models, config, warmup=int(job.warmup),
                                                      runs=int(job.runs), compute_units=_compute_units(job), out=out),
                             collector)
            runs = _harness.merge_runs(collector.reports)
            missing = _missing(runs, list(exports))
            if missing and out.is_file():  # a marked line lost or cut: the --out report has every model
                runs += _only(_harness.read_reports(out), missing)
            if not runs:
                reason = _harness.first_error_line(result.tail) or "no MOBILEONE_BENCH_REPORT line, no report file"
                raise MeasurementError(f"mobileone-harness (exit {result.returncode}) reported no model: {reason} "
                                       f"(log: {collector.log_path})")
            _record_runs(runs, recorder, exports, done, where=str(collector.log_path), runner=runner)
    else:
        for name, (spec, export) in exports.items():
            progress(f"{spec.name}: coremltools predict, {job.warmup}+{job.runs} runs", False)
            try:
                run = _coremltools_run(name, export, job, device)
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
                done[spec.name] = recorder.failure(spec, device, runner, f"coremltools: {_one_line(exc)}",
                                                   _artifact_fields(export))
            else:
                done[spec.name] = recorder.result(run, run["results"][0], spec=spec, where="coremltools",
                                                  runner=runner, extra=_artifact_fields(export))
            progress(f"{spec.name}: done", True)
    for spec in specs:
        if spec.name not in done:
            _spec, export = exports[harness_name(spec)]
            done[spec.name] = recorder.failure(spec, device, runner, "no result from the harness",
                                               _artifact_fields(export))
            progress(f"{spec.name}: no result", True)
    return [done[spec.name] for spec in specs]


def _coremltools_run(name: str, export: Any, job: Any, device: dict[str, Any]) -> dict[str, Any]:
    """The fallback without a Swift toolchain: the paper's protocol with ``coremltools.models.MLModel.predict``
    (Python round trip included), as a harness run holding one result (clock ``perf_counter_ns``)."""
    import numpy as np

    from mobileone_bench.devices._protocol import time_runs
    from mobileone_bench.formats.coreml import import_coremltools

    ct = import_coremltools()
    units = _compute_units(job)
    manifest = export.manifest or {}
    shape = tuple(int(d) for d in manifest["input_shape"])
    input_name = manifest.get("input_name") or "input"
    start = time.perf_counter_ns()
    model = ct.models.MLModel(str(export.path), compute_units=getattr(ct.ComputeUnit, _CT_UNITS[units]))
    load_ms = (time.perf_counter_ns() - start) / 1e6
    feed = {input_name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    start = time.perf_counter_ns()
    model.predict(feed)
    first_run_ms = (time.perf_counter_ns() - start) / 1e6
    samples = time_runs(lambda: model.predict(feed), int(job.warmup), int(job.runs))
    result = {"model": name, "file": Path(export.path).name, "status": "ok", "error": None, "compute_units": units,
              "inputs": [{"name": input_name, "kind": "multiarray", "shape": list(shape), "data_type": "float32"}],
              "load_ms": load_ms, "first_run_ms": first_run_ms, "warmup": int(job.warmup), "runs": int(job.runs),
              "clock": "perf_counter_ns", "samples_ms": samples, "summary": None}
    return {"created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "device": device,
            "harness_version": None, "config": {"tag": None}, "results": [result]}
