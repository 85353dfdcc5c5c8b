"""The Mac as the device: the harness's macOS runner (``swift run -c release mobileone-harness``) on a folder of
Core ML packages, or, without a Swift toolchain, ``coremltools``' own prediction timed by the shared protocol
(:func:`mobileone_bench.devices._protocol.time_runs`). Both give harness runs (plain dicts), never records."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from mobileone_bench.devices.apple import commands
from mobileone_bench.devices.apple._collect import Collector, log_path, stream
from mobileone_bench.devices.apple._common import (CHANNEL_IN_PROCESS, CHANNEL_REPORT_FILE, CHANNEL_STDOUT,
                                                   RUNNER_COREMLTOOLS, RUNNER_MAC, Progress, Warn)
from mobileone_bench.devices.apple.report import (
    make_run_config,
    merge_runs,
    missing_models,
    only_models,
    os_version3,
    read_reports,
    write_run_config,
)
from mobileone_bench.errors import DeviceUnavailableError, MeasurementError, MissingDependencyError

__all__ = ["require_macos", "choose_runner", "mac_device", "run_harness", "coremltools_run"]

_CT_UNITS = {"all": "ALL", "cpu_only": "CPU_ONLY", "cpu_and_gpu": "CPU_AND_GPU", "cpu_and_ne": "CPU_AND_NE"}


def require_macos() -> None:
    """Raise :class:`DeviceUnavailableError` unless this is macOS."""
    if sys.platform != "darwin":
        raise DeviceUnavailableError(
            f"--device mac measures Core ML on this Mac and needs macOS (this machine runs {sys.platform}); on a Mac, "
            f"run `swift run -c release mobileone-harness --models DIR --out report.json` in ios_harness/ and "
            f"import the report with `mobileone-bench latency --device mac --from-report report.json`")


def choose_runner(harness: Path | None) -> str:
    """The runner of this Mac: the harness's macOS runner when there is a harness folder and a Swift toolchain,
    else ``coremltools``.

    Raises:
        MissingDependencyError: Neither is there.
    """
    if harness is not None and shutil.which("swift") is not None:
        return RUNNER_MAC
    import importlib.util

    if importlib.util.find_spec("coremltools") is None:
        raise MissingDependencyError("a Core ML runner (the Swift harness or coremltools)",
                                     "install Xcode or the Command Line Tools (swift), or pip install coremltools")
    return RUNNER_COREMLTOOLS


def mac_device() -> dict[str, Any]:
    """This Mac as the harness would report it (``sysctl hw.model``, macOS version, cores, memory)."""
    def sysctl(name: str) -> str | None:
        result = commands.run(commands.sysctl_argv(name))
        return (result.output.strip() or None) if result.returncode == 0 else None

    memory = sysctl("hw.memsize")
    return {"model_identifier": sysctl("hw.model") or platform.machine(), "os_name": "macOS",
            "os_version": os_version3(platform.mac_ver()[0] or "0"), "thermal_state": "unknown",
            "low_power_mode": None, "processor_count": os.cpu_count() or 1,
            "physical_memory_bytes": int(memory) if memory and memory.isdigit() else 0}


def run_harness(harness: Path, packages: Mapping[str, Path], *, warmup: int, runs: int, compute_units: str,
                logs: Path, progress: Progress,
                warn: Warn) -> tuple[list[dict[str, Any]], Path, list[dict[str, Any]]]:
    """Run the macOS runner on Core ML packages; returns its runs (each with the channel that delivered it), the
    log of its output and the compute plans it printed.

    Args:
        harness: The ``ios_harness`` folder (a Swift package).
        packages: Harness model name -> ``.mlpackage``.
        logs: Where the log goes.

    Raises:
        MeasurementError: The runner reported no model (with its first error line).
    """
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        models = tmp / "models"
        for name, package in packages.items():
            shutil.copytree(package, models / f"{name}.mlpackage")
        config = write_run_config(tmp / "run_config.json", make_run_config(
            warmup=warmup, runs=runs, compute_units=compute_units, models=list(packages), tag=None))
        out = tmp / "report.json"
        collector = Collector(log_path(logs, "mobileone-harness"), progress, warn)
        progress("swift run -c release mobileone-harness", False)
        result = stream(commands.mac_runner_argv(harness, models, config, warmup=warmup, runs=runs,
                                                 compute_units=compute_units, out=out), collector)
        found = [{**run, "channel": CHANNEL_STDOUT} for run in merge_runs(collector.reports)]
        missing = missing_models(found, list(packages))
        if missing and out.is_file():  # a marked line lost or cut: the --out report has every model
            found += [{**run, "channel": CHANNEL_REPORT_FILE} for run in only_models(read_reports(out), missing)]
    if not found:
        reason = commands.first_error_line(result.tail) or "no MOBILEONE_BENCH_REPORT line, no report file"
        raise MeasurementError(f"mobileone-harness (exit {result.returncode}) reported no model: {reason} "
                               f"(log: {collector.log_path})")
    return found, collector.log_path, [{**plan, "channel": CHANNEL_STDOUT} for plan in collector.plans]


def coremltools_run(name: str, package: Path, manifest: Mapping[str, Any], *, warmup: int, runs: int,
                    compute_units: str, device: dict[str, Any]) -> dict[str, Any]:
    """The fallback without a Swift toolchain: the paper's protocol with ``coremltools.models.MLModel.predict``
    (Python round trip included), as a harness run holding one result (clock ``perf_counter_ns``).

    Args:
        name: The model's harness name.
        package: Its ``.mlpackage``.
        manifest: The export's manifest (``input_shape``, ``input_name``).
        device: This Mac (:func:`mac_device`).
    """
    import numpy as np

    from mobileone_bench.devices import _coreml
    from mobileone_bench.devices._protocol import time_runs

    ct = _coreml.import_coremltools()
    shape = tuple(int(d) for d in manifest["input_shape"])
    input_name = manifest.get("input_name") or "input"
    start = time.perf_counter_ns()
    model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, _CT_UNITS[compute_units]))
    load_ms = (time.perf_counter_ns() - start) / 1e6
    feed = {input_name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    start = time.perf_counter_ns()
    model.predict(feed)
    first_run_ms = (time.perf_counter_ns() - start) / 1e6
    samples = time_runs(lambda: model.predict(feed), warmup, runs)
    result = {"model": name, "file": Path(package).name, "status": "ok", "error": None,
              "compute_units": compute_units,
              "inputs": [{"name": input_name, "kind": "multiarray", "shape": list(shape), "data_type": "float32"}],
              "load_ms": load_ms, "first_run_ms": first_run_ms, "warmup": warmup, "runs": runs,
              "clock": "perf_counter_ns", "samples_ms": samples, "summary": None}
    return {"created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "device": device,
            "harness_version": None, "config": {"tag": None}, "results": [result], "channel": CHANNEL_IN_PROCESS}
