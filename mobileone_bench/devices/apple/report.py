"""Harness reports as plain values: reading, validating, merging and picking runs apart.

The versioned JSON report (``mobileone_bench/data/harness_report.schema.json``) is checked with ``jsonschema`` plus
what a JSON Schema cannot say (``len(samples_ms) == runs`` for an ``ok`` result). It is read from a report file or
picked out of a log as ``MOBILEONE_BENCH_REPORT {json}`` lines, which are merged back into runs. A run is a dict
(``created``, ``device``, ``config``, ``harness_version``, ``results``); nothing here knows about records.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from mobileone_bench.devices.apple._common import RUNNER_IOS_APP, RUNNER_MAC
from mobileone_bench.errors import MissingDependencyError, ReportError, UsageError

__all__ = [
    "MARKER", "SCHEMA_NAME", "SCHEMA_VERSION", "COMPUTE_UNITS", "LOG_PREFIX", "THROTTLED_THERMAL_STATES",
    "load_schema", "validator", "describe", "report_problems", "validate_report", "marked_json", "marked_lines",
    "parse_marked", "merge_runs", "read_reports", "reports_in_folder", "reports_in_folder_file", "folder_runs",
    "created_since", "missing_models", "only_models", "check_compute_units", "make_run_config", "write_run_config", "result_conditions",
    "condition_fields", "throttle_messages", "summary_mismatches", "runner_for", "os_version3", "os_text",
    "device_env",
]

MARKER = "MOBILEONE_BENCH_REPORT"
SCHEMA_NAME = "mobileone-bench/harness-report"
SCHEMA_VERSION = 1
COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")
#: The harness's own progress lines start with this (they are never errors).
LOG_PREFIX = "[mobileone-bench]"
THROTTLED_THERMAL_STATES = ("fair", "serious", "critical")
_MARKED = re.compile(re.escape(MARKER) + r" (\{.*)$")
_MAX_PROBLEMS = 4


# ------------------------------------------------------------------------------------------------------ schema


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The shared report schema (``mobileone_bench/data/harness_report.schema.json``)."""
    text = resources.files("mobileone_bench").joinpath("data/harness_report.schema.json").read_text("utf-8")
    return json.loads(text)


def validator(schema: dict[str, Any]) -> Any:
    """A ``jsonschema`` validator of ``schema``.

    Raises:
        MissingDependencyError: ``jsonschema`` is not installed.
    """
    try:
        import jsonschema
    except ImportError:
        raise MissingDependencyError("the harness report validator (Python module 'jsonschema')",
                                     "pip install jsonschema") from None
    return jsonschema.Draft202012Validator(schema)


def _pointer(path: Iterable[Any]) -> str:
    return "/" + "/".join(str(p) for p in path)


def _short(value: Any) -> str:
    """A JSON value described in a few words (an object, a list of n items, or its shortened ``repr``)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe(error: Any) -> str:
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
    errors = list(validator(load_schema()).iter_errors(doc))
    if errors:
        def order(e: Any) -> tuple[Any, ...]:
            path = list(e.absolute_path)
            return (path[:1] not in (["schema_version"], ["schema"]),
                    tuple((isinstance(p, str), p) for p in path))

        return [describe(e) for e in sorted(errors, key=order)]
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


# ------------------------------------------------------------------------------------------------------ reading


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


def folder_runs(folder: Path, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The runs of the reports in ``folder``, oldest first; a broken report is a warning and is skipped."""
    runs: list[dict[str, Any]] = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            runs += reports_in_folder_file(path)
        except ReportError as exc:
            warn(str(exc))
    return sorted(runs, key=lambda run: run["created"])


