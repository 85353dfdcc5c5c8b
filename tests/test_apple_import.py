"""Harness reports -> records: statistics from the raw samples, failures as data, registry names, the phone as the
machine, re-imports skipped; and the ``latency --device iphone --from-report`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import trim_mean

from mobileone_bench.models import registry
from mobileone_bench.errors import ReportError, UsageError
from mobileone_bench.pipeline import LatencyJob, latency_identity, phone
from mobileone_bench.store.records import ResultsStore

FIXTURES = Path(__file__).parent / "fixtures" / "harness"
OK = str(FIXTURES / "report_ok.json")
PARTIAL = str(FIXTURES / "report_partial_failure.json")
LOG = str(FIXTURES / "xcodebuild_test_output.txt")
MALFORMED = str(FIXTURES / "report_malformed.json")
THERMAL = str(FIXTURES / "report_thermal.json")

# the fields of a CPU/GPU latency record (pipeline.measure_latency) that an iPhone record has too
SHARED_FIELDS = ("status", "error", "report", "latency_ms", "n", "min_ms", "max_ms", "median_ms", "mean_ms", "std_ms",
                 "p90_ms", "p99_ms", "cv", "trimmed_mean_ms", "noise_warning", "runtime_settings", "clock",
                 "artifact_format", "artifact_path", "artifact_sha256", "source", "paper_name", "seconds",
                 "samples_file", "record_id", "kind", "key", "created")


def _job(**kw) -> LatencyJob:
    return LatencyJob(device=kw.pop("device", "iphone"), runtime_options=(("compute_units", "all"),), **kw)


def _doc(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _write(tmp_path: Path, name: str, doc: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


@pytest.fixture
def store(tmp_path) -> ResultsStore:
    return ResultsStore(tmp_path / "results")


def test_import_ok_report_statistics_match_numpy(store):
    records = phone.import_reports([OK], store, job=_job())
    assert [r["model"] for r in records] == ["mobileone_s0", "mobileone_s1"]
    for rec, result in zip(records, _doc(OK)["results"]):
        x = np.asarray(result["samples_ms"])
        assert rec["status"] == "ok" and rec["error"] is None and rec["n"] == 20
        assert rec["min_ms"] == x.min() and rec["max_ms"] == x.max()
        assert rec["median_ms"] == pytest.approx(np.percentile(x, 50), abs=1e-12)
        assert rec["p90_ms"] == pytest.approx(np.percentile(x, 90), abs=1e-12)
        assert rec["p99_ms"] == pytest.approx(np.percentile(x, 99), abs=1e-12)
        assert rec["mean_ms"] == pytest.approx(x.mean(), abs=1e-12)
        assert rec["std_ms"] == pytest.approx(x.std(ddof=1), abs=1e-12)
        assert rec["trimmed_mean_ms"] == pytest.approx(trim_mean(x, 0.1), abs=1e-12)
        assert rec["latency_ms"] == rec["min_ms"]  # the paper reports the minimum on the iPhone
        assert rec["report"] == "min" and rec["summary_check"] == "ok"
        assert store.samples(rec) == result["samples_ms"]
        assert (rec["load_ms"], rec["first_run_ms"]) == (result["load_ms"], result["first_run_ms"])
    assert records[1]["input_shape"] == "1x3x224x224"  # an image input [224, 224] is NCHW 1x3x224x224


def test_record_looks_like_a_cpu_record_and_describes_the_phone(store):
    rec = phone.import_reports([OK], store, job=_job())[0]
    identity_keys = latency_identity(registry.resolve("mobileone_s0"), _job().resolved())
    assert set(identity_keys) | set(SHARED_FIELDS) <= set(rec)
    assert rec["machine"] == "iPhone13,2" and rec["env_machine"] == "iPhone13,2"
    assert rec["env_os"] == "iOS 17.5.1" and rec["versions"] == '{"os":"iOS 17.5.1"}'
    assert (rec["env_thermal_state"], rec["env_low_power_mode"], rec["env_cores_logical"]) == ("nominal", False, 6)
    assert not any(k in rec for k in ("env_cpu", "env_hostname", "env_python"))  # nothing about this host
    assert (rec["device"], rec["runtime"], rec["precision"], rec["warmup"], rec["runs"]) == (
        "iphone", "coreml", "fp16", 1, 20)
    assert json.loads(rec["runtime_options"]) == {"compute_units": "all", "runner": "ios-app"}
    assert json.loads(rec["runtime_settings"])["clock"] == rec["clock"] == "monotonic-uptime-ns"
    assert (rec["source"], rec["harness_version"], rec["report_created"], rec["report_tag"], rec["report_file"]) == (
        "report", "0.1.0", "2026-11-28T12:00:00Z", "fixture", OK)
    assert rec["paper_name"] == "MobileOne-S0"


def test_report_statistic_follows_the_job(store):
    rec = phone.import_reports([OK], store, job=_job(report="median"))[0]
    assert rec["latency_ms"] == rec["median_ms"] != rec["min_ms"]


def test_failed_results_are_recorded_as_failures(store):
    records = phone.import_reports([PARTIAL], store, job=_job())
    assert [(r["model"], r["harness_model"], r["status"]) for r in records] == [
        ("mobileone_s0", "mobileone_s0", "ok"),
        ("mobilevit-s", "mobilevit_s", "failed"),  # registry names, harness names kept
        ("efficientnet-b0", "efficientnet_b0", "failed")]
    assert records[1]["error"].startswith("load failed: Failed to build the model execution plan")
    assert records[2]["error"].startswith("not found: no model named 'efficientnet_b0'")
    for rec in records[1:]:
        assert "samples_file" not in rec and rec.get("latency_ms") is None and rec["compute_units"] == "cpu_and_ne"
    assert [r["status"] for r in store.records("latency")] == ["ok", "failed", "failed"]


def test_log_import_equals_report_import(tmp_path):
    from_log = phone.import_reports([LOG], ResultsStore(tmp_path / "a"), job=_job())
    from_file = phone.import_reports([PARTIAL], ResultsStore(tmp_path / "b"), job=_job())
    keep = ("key", "model", "status", "error", "latency_ms", "n", "median_ms", "load_ms")
    assert [{k: r.get(k) for k in keep} for r in from_log] == [{k: r.get(k) for k in keep} for r in from_file]
    assert from_log[0]["report_file"] == LOG


def test_reimport_adds_nothing_unless_forced(store):
    first = phone.import_reports([OK, PARTIAL], store, job=_job())
    again = phone.import_reports([OK, LOG], store, job=_job())  # the log holds the same run as PARTIAL
    assert [r["record_id"] for r in again] == [r["record_id"] for r in first]
    assert len(store.records()) == 5
    forced = phone.import_reports([OK], store, job=_job(), force=True)
    assert len(store.records()) == 7 and {r["record_id"] for r in forced}.isdisjoint(r["record_id"] for r in first)


def test_a_new_run_records_failures_again_but_not_a_known_success(tmp_path, store):
    phone.import_reports([PARTIAL], store, job=_job())
    later = _doc(PARTIAL)
    later["created"] = "2026-11-29T08:00:00Z"
    records = phone.import_reports([_write(tmp_path, "later.json", later)], store, job=_job())
    assert records[0]["report_created"] == "2026-11-28T12:30:00Z"  # mobileone_s0: same key, already measured
    assert [r["report_created"] for r in records[1:]] == ["2026-11-29T08:00:00Z"] * 2
    assert len(store.records()) == 5


def test_other_settings_are_other_keys(store):
    a = phone.import_reports([OK], store, job=_job())[0]
    b = phone.import_reports([OK], store, job=_job(precision="fp32"))[0]
    assert a["key"] != b["key"] and len(store.records()) == 4


def test_unknown_model_keeps_the_harness_name(tmp_path, store):
    doc = _doc(OK)
    doc["results"] = doc["results"][:1]
    doc["results"][0].update(model="my_net_v7", file="my_net_v7.mlmodelc")
    doc["results"][0]["inputs"][0]["shape"] = [1, 3, 256, 256]
    rec = phone.import_reports([_write(tmp_path, "custom.json", doc)], store, job=_job())[0]
    assert (rec["model"], rec["target"], rec["paper_name"], rec["input_shape"]) == (
        "my_net_v7", "my_net_v7", None, "1x3x256x256")


def test_harness_names_round_trip():
    for name in ("mobileone_s0", "timm:resnet18", "mobilenetv2-x1.4"):
        spec = registry.resolve(name)
        assert phone.resolve_harness_model(phone.harness_name(spec)).name == spec.name
    assert phone.harness_name(registry.resolve("timm:resnet18")) == "timm__resnet18"
    assert phone.resolve_harness_model("no_such_net_xyz") is None


def test_models_filter(store):
    warnings: list[str] = []
    only = phone.import_reports([OK], store, job=_job(), models=[registry.resolve("mobileone-s1")])
    assert [r["model"] for r in only] == ["mobileone_s1"]
    some = phone.import_reports([OK], store, job=_job(), on_warning=warnings.append,
                                models=[registry.resolve("mobileone_s0"), registry.resolve("mobileone_s4")])
    assert [r["model"] for r in some] == ["mobileone_s0"] and warnings == ["no result for mobileone_s4 in the reports"]
    with pytest.raises(UsageError, match="hold no result for mobileone_s4 .*they hold: mobileone_s0, mobileone_s1"):
        phone.import_reports([OK], store, job=_job(), models=[registry.resolve("mobileone_s4")])


def test_summary_disagreement_warns_and_samples_win(tmp_path, store):
    doc = _doc(OK)
    doc["results"][0]["summary"]["median"] = 0.9
    warnings: list[str] = []
    rec = phone.import_reports([_write(tmp_path, "odd.json", doc)], store, job=_job(), on_warning=warnings.append)[0]
    assert rec["median_ms"] == pytest.approx(0.82246) and rec["summary_check"] == "median 0.9 vs 0.82246"
    assert len(warnings) == 1 and "mobileone_s0: the harness summary disagrees with its samples" in warnings[0]
    with pytest.warns(phone.HarnessWarning, match="disagrees"):
        phone.import_reports([_write(tmp_path, "odd.json", doc)], store, job=_job(), force=True)


def test_rounding_is_not_a_disagreement(tmp_path, store):
    doc = _doc(OK)
    doc["results"][0]["summary"]["mean"] *= 1 + 1e-12
    warnings: list[str] = []
    rec = phone.import_reports([_write(tmp_path, "r.json", doc)], store, job=_job(), on_warning=warnings.append)[0]
    assert rec["summary_check"] == "ok" and warnings == []


def test_report_of_another_device_is_refused(tmp_path, store):
    mac = _doc(OK)
    mac["device"].update(model_identifier="Mac14,2", os_name="macOS", os_version="14.5.0")
    with pytest.raises(UsageError, match=r"made on macOS \(Mac14,2\), not on an iPhone; import it with --device mac"):
        phone.import_reports([_write(tmp_path, "mac.json", mac)], store, job=_job())
    rec = phone.import_reports([str(tmp_path / "mac.json")], store, job=_job(device="mac"))[0]
    assert rec["machine"] == "Mac14,2" and json.loads(rec["runtime_options"])["runner"] == "mac-runner"
    with pytest.raises(UsageError, match="not on a Mac; import it with --device iphone"):
        phone.import_reports([OK], store, job=_job(device="mac"))
    sim = _doc(OK)
    sim["device"]["model_identifier"] = "simulator:iPhone16,1"
    with pytest.raises(UsageError, match="Simulator timings are not device latency"):
        phone.import_reports([_write(tmp_path, "sim.json", sim)], store, job=_job())


def test_per_model_conditions_are_recorded_and_nominal_is_quiet(store):
    warnings: list[str] = []
    rec = phone.import_reports([OK], store, job=_job(), on_warning=warnings.append)[0]
    assert warnings == []
    assert (rec["thermal_state_before"], rec["thermal_state_after"]) == ("nominal", "nominal")
    assert (rec["low_power_mode_before"], rec["low_power_mode_after"], rec["throttle_warning"]) == (False, False, False)
    assert rec["runs_before_timing"] == 2  # the first run plus warmup 1


def test_a_model_above_nominal_warns(store):
    warnings: list[str] = []
    rec = phone.import_reports([THERMAL], store, job=_job(), on_warning=warnings.append)[0]
    assert rec["status"] == "ok" and rec["throttle_warning"] is True
    assert (rec["thermal_state_before"], rec["thermal_state_after"], rec["runs_before_timing"]) == ("fair", "serious", 1)
    (warning,) = warnings
    assert "report_thermal.json: mobileone_s4: ran at thermal state fair then serious" in warning
    assert "before the timed runs: fair, after: serious, read per model" in warning
    with pytest.warns(phone.HarnessWarning, match="ran at thermal state fair then serious"):
        phone.import_reports([THERMAL], store, job=_job(), force=True)


def test_an_old_report_warns_from_the_session_state(tmp_path, store):
    """Harness 0.1 reports have only the session's thermal state and Low Power Mode; they still import and warn."""
    doc = _doc(PARTIAL)
    doc["device"].update(thermal_state="serious", low_power_mode=True)
    warnings: list[str] = []
    records = phone.import_reports([_write(tmp_path, "old.json", doc)], store, job=_job(), on_warning=warnings.append)
    assert records[0]["thermal_state_before"] == "serious" and records[0]["runs_before_timing"] is None
    assert sum("ran at thermal state serious" in w and "read for the session" in w for w in warnings) == 3
    assert sum("Low Power Mode on" in w for w in warnings) == 3


