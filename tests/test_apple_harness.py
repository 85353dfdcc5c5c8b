"""The plumbing between mobileone_bench and the Swift harness: the report contract, marked lines, the run
configuration, staging, the argv of every external command, device lists and the command wrapper."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import jsonschema
import pytest

from mobileone_bench.devices.apple import commands, destinations, xcodebuild
from mobileone_bench.devices.apple import report as harness_report
from mobileone_bench.errors import DeviceUnavailableError, MissingDependencyError, ReportError, UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "harness"


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ the contract


def test_schema_contract_report_ok_is_valid():
    """The Python side accepts the very file the Swift tests decode (SchemaContractTests.swift)."""
    doc = _load("report_ok.json")
    assert harness_report.report_problems(doc) == []
    jsonschema.Draft202012Validator(harness_report.load_schema()).validate(doc)
    runs = harness_report.read_reports(FIXTURES / "report_ok.json")
    assert runs == [doc]
    assert harness_report.report_problems(_load("report_partial_failure.json")) == []


def test_schema_is_the_packaged_shared_file():
    schema = harness_report.load_schema()
    assert schema["$id"] == "https://mobileone-bench.invalid/harness-report-1.json"
    assert schema["properties"]["schema_version"]["const"] == harness_report.SCHEMA_VERSION
    assert schema["properties"]["schema"]["const"] == harness_report.SCHEMA_NAME
    assert tuple(schema["$defs"]["compute_units"]["enum"]) == harness_report.COMPUTE_UNITS


def test_malformed_report_is_one_line_naming_file_and_every_defect():
    path = FIXTURES / "report_malformed.json"
    with pytest.raises(ReportError) as info:
        harness_report.read_reports(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: invalid harness report: /schema_version: 1 was expected")
    assert "/results/0/status: 'success' is not one of ['ok', 'error']" in message
    assert "/results/1/samples_ms/3: -0.5 is less than the minimum of 0" in message


def test_ok_result_must_hold_exactly_runs_samples(tmp_path):
    doc = _load("report_ok.json")
    doc["results"][1]["samples_ms"].pop()
    with pytest.raises(ReportError, match=r"/results/1/samples_ms: 19 samples for runs = 20"):
        harness_report.read_reports(_write(tmp_path, "short.json", json.dumps(doc)))


def test_long_values_are_shortened_in_messages():
    doc = _load("report_ok.json")
    doc["results"][0]["status"] = "error"
    doc["results"][0]["error"] = "load failed"
    problems = harness_report.report_problems(doc)
    assert problems == ["/results/0/samples_ms: a list of 20 items is expected to be empty",
                        "/results/0/summary: an object is not of type 'null'"]


def test_one_of_errors_name_the_inner_problem():
    doc = _load("report_ok.json")
    doc["results"][0]["summary"]["n"] = 0
    assert harness_report.report_problems(doc) == ["/results/0/summary/n: 0 is less than the minimum of 1"]


@pytest.mark.parametrize("text, fragment", [
    ('{"schema": ', "not valid JSON (line 1, column 12"),
    ('{"schema": NaN}', "NaN is not a JSON number"),
    ("[1, 2]", "no harness report in it"),
    ("hello\nworld\n", "no harness report in it"),
    ("MOBILEONE_BENCH_REPORT {oops}\n", "line 1: not valid JSON"),
])
def test_unusable_files_are_one_line_errors(tmp_path, text, fragment):
    path = _write(tmp_path, "bad.txt", text)
    with pytest.raises(ReportError) as info:
        harness_report.read_reports(path)
    assert str(path) in str(info.value) and fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_file_is_a_report_error(tmp_path):
    with pytest.raises(ReportError, match="cannot read"):
        harness_report.read_reports(tmp_path / "absent.json")


def test_other_json_objects_are_rejected_by_the_schema(tmp_path):
    with pytest.raises(ReportError, match=r"other\.json: invalid harness report: .*/: 'schema' is a required "
                                          r"property; .*; and 4 more$"):
        harness_report.read_reports(_write(tmp_path, "other.json", '{"a": 1}'))


# ------------------------------------------------------------------------------------------------ marked lines


def test_log_lines_merge_into_the_partial_failure_report():
    """The fixture's contract: the 3 marked lines, concatenated, are report_partial_failure.json."""
    runs = harness_report.read_reports(FIXTURES / "xcodebuild_test_output.txt")
    assert runs == [_load("report_partial_failure.json")]


