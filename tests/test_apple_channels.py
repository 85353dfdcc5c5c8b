"""The iPhone and Mac path held to what Xcode and Core ML really do (issue 29): the three channels a report takes
to the host (marked lines, the result bundle's attachments found through ``manifest.json``, the app's container),
each record saying which one delivered it; phones as ``devicectl`` sees them (idle or locked, an ambiguous name,
destinations by UDID); and Core ML's compute plan imported as an ``explain`` record with a placement summary.

The fixtures in ``tests/fixtures/apple/`` are shaped like the real output (``README.md`` there says how); the
simulated Mac is the one of ``test_apple_measure``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mobileone_bench.devices.apple import destinations, placement, xcodebuild
from mobileone_bench.errors import DeviceUnavailableError, ReportError, UsageError
from mobileone_bench.pipeline import phone
from mobileone_bench.store import operators
from mobileone_bench.store.records import ResultsStore
from tests.test_apple_measure import (  # noqa: F401 - harness and exports are fixtures
    PARTIAL,
    FakeMac,
    _harness_lines,
    _job,
    _on_mac,
    _report_of,
    _specs,
    exports,
    harness,
    write_xcresult_export,
)

APPLE = Path(__file__).parent / "fixtures" / "apple"
HARNESS = Path(__file__).parent / "fixtures" / "harness"
JANE = "00008101-001A2D3C0E91002E"
KIM = "00008130-0012345678ABCDEF"
LAB_A, LAB_B = "00008101-000B2C3D4E5F002E", "00008101-000C0000000000EE"


def _plan(**changes) -> dict:
    return {**json.loads((APPLE / "compute_plan_ok.json").read_text()), **changes}


# ------------------------------------------------------------------------------------ result bundle manifest


def test_attachments_are_found_through_the_manifest_never_by_extension(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(APPLE / "xcresult_export", folder)
    found = xcodebuild.manifest_attachments(folder)
    # the headless test's three attachments, in manifest order, named as the test named them; not the screenshot
    # of another test, nor the report file the manifest does not list
    assert [(a.path.name, a.name) for a in found] == [
        ("0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D.json", "mobileone-bench-compute-plan-20261128T120000Z-mobileone_s0.json"),
        ("6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9.json", "mobileone-bench-20261128T120000Z.json"),
        ("2B3C4D5E-6F70-4182-93A4-B5C6D7E8F901", "mobileone-bench-20261128T123000Z.json")]
    assert {(a.test, a.device_id, a.device_name) for a in found} == {
        ("HeadlessBenchmarkTests/testBenchmarkBundledModels()", JANE, "Jane's iPhone")}

    warnings: list[str] = []
    documents = xcodebuild.attachment_documents(folder, warnings.append)
    assert [(kind, doc["channel"]) for _a, kind, doc in documents] == [
        ("plan", "attachment"), ("run", "attachment"), ("run", "attachment")]
    plan, ok, partial = (doc for _a, _k, doc in documents)
    assert plan["model"] == "mobileone_s0" and plan["status"] == "ok"
    assert [r["model"] for r in ok["results"]] == ["mobileone_s0", "mobileone_s1"]
    assert partial["created"] == "2026-11-28T12:30:00Z"  # read although its file has no extension
    assert warnings == []

    # a broken document is a warning naming the attachment; no manifest, nothing
    (folder / "6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9.json").write_text('{"schema": "mobileone-bench/harness-report"')
    assert len(xcodebuild.attachment_documents(folder, warnings.append)) == 2
    assert len(warnings) == 1 and warnings[0].startswith("mobileone-bench-20261128T120000Z.json:")
    (folder / "manifest.json").unlink()
    assert xcodebuild.manifest_attachments(folder) == []


def test_each_record_says_which_channel_delivered_it(monkeypatch, tmp_path, harness, exports):
    """Three models: the first's marked line arrives; the second's is lost, its attachment is in the result bundle;
    the third is neither in the output nor attached (the test crashed before attaching): the app's container has
    it. Every record names its channel."""
    fake = FakeMac(harness)
    from datetime import datetime, timezone

    def xcodebuild_run():
        config = json.loads((harness / "App" / "run_config.json").read_text())
        lines = _harness_lines(config, ["mobileone_s0", "mobileone_s1", "mobileone_s4"], PARTIAL["device"])
        s0, s1, s4 = (_report_of(line) for line in lines if line.startswith("2026") or line.startswith("MOBILE"))
        fake.attachments = [s1]
        fake.container = [{**s0, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "results": s0["results"] + s1["results"] + s4["results"]}]
        return 65, lines[:3] + ["Restarting after unexpected exit, crash, or test timeout"]

    fake.xcodebuild = xcodebuild_run
    _on_mac(monkeypatch, fake)
    records = phone.measure(_specs("mobileone_s0", "mobileone_s1", "mobileone_s4"), _job(tmp_path=tmp_path),
                            ResultsStore(tmp_path / "results"), destination=JANE, harness_dir=harness,
                            team="ABCDE12345")
    assert [(r["model"], r["status"], r["report_channel"]) for r in records] == [
        ("mobileone_s0", "ok", "stdout"), ("mobileone_s1", "ok", "attachment"), ("mobileone_s4", "ok", "container")]
    (copy,) = [c for c in fake.calls if c[2:5] == ["device", "copy", "from"]]
    assert copy[copy.index("--domain-type") + 1] == "appDataContainer"


def test_an_imported_report_says_it_came_from_a_file(tmp_path):
    (record,) = phone.import_reports([str(HARNESS / "report_thermal.json")], ResultsStore(tmp_path / "r"),
                                     job=_job(tmp_path=tmp_path), on_warning=lambda _m: None)
    assert record["report_channel"] == "report-file"


# -------------------------------------------------------------------------------------- phones as devicectl sees them


@pytest.fixture
def seen() -> list[destinations.Device]:
    return destinations.parse_devicectl(json.loads((APPLE / "devicectl_idle_locked_twins.json").read_text()))


def test_an_idle_or_locked_phone_is_not_connected_and_says_what_to_do(seen):
    jane, kim, *_ = seen
    assert jane.ready and (kim.reachable, kim.connected, kim.ready) == (True, False, False)
    with pytest.raises(DeviceUnavailableError) as info:
        destinations.select_device(seen, "Kim's iPhone")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Kim's iPhone (iPhone 15, iOS 18.1, {KIM}) is idle or locked (devicectl: "
                              f"tunnelState disconnected, transportType localNetwork, ddiServicesAvailable false")
    assert "unlock it and keep it awake" in message
    # alone among the phones that are not ready, it is the one line said when no phone is named
    only_kim = [d for d in seen if d.name == "Kim's iPhone"]
    with pytest.raises(DeviceUnavailableError, match=r"^Kim's iPhone .* is idle or locked"):
        destinations.select_device(only_kim, None)
    off = next(d for d in seen if d.name == "Dev-off iPhone")
    assert "has Developer Mode off" in str(off.problem()) and "Settings > Privacy & Security" in str(off.problem())


def test_a_name_two_phones_share_is_one_clear_line_and_udids_resolve_it(seen):
    with pytest.raises(UsageError) as info:
        destinations.select_device(seen, "lab iphone, bench")
    message = str(info.value)
    assert message.startswith("2 devices are named 'lab iphone, bench' (Lab iPhone, bench (iPhone 12, iOS 17.5.1, "
                              f"{LAB_A}); Lab iPhone, bench (iPhone 12, iOS 17.5.1, {LAB_B})); name one by its UDID")
    with pytest.raises(UsageError, match="2 devices are named"):
        destinations.select_devices(seen, [JANE, "Lab iPhone, bench"])
    chosen = destinations.select_device(seen, LAB_B)
    assert xcodebuild.commands.xcodebuild_destination(chosen) == f"id={LAB_B}"  # the comma never reaches xcodebuild


class _LockedTwinsMac(FakeMac):
    """A Mac whose devicectl lists two phones, one of them idle or locked."""

    def _respond(self, argv, cwd):
        if argv[:4] == ["xcrun", "devicectl", "list", "devices"]:
            shutil.copy(APPLE / "devicectl_idle_locked_twins.json", argv[argv.index("--json-output") + 1])
            return 0, []
        return super()._respond(argv, cwd)


def test_a_locked_phone_among_several_is_recorded_with_the_reason(monkeypatch, tmp_path, harness, exports):
    fake = _LockedTwinsMac(harness)
    _on_mac(monkeypatch, fake)
    records = phone.measure(_specs("mobileone_s0"), _job(tmp_path=tmp_path), ResultsStore(tmp_path / "results"),
                            destination=[JANE, "Kim's iPhone"], harness_dir=harness, team="ABCDE12345")
    assert [(r["env_device_name"], r["status"]) for r in records] == [("Jane's iPhone", "ok"),
                                                                       ("Kim's iPhone", "failed")]
    assert "is idle or locked" in records[1]["error"] and "unlock it" in records[1]["error"]
    (build,) = [c for c in fake.calls if c[0] == "xcodebuild"]
    assert [build[i + 1] for i, a in enumerate(build) if a == "-destination"] == [f"id={JANE}"]


def test_cli_a_locked_phone_is_one_line(monkeypatch, tmp_path, harness, runner, cli):
    _on_mac(monkeypatch, _LockedTwinsMac(harness))
    result = runner.invoke(cli, ["latency", "mobileone_s0", "--device", "iphone", "--destination", "Kim's iPhone",
                                 "--team", "ABCDE12345", "--harness", str(harness),
                                 "--results", str(tmp_path / "results")])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: Kim's iPhone (iPhone 15, iOS 18.1, "), result.output
    assert "idle or locked" in lines[0] and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------------ compute plan


def test_mil_operations_map_onto_the_shared_categories():
    assert placement.category("ios17.conv") == "dense-conv"
    assert placement.category("ios17.conv", conv_kind="depthwise-conv") == "depthwise-conv"
    assert placement.category("ios16.linear") == "linear"
    assert placement.category("relu") == "activation"
    assert placement.category("ios17.add") == "elementwise"
    assert placement.category("ios17.reduce_mean") == "pooling"
    assert placement.category("ios17.reshape") == "data-movement"
    assert placement.category("ios18.something_new") == "other"
    assert placement.category("innerProduct", structure="neuralNetwork") == "linear"
    assert set(placement.MIL_CATEGORIES.values()) <= set(operators.CATEGORIES)
    assert set(placement.NN_CATEGORIES.values()) <= set(operators.CATEGORIES)


def test_compute_plan_rows_follow_the_operator_schema():
    rows = placement.operator_rows(_plan())
    assert [r["name"] for r in rows][:3] == ["input_cast", "var_17", "var_19"]  # the const is placed nowhere: out
    assert len(rows) == 9 and all(set(r) == set(operators.OPERATOR_FIELDS) for r in rows)
    conv = rows[1]
    assert (conv["op_type"], conv["category"], conv["device"], conv["supported_devices"], conv["cost"],
            conv["time_ms"]) == ("ios17.conv", "dense-conv", "neural-engine", ["cpu", "gpu", "neural-engine"], 0.3,
                                 None)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert conv["share"] == pytest.approx(0.3 / 1.0)
    summary = placement.summary(rows)
    assert (summary["placement_ops_neural_engine"], summary["placement_ops_gpu"], summary["placement_ops_cpu"]) == (
        6, 1, 2)
    assert summary["placement_cost_neural_engine"] == pytest.approx(0.954)
    assert summary["placement_cost_gpu"] == pytest.approx(0.006)
    assert summary["placement_off_neural_engine"] == [
        "ios17.reduce_mean var_40 -> gpu", "ios17.reshape var_44 -> cpu", "ios17.softmax var_50 -> cpu"]


@pytest.mark.parametrize("change, fragment", [
    ({"schema_version": 2}, "schema_version 2"),
    ({"status": "maybe"}, "status 'maybe'"),
    ({"operations": [{"name": "x"}]}, "/operations/0: an operation needs its operator"),
    ({"operations": [{"operator": "conv", "cost": -1}]}, "/operations/0/cost"),
])
def test_a_broken_compute_plan_is_one_line(change, fragment):
    with pytest.raises(ReportError) as info:
        placement.parse_plan(_plan(**change), "plan.json")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_import_stores_the_compute_plan_next_to_the_latency_record(tmp_path):
    store = ResultsStore(tmp_path / "results")
    records = phone.import_reports([str(HARNESS / "report_ok.json"), str(APPLE / "compute_plan_ok.json")], store,
                                   job=_job(tmp_path=tmp_path))
    s0, s1 = records
    assert (s0["placement"], s0["placement_ops_neural_engine"], s0["placement_off_neural_engine_count"]) == (
        "compute-plan", 6, 3)
    assert s1["placement"] == "unavailable" and s1["placement_error"] == "the harness reported no compute plan"
    (explain,) = store.records(operators.KIND)
    assert explain["source"] == "compute-plan" and explain["status"] == "ok"
    assert explain["model"] == "mobileone_s0" and explain["machine"] == "iPhone13,2"
    assert explain["latency_record_id"] == s0["record_id"] and explain["report_channel"] == "report-file"
    assert explain["env_os"] == "iOS 17.5.1" and explain["total_op_ms"] is None
    rows = operators.operator_rows(explain)
    assert len(rows) == 9 and rows[1]["device"] == "neural-engine"
    categories = explain["categories"] if isinstance(explain["categories"], dict) else json.loads(explain["categories"])
    assert categories == json.loads(json.dumps(operators.category_totals(rows)))
    assert categories["dense-conv"]["count"] == 2 and categories["dense-conv"]["time_ms"] is None

    # imported again: the plan is not stored twice
    phone.import_reports([str(HARNESS / "report_ok.json"), str(APPLE / "compute_plan_ok.json")], store,
                         job=_job(tmp_path=tmp_path))
    assert len(store.records(operators.KIND)) == 1


def test_an_older_os_says_the_plan_is_unavailable(tmp_path):
    store = ResultsStore(tmp_path / "results")
    report = tmp_path / "report.json"
    report.write_text((HARNESS / "report_ok.json").read_text())
    (s0, _s1) = phone.import_reports([str(report), str(APPLE / "compute_plan_unavailable.json")], store,
                                     job=_job(tmp_path=tmp_path))
    assert s0["placement"] == "unavailable"
    assert s0["placement_error"] == "MLComputePlan needs iOS 17.4 or macOS 14.4"
    assert store.records(operators.KIND) == []


def test_measured_plans_arrive_on_the_marked_lines_and_in_the_bundle(monkeypatch, tmp_path, harness, exports):
    """The first model's plan is a marked line of the output, the second's only an attachment."""
    fake = FakeMac(harness)

    def xcodebuild_run():
        config = json.loads((harness / "App" / "run_config.json").read_text())
        lines = _harness_lines(config, ["mobileone_s0", "mobileone_s1"], PARTIAL["device"])
        created = _report_of(lines[2])["created"]
        first = _plan(created=created)
        second = _plan(created=created, model="mobileone_s1", file="mobileone_s1.mlmodelc")
        fake.attachments = [second]
        line = placement.MARKER + " " + json.dumps(first, sort_keys=True, separators=(",", ":"))
        return 0, [lines[0], line] + lines[1:] + ["** TEST SUCCEEDED **"]

    fake.xcodebuild = xcodebuild_run
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    records = phone.measure(_specs("mobileone_s0", "mobileone_s1"), _job(tmp_path=tmp_path), store,
                            destination=JANE, harness_dir=harness, team="ABCDE12345")
    assert [(r["report_channel"], r["placement"]) for r in records] == [("stdout", "compute-plan"),
                                                                         ("stdout", "compute-plan")]
    explains = store.records(operators.KIND)
    assert [(e["model"], e["report_channel"], e["device_id"]) for e in explains] == [
        ("mobileone_s0", "stdout", JANE), ("mobileone_s1", "attachment", JANE)]


def test_convolution_kinds_come_from_the_exported_program(tmp_path):
    """The compute plan names operations only; the exported ML program says which convolution is depthwise,
    pointwise, grouped or dense (read with coremltools, on any host)."""
    torch = pytest.importorskip("torch")
    ct = pytest.importorskip("coremltools")
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.Conv2d(8, 16, 1), torch.nn.Conv2d(16, 16, 3, padding=1, groups=4)).eval()
    x = torch.randn(1, 3, 16, 16)
    program = ct.convert(torch.jit.trace(model, x), inputs=[ct.TensorType(name="input", shape=x.shape)],
                         convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    package = tmp_path / "tiny.mlpackage"
    program.save(str(package))
    kinds = placement.conv_kinds(package)
    assert sorted(kinds.values()) == ["dense-conv", "depthwise-conv", "grouped-conv", "pointwise-conv"]
    # a plan naming those outputs gets their categories
    operations = [{"function": "main", "name": name, "operator": "ios16.conv", "preferred": "neural_engine",
                   "supported": ["neural_engine"], "cost": 0.25} for name in kinds]
    rows = placement.operator_rows(_plan(operations=operations, conv_kinds=kinds))
    assert sorted(r["category"] for r in rows) == sorted(kinds.values())
    assert placement.conv_kinds(tmp_path / "missing.mlpackage") == {}