def test_a_malformed_file_stores_nothing(store):
    with pytest.raises(ReportError, match="report_malformed.json: invalid harness report"):
        phone.import_reports([OK, MALFORMED], store, job=_job())
    assert store.records() == []


# --------------------------------------------------------------------------------------------------------- CLI


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_cli_from_report(runner, cli, tmp_path):
    results = tmp_path / "results"
    args = ["latency", "--device", "iphone", "--from-report", OK, "--results", str(results), "--format", "json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    stored = ResultsStore(results).records("latency")
    assert [r["record_id"] for r in printed] == [r["record_id"] for r in stored]
    assert [(r["model"], r["latency_ms"]) for r in stored] == [("mobileone_s0", 0.792653),
                                                                ("mobileone_s1", 0.880276)]
    table = runner.invoke(cli, args[:-2])
    assert table.exit_code == 0 and table.stdout.count("cached") == 2  # the second import adds nothing
    assert len(ResultsStore(results).records()) == 2


def test_cli_from_log_with_failures_exits_1_but_stores_them(runner, cli, tmp_path):
    results = tmp_path / "results"
    result = runner.invoke(cli, ["latency", "--device", "iphone", "--from-report", LOG, "--results", str(results)])
    assert result.exit_code == 1
    assert "2 of 3 measurements failed" in result.stderr
    assert [r["status"] for r in ResultsStore(results).records()] == ["ok", "failed", "failed"]


def test_cli_malformed_report_is_one_line(runner, cli, tmp_path):
    result = runner.invoke(cli, ["latency", "--device", "iphone", "--from-report", MALFORMED,
                                 "--results", str(tmp_path / "results")])
    assert result.exit_code == 1
    assert _lines(result.output) == _lines(result.stderr)
    (line,) = _lines(result.stderr)
    assert line.startswith("Error: ") and "report_malformed.json" in line and "/schema_version" in line


@pytest.mark.skipif(sys.platform == "darwin", reason="off macOS, measuring on an iPhone or a Mac is impossible")
@pytest.mark.parametrize("device, fragment", [("iphone", "needs a Mac"), ("mac", "needs macOS")])
def test_cli_measure_off_mac_is_one_clear_line(runner, cli, tmp_path, device, fragment):
    result = runner.invoke(cli, ["latency", "mobileone_s0", "--device", device, "--results", str(tmp_path / "r")])
    assert result.exit_code == 1
    (line,) = _lines(result.stderr)
    assert fragment in line and f"--device {device} --from-report" in line
    assert not (tmp_path / "r").exists()


def test_every_record_is_made_by_the_pipelines_recording_module(monkeypatch, store):
    """The phone path has no record maker of its own: each record it stores comes from recording.append_latency,
    and a result already stored is found by recording.stored."""
    from mobileone_bench.pipeline import recording

    made, looked_up = [], []
    append, stored = recording.append_latency, recording.stored
    monkeypatch.setattr(recording, "append_latency", lambda *a, **kw: made.append(a[1]["model"]) or append(*a, **kw))
    monkeypatch.setattr(recording, "stored", lambda *a, **kw: looked_up.append(kw) or stored(*a, **kw))
    records = phone.import_reports([OK, PARTIAL], store, job=_job())
    assert made == [r["model"] for r in records] and len(made) == len(store.records("latency"))
    assert all(kw["same_run"][0] == "report_created" for kw in looked_up)
    made.clear()
    phone.import_reports([OK, PARTIAL], store, job=_job())
    assert made == []  # stored already: nothing made