@pytest.mark.parametrize("line, expected", [
    ('MOBILEONE_BENCH_REPORT {"a":1}', '{"a":1}'),
    ('2026-11-28 12:00:00.1+0000 App[1:2] MOBILEONE_BENCH_REPORT {"a":1}  \r', '{"a":1}'),
    ('MOBILEONE_BENCH_REPORT{"a":1}', None),
    ("MOBILEONE_BENCH_REPORT written", None),
    ("[mobileone-bench] mobileone_s0: load 98.765 ms", None),
])
def test_marker_is_found_anywhere_in_a_line(line, expected):
    assert harness_report.marked_json(line) == expected


def test_bad_marked_line_names_its_line_number(tmp_path):
    doc = _load("report_ok.json")
    doc["schema_version"] = 2
    log = _write(tmp_path, "run.log", "noise\n" + harness_report.MARKER + " " + json.dumps(doc) + "\n")
    with pytest.raises(ReportError, match=r"run\.log line 2: invalid harness report: /schema_version"):
        harness_report.read_reports(log)


def test_lines_of_different_runs_stay_apart():
    first = _load("report_ok.json")
    second = copy.deepcopy(first)
    second["created"] = "2026-11-28T13:00:00Z"
    lines = [{**r, "results": [res]} for r in (first, second) for res in r["results"]]
    runs = harness_report.merge_runs(lines)
    assert [r["created"] for r in runs] == [first["created"], second["created"]]
    assert runs[0] == first and len(runs[1]["results"]) == 2


def test_reports_in_folder_skips_other_json(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "manifest.json").write_text('[{"attachments": []}]')
    (tmp_path / "sub" / "mobileone-bench-20261128T120000Z.json").write_text(
        (FIXTURES / "report_ok.json").read_text())
    (tmp_path / "broken.json").write_text("{")
    assert harness_report.reports_in_folder(tmp_path) == [_load("report_ok.json")]


# --------------------------------------------------------------------------------------- run config and staging


def test_run_config_validates_against_the_schema_def():
    config = harness_report.make_run_config(warmup=1, runs=1000, compute_units="cpu_and_ne",
                               models=["mobileone_s0", "timm__resnet18"], tag="mobileone-bench 0.1.0")
    jsonschema.Draft202012Validator(harness_report.load_schema()["$defs"]["run_config"]).validate(config)
    assert config == {"warmup": 1, "runs": 1000, "compute_units": "cpu_and_ne",
                      "models": ["mobileone_s0", "timm__resnet18"], "tag": "mobileone-bench 0.1.0"}
    example = _load("run_config.json")
    assert harness_report.make_run_config(**{"tag": None, **example}) == example


@pytest.mark.parametrize("override, fragment", [
    ({"runs": 0}, "/runs: 0 is less than the minimum of 1"),
    ({"compute_units": "gpu"}, "/compute_units: 'gpu' is not one of"),
    ({"models": ["models/mobileone_s0.mlmodelc"]}, "/models/0: 'models/mobileone_s0.mlmodelc' does not match"),
    ({"tag": "x" * 201}, "/tag: "),
])
def test_bad_run_config_is_a_usage_error(override, fragment):
    args = {"warmup": 1, "runs": 10, "compute_units": "all", "models": [], "tag": None, **override}
    with pytest.raises(UsageError, match="run configuration: ") as info:
        harness_report.make_run_config(**args)
    assert fragment in str(info.value)


def test_write_run_config(tmp_path):
    config = harness_report.make_run_config(warmup=0, runs=5, compute_units="all", models=["a"], tag=None)
    path = harness_report.write_run_config(tmp_path / "App" / "run_config.json", config)
    assert json.loads(path.read_text()) == config


def test_stage_models_replaces_everything_but_gitkeep(tmp_path):
    models = xcodebuild.staged_models_dir(tmp_path)
    models.mkdir(parents=True)
    (models / ".gitkeep").write_text("")
    (models / "old.mlmodelc").mkdir()
    (models / "old.mlmodelc" / "model.mil").write_text("old")
    (models / "stray.txt").write_text("x")
    compiled = {}
    for name in ("mobileone_s0", "timm__resnet18"):
        src = tmp_path / "compiled" / name / "model.mlmodelc"
        (src / "weights").mkdir(parents=True)
        (src / "weights" / "weight.bin").write_text(name)
        compiled[name] = src
    staged = xcodebuild.stage_models(tmp_path, compiled)
    assert staged == [models / "mobileone_s0.mlmodelc", models / "timm__resnet18.mlmodelc"]
    assert sorted(p.name for p in models.iterdir()) == [".gitkeep", "mobileone_s0.mlmodelc",
                                                         "timm__resnet18.mlmodelc"]
    assert (models / "timm__resnet18.mlmodelc" / "weights" / "weight.bin").read_text() == "timm__resnet18"


# ------------------------------------------------------------------------------------------- external commands


