"""Behaviour held fixed through restructuring: every command's ``--format json`` output for one small, seeded run.

The run is fixed: five small models at 32x32, a fake clock (each timed call lasts a duration drawn from a seeded
sequence), a machine read as quiet. What legitimately changes from one machine or library version to another
(timestamps, paths, hosts, versions, hashes of built files, floating-point error magnitudes, the measured peak) is
replaced by its type before comparing; everything else (keys, names, statuses, counts, FLOPs, parameters, every
statistic of the fake samples, the correlations, the tables) must stay exactly as recorded in
``tests/fixtures/golden/commands.json``.

Regenerate the fixture only for an intended change of output: ``MOBILEONE_BENCH_WRITE_GOLDEN=1 pytest
tests/test_golden.py`` and review its diff.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

GOLDEN = FIXTURES / "golden" / "commands.json"
MODELS = ["mobileone_tiny", "mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3"]
SIZE = ["--input-size", "32", "32"]
MEASURE = ["--device", "cpu", "--runs", "6", "--warmup", "1", "--threads", "1", "--rounds", "2", "--seed", "3"]

#: values that differ between machines, library versions or moments: compared by type only
VOLATILE = {
    "timestamp", "started", "finished", "created", "time", "date", "host", "hostname", "node", "platform", "os",
    "python", "cpu", "cpu_model", "cpu_count", "physical_cores", "logical_cores", "machine", "processor", "memory_gb",
    "versions", "runtime_versions", "library_versions", "torch", "onnx", "onnxruntime", "numpy", "version",
    "tool_version", "sha256", "artifact_sha256", "artifact_hash", "hash", "bytes", "size_bytes", "artifact_bytes",
    "path", "artifact", "artifact_path", "file", "out", "results", "samples_file", "seconds", "elapsed_s",
    "export_seconds", "load_ms", "first_run_ms", "max_abs_diff", "max_abs_error", "max_rel_error", "error",
    "tolerance", "atol_used", "rtol_used", "max_abs", "reference_max_abs", "peak_gflops", "peak", "peak_id",
    "achieved_gflops", "fraction_of_peak", "gflops", "mhz_start", "mhz_end", "load_1m_start", "load_1m_end",
    "contention", "other_cpu", "other_cpu_s", "steal", "psi", "run_queue_wait_ms", "resident_gb", "record_id", "id",
    "ids", "key", "environment", "env", "cpu_info", "governor", "cpu_flags", "isa", "seed_time", "quiet_wait_s",
    "wait_quiet_s", "calibrated_with", "bn_calibration", "parity", "parity_error", "max_diff", "rounding_error",
    "hardware", "hosts", "max_abs_err", "max_rel_err", "cpu_mhz_max", "cpu_mhz_min",
}


def _machine_strings(value: Any, found: set[str]) -> set[str]:
    """Every string an ``env_*`` field holds (the CPU's name, the host, library versions): replaced wherever they
    appear in other values (a table's footnote names the CPU, a runner names it, settings name versions)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k.startswith("env_") and isinstance(v, str) and len(v) >= 3:
                found.add(v)
            _machine_strings(v, found)
    elif isinstance(value, list):
        for v in value:
            _machine_strings(v, found)
    return found


def _normalise(value: Any, key: str = "", machine: frozenset[str] = frozenset()) -> Any:
    if key in VOLATILE or key.startswith("env_"):
        return f"<{type(value).__name__}>"
    if isinstance(value, dict):
        return {k: _normalise(v, k, machine) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_normalise(v, key, machine) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        try:
            inner = json.loads(value)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            return json.dumps(_normalise(inner, key, machine), sort_keys=True)
    if isinstance(value, str) and ("/" in value and ("tmp" in value or value.startswith("/"))):
        return "<path>"
    if isinstance(value, str):
        for text in sorted(machine, key=len, reverse=True):
            value = value.replace(text, "<machine>")
    if isinstance(value, float):
        return round(value, 9)
    return value


class _FakeClock:
    """``time_runs`` with durations from a seeded sequence: the k-th timed call of the run lasts the k-th draw."""

    def __init__(self) -> None:
        self.draw = random.Random(20261206)

    def __call__(self, step, warmup, runs, clock=None):
        for _ in range(int(warmup) + int(runs)):
            step()
        return [round(0.5 + self.draw.random(), 6) for _ in range(int(runs))]


def _commands() -> list[tuple[str, list[str]]]:
    return [
        ("list", ["list", "mobileone_s*", "--format", "json"]),
        ("profile", ["profile", *MODELS, *SIZE, "--format", "json"]),
        ("reparam", ["reparam", "mobileone_tiny", *SIZE, "--format", "json"]),
        ("export", ["export", "mobileone_tiny", "--format", "onnx", "--out", "models", *SIZE, "--json"]),
        ("latency", ["latency", *MODELS, *SIZE, *MEASURE, "--runtime", "onnxruntime", "--format", "json"]),
        ("latency-torch", ["latency", *MODELS, *SIZE, *MEASURE, "--runtime", "torch", "--protocol", "blocked",
                           "--format", "json"]),
        ("run", ["run", *MODELS, *SIZE, *MEASURE, "--format", "json"]),
        ("correlate", ["correlate", "--format", "json"]),
        ("table", ["table", *MODELS, "--format", "json"]),
        ("roofline", ["roofline", "--peak-gflops", "100", "--format", "json"]),
        ("plot", ["plot", "--figure", "latency-vs-flops", "--out", "figures", "--format", "json"]),
        ("merge", ["merge", "results", "--into", "merged", "--format", "json"]),
        ("export-results", ["export-results", "--format", "pytorch-benchmark", "--kind", "latency", "--latest"]),
    ]


def _run_all(runner, cli, monkeypatch) -> dict[str, Any]:
    from mobileone_bench.devices import _protocol

    monkeypatch.setattr(_protocol, "time_runs", _FakeClock())
    raw: dict[str, Any] = {}
    for name, args in _commands():
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, f"{name}: {result.output}"
        raw[name] = json.loads(result.stdout.strip())
    machine = frozenset(_machine_strings(raw, set()))
    return {name: _normalise(value, machine=machine) for name, value in raw.items()}


def test_every_commands_json_output_is_as_recorded(runner, cli, tmp_path, monkeypatch, quiet_machine):
    monkeypatch.chdir(tmp_path)
    outputs = _run_all(runner, cli, monkeypatch)
    if os.environ.get("MOBILEONE_BENCH_WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {GOLDEN.name}; review its diff")
    recorded = json.loads(GOLDEN.read_text())
    assert sorted(outputs) == sorted(recorded)
    for name in recorded:
        assert outputs[name] == recorded[name], f"`{name}` output changed"


def test_normalising_keeps_what_must_not_change():
    # a volatile key is compared by type; a statistic or a count is kept as it is
    a = _normalise({"timestamp": "2026-01-01", "median_ms": 1.25, "runs": 6, "path": "/x/y"})
    b = _normalise({"timestamp": "2027-02-02", "median_ms": 1.25, "runs": 6, "path": "/z"})
    assert a == b
    assert _normalise({"median_ms": 1.25}) != _normalise({"median_ms": 1.5})
    assert _normalise({"runs": 6}) != _normalise({"runs": 7})
    assert Path(GOLDEN).name == "commands.json"