def created_since(run: dict[str, Any], started: datetime, slack_s: float = 300.0) -> bool:
    """Whether a report was created after ``started`` (less ``slack_s`` for the phone's clock): the app's
    container keeps the reports of earlier runs too."""
    try:
        created = datetime.strptime(run["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (KeyError, ValueError):
        return False
    return (created - started).total_seconds() >= -slack_s


def missing_models(runs: list[dict[str, Any]], staged: list[str]) -> list[str]:
    """The staged model names that no run has a result for."""
    have = {r["model"] for run in runs for r in run["results"]}
    return [name for name in staged if name not in have]


def only_models(runs: list[dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
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


# -------------------------------------------------------------------------------------------- run configuration


def check_compute_units(units: Any) -> str:
    """Core ML compute units the harness knows (``all``, ``cpu_only``, ``cpu_and_gpu``, ``cpu_and_ne``), checked.

    Raises:
        UsageError: Any other value.
    """
    if units not in COMPUTE_UNITS:
        raise UsageError(f"unknown compute units {units!r}; choose from {', '.join(COMPUTE_UNITS)}")
    return str(units)


def make_run_config(*, warmup: int, runs: int, compute_units: str, models: list[str],
                    tag: str | None) -> dict[str, Any]:
    """A run configuration (``App/run_config.json``, ``--config`` of the macOS runner), validated.

    Raises:
        UsageError: A value the harness would reject (checked with the schema's ``$defs/run_config``).
    """
    config = {"warmup": warmup, "runs": runs, "compute_units": compute_units, "models": list(models), "tag": tag}
    errors = list(validator(load_schema()["$defs"]["run_config"]).iter_errors(config))
    if errors:
        raise UsageError(f"run configuration: {'; '.join(describe(e) for e in errors)}")
    return config


def write_run_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write a run configuration as JSON to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- what a result says


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


def condition_fields(result: Mapping[str, Any], device: Mapping[str, Any]) -> dict[str, Any]:
    """A result's device conditions as record fields (per model with harness 0.2, else the session's) and the
    predictions before its first sample (``runs_before_timing``; ``None`` for harness 0.1)."""
    conditions = result_conditions(result, device)
    return {
        "runs_before_timing": result.get("runs_before_timing"),
        "thermal_state_before": conditions["before"]["thermal_state"],
        "thermal_state_after": conditions["after"]["thermal_state"],
        "low_power_mode_before": conditions["before"]["low_power_mode"],
        "low_power_mode_after": conditions["after"]["low_power_mode"],
        "throttle_warning": bool(conditions["throttled"]) or conditions["low_power_mode"],
    }


def throttle_messages(where: str, result: Mapping[str, Any], device: Mapping[str, Any]) -> list[str]:
    """The warnings a result deserves: it ran at a thermal state above nominal, or with Low Power Mode on."""
    conditions = result_conditions(result, device)
    seen = "per model" if isinstance(result.get("conditions_before"), dict) else "for the session"
    out = []
    if conditions["throttled"]:
        out.append(f"{where}: {result['model']}: ran at thermal state {' then '.join(conditions['throttled'])} "
                   f"(before the timed runs: {conditions['before']['thermal_state']}, after: "
                   f"{conditions['after']['thermal_state']}, read {seen}); the device may have throttled, so its "
                   f"latencies may be slower than the device can be: let it cool down and measure again")
    if conditions["low_power_mode"]:
        out.append(f"{where}: {result['model']}: ran with Low Power Mode on (read {seen}), which throttles the CPU "
                   f"and GPU")
    return out


def summary_mismatches(summary: Mapping[str, Any], ours: Mapping[str, Any]) -> list[str]:
    """Where the harness's display summary disagrees with statistics recomputed from its samples, beyond rounding.

    Args:
        summary: The report's ``summary`` (``n``, ``min``, ``median``, ``mean``, ``std``, ``p90``, ``p99``,
            ``trimmed_mean``; its ``std`` has ddof = 0).
        ours: The record's statistics from the samples (``n``, ``min_ms``..., ``std_ms`` with ddof = 1).
    """
    n = int(ours["n"])
    population_std = float(ours["std_ms"]) * math.sqrt((n - 1) / n) if n > 1 else 0.0
    mine = {"n": n, "min": ours["min_ms"], "median": ours["median_ms"], "mean": ours["mean_ms"],
            "std": population_std, "p90": ours["p90_ms"], "p99": ours["p99_ms"],
            "trimmed_mean": ours["trimmed_mean_ms"]}
    return [f"{k} {summary[k]:.6g} vs {v:.6g}" for k, v in mine.items()
            if not math.isclose(summary[k], v, rel_tol=1e-6, abs_tol=1e-9)]


def runner_for(device: Mapping[str, Any], wanted: str, where: str) -> str:
    """The runner a report's device implies, after checking it is the kind of device asked for.

    Args:
        device: The report's ``device``.
        wanted: ``iphone`` or ``mac`` (``--device``).
        where: The file, for messages.

    Raises:
        UsageError: A Simulator report, or one made on the other kind of device.
    """
    ident = str(device["model_identifier"])
    os_name = device["os_name"]
    if ident.startswith("simulator:"):
        raise UsageError(f"{where}: made in the iOS Simulator ({ident}); Simulator timings are not device latency")
    if wanted == "iphone" and os_name != "iOS":
        hint = "; import it with --device mac" if os_name == "macOS" else ""
        raise UsageError(f"{where}: made on {os_name} ({ident}), not on an iPhone{hint}")
    if wanted == "mac" and os_name != "macOS":
        hint = "; import it with --device iphone" if os_name == "iOS" else ""
        raise UsageError(f"{where}: made on {os_name} ({ident}), not on a Mac{hint}")
    return RUNNER_IOS_APP if wanted == "iphone" else RUNNER_MAC


def os_version3(version: str) -> str:
    """``17.5`` -> ``17.5.0``: the harness always reports major.minor.patch."""
    parts = version.strip().split(".")
    if all(p.isdigit() for p in parts) and len(parts) < 3:
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def os_text(device: Mapping[str, Any]) -> str:
    """A report's operating system in words: ``iOS 17.5.1``."""
    return f"{device.get('os_name')} {device.get('os_version')}"


def device_env(device: Mapping[str, Any], harness_version: str | None) -> dict[str, Any]:
    """The ``env_*`` fields of a report's ``device``: the phone or Mac that ran the model (as the harness saw it),
    not the host."""
    return {
        "env_machine": device.get("model_identifier"),
        "env_os": os_text(device),
        "env_thermal_state": device.get("thermal_state"),
        "env_low_power_mode": device.get("low_power_mode"),
        "env_cores_logical": device.get("processor_count"),
        "env_memory_bytes": device.get("physical_memory_bytes"),
        "env_harness": harness_version,
    }