def test_argv_builders():
    p = Path
    assert commands.coremlcompiler_argv(p("m/model.mlpackage"), p("out")) == [
        "xcrun", "coremlcompiler", "compile", "m/model.mlpackage", "out"]
    assert commands.xcodegen_argv() == ["xcodegen", "generate"]
    assert commands.devicectl_argv(p("d.json")) == [
        "xcrun", "devicectl", "list", "devices", "--json-output", "d.json", "--timeout", "10"]
    assert commands.xcodebuild_argv(p("ios_harness/MobileOneBench.xcodeproj"), "00008101-001A2D3C0E91002E",
                             team="ABCDE12345", bundle_id="com.me.bench", result_bundle=p("t.xcresult")) == [
        "xcodebuild", "test", "-project", "ios_harness/MobileOneBench.xcodeproj", "-scheme", "MobileOneBenchApp",
        "-destination", "id=00008101-001A2D3C0E91002E",
        "-only-testing:MobileOneBenchAppTests/HeadlessBenchmarkTests", "-resultBundlePath", "t.xcresult",
        "DEVELOPMENT_TEAM=ABCDE12345", "APP_BUNDLE_ID=com.me.bench", "-allowProvisioningUpdates",
        "-allowProvisioningDeviceRegistration"]
    assert commands.xcodebuild_argv(p("x.xcodeproj"), "platform=iOS,name=Old iPhone 8", team="T", bundle_id="b",
                             result_bundle=p("t.xcresult"))[6:8] == ["-destination", "platform=iOS,name=Old iPhone 8"]
    assert commands.xcresult_attachments_argv(p("t.xcresult"), p("att")) == [
        "xcrun", "xcresulttool", "export", "attachments", "--path", "t.xcresult", "--output-path", "att"]
    assert commands.devicectl_copy_reports_argv("5C2A7E1B", "com.me.bench", p("out")) == [
        "xcrun", "devicectl", "device", "copy", "from", "--device", "5C2A7E1B", "--domain-type", "appDataContainer",
        "--domain-identifier", "com.me.bench", "--source", "Documents/reports", "--destination", "out"]
    assert commands.mac_runner_argv(p("ios_harness"), p("models"), p("run_config.json"), warmup=1, runs=1000,
                             compute_units="cpu_and_ne", out=p("report.json")) == [
        "swift", "run", "-c", "release", "--package-path", "ios_harness", "mobileone-harness", "--models", "models",
        "--config", "run_config.json", "--warmup", "1", "--runs", "1000", "--compute-units", "cpu_and_ne",
        "--out", "report.json"]
    assert commands.sysctl_argv("hw.model") == ["sysctl", "-n", "hw.model"]


def test_run_streams_combined_output():
    seen: list[str] = []
    code = "import sys; print('out 1'); print('err 1', file=sys.stderr, flush=True); print('out 2'); sys.exit(3)"
    result = commands.run([sys.executable, "-c", code], on_line=seen.append)
    assert result.returncode == 3
    assert sorted(seen) == ["err 1", "out 1", "out 2"] and list(result.tail) == seen
    assert commands.run([sys.executable, "-c", "print(1)"], keep=1).output == "1"


def test_run_missing_program_is_a_missing_dependency():
    with pytest.raises(MissingDependencyError, match="mobileone-bench-no-such-tool"):
        commands.run(["mobileone-bench-no-such-tool"])


def test_first_error_line():
    failed = (FIXTURES / "xcodebuild_signing_failure.txt").read_text().splitlines()
    assert commands.first_error_line(failed) == ("error: No Accounts: Add a new account in Accounts settings. "
                                          "(in target 'MobileOneBenchApp' from project 'MobileOneBench')")
    ok = (FIXTURES / "xcodebuild_test_output.txt").read_text().splitlines()
    assert commands.first_error_line(ok) is None  # the harness's "mobilevit_s: error: ..." is a result, not a failure
    assert commands.first_error_line(["Testing failed:", "** TEST FAILED **"]) == "** TEST FAILED **"


# ------------------------------------------------------------------------------------------------------ devices


@pytest.fixture
def devices() -> list[destinations.Device]:
    return destinations.parse_devicectl(_load("devicectl_list_devices.json"))


def test_parse_devicectl(devices):
    phone, ipad, watch, old = devices
    assert phone == destinations.Device(udid="00008101-001A2D3C0E91002E", identifier="5C2A7E1B-8D3F-4E6A-9B1C-2F4D6E8A0B13",
                             name="Jane's iPhone", product_type="iPhone13,2", marketing_name="iPhone 12",
                             platform="iOS", os_version="17.5.1", connected=True, reachable=True,
                             detail="tunnelState connected, transportType wired, ddiServicesAvailable true, "
                                    "pairingState paired, developerModeStatus enabled")
    assert phone.label() == "Jane's iPhone (iPhone 12, iOS 17.5.1, 00008101-001A2D3C0E91002E)"
    assert phone.ready and phone.problem() is None
    assert (ipad.connected, ipad.product_type, ipad.os_version) == (False, "iPad13,4", "17.4")
    assert (watch.platform, watch.connected) == ("watchOS", False)
    # some iOS 16 devices come with empty hardwareProperties: no UDID. iOS 16 has no CoreDevice tunnel, so a wired
    # link is a connection; but xcodebuild is given phones by UDID only, so it is not ready and says how to name it
    assert (old.udid, old.product_type, old.platform, old.connected, old.ready) == (None, None, None, True, False)
    assert old.label() == f"Old iPhone 8 (iOS 16.7.8, {old.identifier})"
    with pytest.raises(DeviceUnavailableError, match="devicectl reports no UDID for Old iPhone 8 .*--destination UDID"):
        commands.xcodebuild_destination(old)
    assert commands.xcodebuild_destination(phone) == "id=00008101-001A2D3C0E91002E"
    with pytest.raises(DeviceUnavailableError, match="no UDID"):
        destinations.select_device(devices, old.identifier)


def test_parse_devicectl_rejects_other_json():
    with pytest.raises(DeviceUnavailableError, match="no device list"):
        destinations.parse_devicectl({"info": {"outcome": "failed"}})


@pytest.mark.parametrize("destination", ["Jane's iPhone", "jane's iphone", "00008101-001a2d3c0e91002e",
                                         "5C2A7E1B-8D3F-4E6A-9B1C-2F4D6E8A0B13"])
def test_select_device_by_name_or_udid(devices, destination):
    assert destinations.select_device(devices, destination).product_type == "iPhone13,2"


def test_select_device_errors(devices):
    # the Old iPhone 8 is connected but has no UDID: Jane's is the only one ready
    assert destinations.select_device(devices, None).name == "Jane's iPhone"
    with pytest.raises(DeviceUnavailableError, match="Lab iPad .* is paired but not connected"):
        destinations.select_device(devices, "Lab iPad")
    with pytest.raises(DeviceUnavailableError, match="no iOS device 'Pixel' .*known: Jane's iPhone"):
        destinations.select_device(devices, "Pixel")
    with pytest.raises(DeviceUnavailableError, match="no iOS device"):
        destinations.select_device(devices, "Jane's Apple Watch")  # not an iOS device
    with pytest.raises(DeviceUnavailableError, match="no iPhone is connected to this Mac and ready.*Developer Mode"):
        destinations.select_device([d for d in devices if not d.connected], None)
    assert destinations.select_device(devices[:3], None).name == "Jane's iPhone"


@pytest.mark.parametrize("given, expected", [("17.5", "17.5.0"), ("17", "17.0.0"), ("17.5.1", "17.5.1"),
                                             ("18.0 beta", "18.0 beta")])
def test_os_version3(given, expected):
    assert harness_report.os_version3(given) == expected


# ------------------------------------------------------------------------------- per-model device conditions


def test_harness_02_fields_are_optional_and_checked():
    """runs_before_timing and conditions_before/after (harness 0.2) validate; 0.1 reports without them still do."""
    thermal = _load("report_thermal.json")
    assert harness_report.report_problems(thermal) == []
    assert harness_report.report_problems(_load("report_partial_failure.json")) == []  # harness 0.1: none of the new keys
    bad = json.loads(json.dumps(thermal))
    bad["results"][0]["conditions_after"]["thermal_state"] = "hot"
    bad["results"][0]["runs_before_timing"] = 0
    problems = harness_report.report_problems(bad)
    assert any(p.startswith("/results/0/conditions_after") for p in problems), problems
    assert any(p.startswith("/results/0/runs_before_timing") for p in problems), problems
    assert "Default 0" in harness_report.load_schema()["$defs"]["run_config"]["properties"]["warmup"]["description"]


def test_result_conditions_per_model_or_for_the_session():
    thermal = _load("report_thermal.json")
    got = harness_report.result_conditions(thermal["results"][0], thermal["device"])
    assert got["before"] == {"thermal_state": "fair", "low_power_mode": False}
    assert got["after"] == {"thermal_state": "serious", "low_power_mode": False}
    assert got["throttled"] == ["fair", "serious"] and got["low_power_mode"] is False
    old = _load("report_partial_failure.json")
    session = harness_report.result_conditions(old["results"][0], dict(old["device"], thermal_state="critical", low_power_mode=True))
    assert session["before"] == session["after"] == {"thermal_state": "critical", "low_power_mode": True}
    assert session["throttled"] == ["critical"] and session["low_power_mode"] is True
    nominal = harness_report.result_conditions(old["results"][0], old["device"])
    assert nominal["throttled"] == [] and nominal["low_power_mode"] is False
