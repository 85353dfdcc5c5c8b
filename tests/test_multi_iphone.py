"""Several iPhones in one run (issue 16, part 2): the command builders, device selection, the identity that keeps
two phones of one model apart, and the whole flow on a simulated Mac, concurrent (one ``xcodebuild`` with a
``-destination`` per phone) and ``sequential`` (one ``xcodebuild`` per phone).

The simulated Mac is the one of ``test_apple_measure`` (fakes behind ``commands.run``), here with four iPhones:
two iPhone 12 (``iPhone13,2``) on the same iOS, whose reports therefore look the same, an iPhone 15 on another iOS,
and a paired iPhone 12 that is not connected. Each phone answers through the channel the test gives it: marked
lines in the shared output, the result bundle's attachments (``manifest.json`` naming the device), its own app
container, or nothing at all.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mobileone_bench.devices.apple import commands, destinations, xcodebuild
from mobileone_bench.devices.apple import report as harness_report
from mobileone_bench.pipeline import phone as executor
from mobileone_bench.errors import DeviceUnavailableError, MeasurementError, UsageError
from mobileone_bench.store.records import ResultsStore, record_key
from tests.test_apple_measure import (  # noqa: F401 - harness and exports are fixtures
    FIXTURES,
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

JANE = "00008101-001A2D3C0E91002E"  # Jane's iPhone, iPhone 12, iOS 17.5.1 (the shared fixture)
JANE_ID = "5C2A7E1B-8D3F-4E6A-9B1C-2F4D6E8A0B13"
LAB = "00008101-000B2C3D4E5F002E"  # Lab iPhone 12: same model, same iOS
LAB_ID = "AAAA1111-2222-4333-8444-555566667777"
KIM = "00008130-0012345678ABCDEF"  # Kim's iPhone 15, iOS 18.1
KIM_ID = "BBBB1111-2222-4333-8444-555566667777"
SPARE = "00008101-000C0000000000EE"  # Spare iPhone 12: paired, not connected
KIM_DEVICE = {**PARTIAL["device"], "model_identifier": "iPhone16,1", "os_version": "18.1.0"}
OLD_UDID = "0123456789abcdef0123456789abcdef01234567"  # the fixture's Old iPhone 8, whose UDID devicectl does not give
OLD_DEVICE = {**PARTIAL["device"], "model_identifier": "iPhone10,4", "os_version": "16.7.8"}


def _devicectl_json() -> dict:
    """The shared fixture (Jane's iPhone, a disconnected iPad, a watch, an old iPhone 8) plus four iPhones: the Lab
    iPhone 12, Kim's iPhone 15, a Spare iPhone 12 that is not connected, and a connected iPhone with Developer Mode
    off."""
    doc = json.loads((FIXTURES / "devicectl_list_devices.json").read_text())
    jane = doc["result"]["devices"][0]

    def phone(name: str, udid: str, ident: str, **changes: Any) -> dict:
        d = copy.deepcopy(jane)
        d["identifier"] = ident
        d["deviceProperties"]["name"] = name
        d["hardwareProperties"]["udid"] = udid
        for path, value in changes.items():
            section, key = path.split(".")
            d[section][key] = value
        return d

    doc["result"]["devices"] += [
        phone("Lab iPhone 12", LAB, LAB_ID),
        phone("Kim's iPhone 15", KIM, KIM_ID, **{"hardwareProperties.productType": "iPhone16,1",
                                                  "hardwareProperties.marketingName": "iPhone 15",
                                                  "deviceProperties.osVersionNumber": "18.1"}),
        phone("Spare iPhone 12", SPARE, "CCCC1111-2222-4333-8444-555566667777",
              **{"connectionProperties.transportType": None, "connectionProperties.tunnelState": "unavailable"}),
        phone("Dev-off iPhone", "00008101-000D0000000000DD", "DDDD1111-2222-4333-8444-555566667777",
              **{"deviceProperties.developerModeStatus": "disabled"}),
    ]
    return doc


def _shifted(report: dict, by: float) -> dict:
    """A report whose samples (and display summary) are ``by`` ms slower: another phone's numbers."""
    out = copy.deepcopy(report)
    for r in out["results"]:
        r["samples_ms"] = [x + by for x in r["samples_ms"]]
        for k in ("min", "median", "mean", "p90", "p99", "trimmed_mean"):
            r["summary"][k] += by
    return out


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SeveralPhones(FakeMac):
    """A Mac with the phones of :func:`_devicectl_json`; ``channel`` says how each UDID's reports come back:
    ``marked`` (lines in the output), ``attachment`` (result bundle, manifest naming the device), ``container``
    (its own app container, 0.1 ms slower than Jane's numbers), ``none`` (install failed: an error line naming it).
    A phone's reports hold the iOS and model it has (Kim's iPhone 15: iPhone16,1, iOS 18.1.0)."""

    def __init__(self, harness_dir: Path, channel: dict[str, str], *, build_fails: set[str] = frozenset()):
        super().__init__(harness_dir)
        self.channel = channel
        self.build_fails = build_fails  # sequential: these UDIDs get a signing failure and exit 65
        self.containers: dict[str, list[dict]] = {}
        self.bundles: list[str] = []

    def _reports(self, udid: str) -> list[dict]:
        config = json.loads((self.harness / "App" / "run_config.json").read_text())
        device = {KIM: KIM_DEVICE, OLD_UDID: OLD_DEVICE}.get(udid, PARTIAL["device"])
        lines = _harness_lines(config, config["models"], device)
        reports = [_report_of(line) for line in lines if harness_report.MARKER in line]
        return [_shifted(r, 0.1) for r in reports] if udid == LAB else reports

    def _respond(self, argv: list[str], cwd: Path | None) -> tuple[int, list[str]]:
        if argv[0] == "xcrun" and argv[1] == "devicectl" and argv[2:4] == ["list", "devices"]:
            Path(argv[argv.index("--json-output") + 1]).write_text(json.dumps(_devicectl_json()))
            return 0, []
        if argv[0] == "xcodebuild":
            self.bundles.append(argv[argv.index("-resultBundlePath") + 1])
            udids = [argv[i + 1].removeprefix("id=") for i, a in enumerate(argv) if a == "-destination"]
            lines: list[str] = []
            self.attachments = []
            for udid in udids:
                if udid in self.build_fails:
                    return 65, (FIXTURES / "xcodebuild_signing_failure.txt").read_text().splitlines()
                how = self.channel[udid]
                reports = self._reports(udid)
                if how == "marked":
                    lines += [harness_report.MARKER + " " + json.dumps(r) for r in reports]
                elif how == "attachment":
                    lines += [harness_report.MARKER + " " + json.dumps(r) for r in reports]  # ambiguous when twins
                    self.attachments += [(r, udid) for r in reports]
                elif how == "container":
                    whole = {**reports[0], "created": _now(), "results": [r["results"][0] for r in reports]}
                    self.containers[udid] = [whole]
                else:
                    lines.append(f"xcodebuild: error: Failed to install the app on the device ({udid}).")
            return (65 if "none" in [self.channel[u] for u in udids] else 0), lines + ["** TEST EXECUTE DONE **"]
        if argv[0] == "xcrun" and argv[1] == "xcresulttool":
            write_xcresult_export(Path(argv[argv.index("--output-path") + 1]), self.attachments)
            return 0, []
        if argv[0] == "xcrun" and argv[2:5] == ["device", "copy", "from"]:
            ident = argv[argv.index("--device") + 1]
            udid = {JANE_ID: JANE, LAB_ID: LAB, KIM_ID: KIM}.get(ident, ident)
            if udid not in self.containers:
                return 1, ["ERROR: no such file"]
            out = Path(argv[argv.index("--destination") + 1])
            assert not any(out.iterdir())  # a folder of its own
            for i, report in enumerate(self.containers[udid]):
                (out / f"mobileone-bench-{i}.json").write_text(json.dumps(report))
            return 0, []
        return super()._respond(argv, cwd)


def _xcodebuilds(fake: FakeMac) -> list[list[str]]:
    return [c for c in fake.calls if c[0] == "xcodebuild"]


def _destinations(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-destination"]


# ---------------------------------------------------------------------------------------------- command lines


def test_xcodebuild_argv_with_several_destinations():
    argv = commands.xcodebuild_argv(Path("p.xcodeproj"), [f"id={JANE}", "platform=iOS,name=Old iPhone 8", LAB],
                                    team="T", bundle_id="b", result_bundle=Path("t.xcresult"))
    assert argv == [
        "xcodebuild", "test", "-project", "p.xcodeproj", "-scheme", "MobileOneBenchApp",
        "-destination", f"id={JANE}", "-destination", "platform=iOS,name=Old iPhone 8", "-destination", f"id={LAB}",
        "-maximum-concurrent-test-device-destinations", "3",
        "-only-testing:MobileOneBenchAppTests/HeadlessBenchmarkTests", "-resultBundlePath", "t.xcresult",
        "DEVELOPMENT_TEAM=T", "APP_BUNDLE_ID=b", "-allowProvisioningUpdates", "-allowProvisioningDeviceRegistration"]
    # one destination, as a list or not: the single-phone command line, without the concurrency flag
    one = commands.xcodebuild_argv(Path("p.xcodeproj"), [JANE], team="T", bundle_id="b",
                                   result_bundle=Path("t.xcresult"))
    assert one == commands.xcodebuild_argv(Path("p.xcodeproj"), JANE, team="T", bundle_id="b",
                                           result_bundle=Path("t.xcresult"))
    assert "-maximum-concurrent-test-device-destinations" not in one
    with pytest.raises(UsageError, match="at least one destination"):
        commands.xcodebuild_argv(Path("p"), [], team="T", bundle_id="b", result_bundle=Path("t"))


def test_attachment_devices_reads_the_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps([
        {"testIdentifier": "A/b()", "attachments": [
            {"exportedFileName": "one.json", "deviceId": JANE, "deviceName": "Jane's iPhone"},
            {"exportedFileName": "two.json"}]},
        {"testIdentifier": "A/c()"}, "junk"]))
    assert xcodebuild.attachment_devices(tmp_path) == {
        "one.json": {"id": JANE, "name": "Jane's iPhone"}, "two.json": {"id": None, "name": None}}
    assert xcodebuild.attachment_devices(tmp_path / "nowhere") == {}


# --------------------------------------------------------------------------------------------------- devices


@pytest.fixture
def devices() -> list[destinations.Device]:
    return destinations.parse_devicectl(_devicectl_json())


def test_all_is_every_connected_paired_available_ios_device(devices):
    chosen = destinations.select_devices(devices, ["all"])
    # not the disconnected iPad, the watch, the Spare iPhone (not connected), the one with Developer Mode off nor
    # the Old iPhone 8 (connected, but devicectl gives no UDID and xcodebuild is given phones by UDID only)
    assert [d.name for d in chosen] == ["Jane's iPhone", "Lab iPhone 12", "Kim's iPhone 15"]
    assert destinations.select_devices(devices, ["ALL"]) == chosen
    off = next(d for d in devices if d.name == "Dev-off iPhone")
    assert (off.connected, off.paired, off.available) == (True, True, False)
    unpaired = destinations.parse_devicectl({"result": {"devices": [
        {**_devicectl_json()["result"]["devices"][0],
         "connectionProperties": {"pairingState": "unpaired", "transportType": "wired"}}]}})
    assert unpaired[0].paired is False
    with pytest.raises(DeviceUnavailableError, match="no connected, paired and available iOS device"):
        destinations.select_devices(unpaired, ["all"])


def test_select_devices_named(devices):
    chosen = destinations.select_devices(devices, ["lab iphone 12", JANE, JANE_ID, "Spare iPhone 12"])
    assert [d.name for d in chosen] == ["Lab iPhone 12", "Jane's iPhone", "Spare iPhone 12"]  # once each, in order
    assert [d.connected for d in chosen] == [True, True, False]  # the caller records the Spare as failed


@pytest.mark.parametrize("names, error, fragment", [
    (["all", "Jane's iPhone"], UsageError, "give it alone"),
    (["Jane's iPhone", " "], UsageError, "needs a device name"),
    ([], UsageError, "needs a device name"),
    (["Jane's iPhone", "Pixel 8"], DeviceUnavailableError, "no iOS device 'Pixel 8'"),
    (["Spare iPhone 12", "Lab iPad"], DeviceUnavailableError, "none of the named devices is ready: Spare iPhone 12"),
])
def test_select_devices_errors(devices, names, error, fragment):
    with pytest.raises(error) as info:
        destinations.select_devices(devices, names)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# -------------------------------------------------------------------------------------------------- identity


def test_two_phones_of_one_model_get_distinct_keys_and_imports_keep_theirs(tmp_path, devices):
    store = ResultsStore(tmp_path / "results")
    job = _job(tmp_path=tmp_path).resolved()
    jane, lab = (next(d for d in devices if d.udid == u) for u in (JANE, LAB))
    old = next(d for d in devices if d.name == "Old iPhone 8")
    (spec,) = _specs("mobileone_s0")
    device = {"model_identifier": "iPhone13,2", "os_name": "iOS", "os_version": "17.5.1"}

    def identity(device_of):
        recorder = executor._Records(store, job, force=False, source="measured", warn=print, phone=device_of)
        return recorder.identity(spec.name, spec, device, executor.RUNNER_IOS_APP, warmup=1, runs=20,
                                 compute_units="cpu_and_ne", input_shape=[1, 3, 224, 224])

    with_jane, with_lab, without = identity(jane), identity(lab), identity(None)
    assert with_jane["device_id"] == JANE and with_lab["device_id"] == LAB
    assert identity(old)["device_id"] == old.identifier  # no UDID: the CoreDevice identifier
    assert record_key(with_jane) != record_key(with_lab)
    # the only change: device_id added; an imported report (no phone known) keeps the identity it always had
    assert {k: v for k, v in with_jane.items() if k != "device_id"} == without
    assert "device_id" not in without and with_jane["machine"] == "iPhone13,2"


# ------------------------------------------------------------------------------------------- simulated Mac


def _measure(store: ResultsStore, tmp_path: Path, harness_dir: Path, destination: Any, **kw: Any) -> list[dict]:
    return executor.measure(_specs("mobileone_s0", "mobileone_s1"), _job(tmp_path=tmp_path), store,
                         destination=destination, harness_dir=harness_dir, team="ABCDE12345", **kw)


def test_concurrent_run_keeps_each_phones_reports_apart(monkeypatch, tmp_path, harness, exports):
    fake = SeveralPhones(harness, {JANE: "attachment", LAB: "container", KIM: "marked"})
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    warnings: list[str] = []
    records = _measure(store, tmp_path, harness, ["Jane's iPhone", LAB, "Kim's iPhone 15"],
                       on_warning=warnings.append)

    (xcodebuild,) = _xcodebuilds(fake)  # one build, three destinations
    assert _destinations(xcodebuild) == [f"id={JANE}", f"id={LAB}", f"id={KIM}"]
    assert xcodebuild[xcodebuild.index("-maximum-concurrent-test-device-destinations") + 1] == "3"
    assert exports == ["mobileone_s0", "mobileone_s1"]  # exported (and compiled) once for all phones
    assert [(r["env_device_name"], r["model"], r["status"]) for r in records] == [
        ("Jane's iPhone", "mobileone_s0", "ok"), ("Jane's iPhone", "mobileone_s1", "ok"),
        ("Lab iPhone 12", "mobileone_s0", "ok"), ("Lab iPhone 12", "mobileone_s1", "ok"),
        ("Kim's iPhone 15", "mobileone_s0", "ok"), ("Kim's iPhone 15", "mobileone_s1", "ok")]
    assert len({r["key"] for r in records}) == 6
    assert [r["device_id"] for r in records] == [JANE, JANE, LAB, LAB, KIM, KIM]
    assert [r["env_device_udid"] for r in records[::2]] == [JANE, LAB, KIM]
    assert [r["machine"] for r in records[::2]] == ["iPhone13,2", "iPhone13,2", "iPhone16,1"]
    assert records[4]["env_os"] == "iOS 18.1.0"
    # the twins' marked lines look alike and were not taken; each twin has its own numbers
    assert [r["min_ms"] for r in records[::2]] == [0.803341, pytest.approx(0.903341), 0.803341]
    # only the phone still missing models had its container copied, by its own identifier
    copies = [c for c in fake.calls if c[2:5] == ["device", "copy", "from"]]
    assert [c[c.index("--device") + 1] for c in copies] == [LAB_ID]
    assert warnings == []
    assert executor.phone_summaries(records) == [
        {"phone": "Jane's iPhone", "device_id": JANE, "machine": "iPhone13,2", "os": "iOS 17.5.1", "ok": 2,
         "failed": 0, "records": 2},
        {"phone": "Lab iPhone 12", "device_id": LAB, "machine": "iPhone13,2", "os": "iOS 17.5.1", "ok": 2,
         "failed": 0, "records": 2},
        {"phone": "Kim's iPhone 15", "device_id": KIM, "machine": "iPhone16,1", "os": "iOS 18.1.0", "ok": 2,
         "failed": 0, "records": 2}]

    # 'all': the same phones (the Old iPhone 8 has no UDID: not ready), whose records are reused; and the Old
    # iPhone 8 named by its UDID (which devicectl does not give) is measured alone, by that UDID
    fake.calls.clear()
    exports.clear()
    again = _measure(store, tmp_path, harness, "all")
    assert [r["env_device_name"] for r in again[::2]] == ["Jane's iPhone", "Lab iPhone 12", "Kim's iPhone 15"]
    assert [r["record_id"] for r in again] == [r["record_id"] for r in records]
    assert _xcodebuilds(fake) == []
    fake.channel[OLD_UDID] = "container"
    (old_s0, old_s1) = _measure(store, tmp_path, harness, OLD_UDID)
    assert [_destinations(c) for c in _xcodebuilds(fake)] == [[f"id={OLD_UDID}"]]
    assert (old_s0["status"], old_s0["device_id"], old_s0["machine"], old_s0["report_channel"]) == (
        "ok", OLD_UDID, "iPhone10,4", "container")


def test_a_failing_phone_is_recorded_and_the_others_stored(monkeypatch, tmp_path, harness, exports):
    fake = SeveralPhones(harness, {JANE: "attachment", LAB: "none"})
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    records = _measure(store, tmp_path, harness, ["Jane's iPhone", "Lab iPhone 12", "Spare iPhone 12"])

    (xcodebuild,) = _xcodebuilds(fake)
    assert _destinations(xcodebuild) == [f"id={JANE}", f"id={LAB}"]  # the Spare is not connected
    assert [(r["env_device_name"], r["status"]) for r in records] == [
        ("Jane's iPhone", "ok"), ("Jane's iPhone", "ok"), ("Lab iPhone 12", "failed"), ("Lab iPhone 12", "failed"),
        ("Spare iPhone 12", "failed"), ("Spare iPhone 12", "failed")]
    lab, spare = records[2], records[4]
    assert lab["error"].startswith(f"no result from the harness on Lab iPhone 12 (iPhone 12, iOS 17.5.1, {LAB}) "
                                   f"(xcodebuild exit 65: error: Failed to install the app on the device ({LAB}).")
    assert spare["error"].startswith("Spare iPhone 12 (iPhone 12, iOS 17.5.1, ") and "not connected" in spare["error"]
    assert spare["device_id"] == SPARE and len({r["key"] for r in records}) == 6
    stored = store.records("latency")
    assert sorted(r["record_id"] for r in stored) == sorted(r["record_id"] for r in records)

    # a second run measures only what failed: the Lab phone answers now; the Spare is still not connected
    fake.calls.clear()
    fake.channel[LAB] = "container"
    exports.clear()
    again = _measure(store, tmp_path, harness, ["Jane's iPhone", "Lab iPhone 12", "Spare iPhone 12"])
    assert [r["record_id"] for r in again[:2]] == [r["record_id"] for r in records[:2]]
    assert [r["status"] for r in again[2:4]] == ["ok", "ok"] and again[2]["min_ms"] == pytest.approx(0.903341)
    assert [r["status"] for r in again[4:]] == ["failed", "failed"]
    (xcodebuild,) = _xcodebuilds(fake)
    assert _destinations(xcodebuild) == [f"id={LAB}"]  # only the phone still needing models


def test_sequential_runs_one_xcodebuild_per_phone(monkeypatch, tmp_path, harness, exports):
    fake = SeveralPhones(harness, {JANE: "marked", LAB: "marked"}, build_fails={LAB})
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    records = _measure(store, tmp_path, harness, [JANE, LAB], sequential=True)

    assert [_destinations(c) for c in _xcodebuilds(fake)] == [[f"id={JANE}"], [f"id={LAB}"]]
    assert not any("-maximum-concurrent-test-device-destinations" in c for c in _xcodebuilds(fake))
    assert len(set(fake.bundles)) == 2  # a result bundle per phone
    assert [(r["device_id"], r["status"]) for r in records] == [
        (JANE, "ok"), (JANE, "ok"), (LAB, "failed"), (LAB, "failed")]
    assert records[2]["error"].startswith(f"on Lab iPhone 12 (iPhone 12, iOS 17.5.1, {LAB}): xcodebuild test "
                                          f"(exit 65) reported no model: error: No Accounts")
    logs = sorted((store.root / "logs").iterdir())
    assert len(logs) == 2 and Path(records[0]["report_file"]) in logs  # a log per phone, named after it
    assert any(JANE in p.name for p in logs) and any(LAB in p.name for p in logs)


def test_one_phone_keeps_the_single_phone_behaviour(monkeypatch, tmp_path, harness, exports):
    """One destination (given in a list, or as the only one of 'all'): no concurrency flag, and a build failure is
    one error, as before."""
    fake = SeveralPhones(harness, {JANE: "marked"}, build_fails={JANE})
    _on_mac(monkeypatch, fake)
    with pytest.raises(MeasurementError, match=r"xcodebuild test \(exit 65\) reported no model: error: No Accounts"):
        _measure(ResultsStore(tmp_path / "results"), tmp_path, harness, ["Jane's iPhone"])
    (xcodebuild,) = _xcodebuilds(fake)
    assert _destinations(xcodebuild) == [f"id={JANE}"]
    assert "-maximum-concurrent-test-device-destinations" not in xcodebuild


def test_a_record_of_before_the_change_is_measured_once_more(monkeypatch, tmp_path, harness, exports):
    """Records stored before ``device_id`` was in the identity (the single-phone key) are not reused: the phone
    measures once more, and from then on its own records are."""
    fake = SeveralPhones(harness, {JANE: "marked"})
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    job = _job(tmp_path=tmp_path).resolved()
    legacy = executor._Records(store, job, force=False, source="measured", warn=print)  # no phone: the old identity
    run = {**_report_of(_harness_lines({"warmup": 1, "runs": 20, "compute_units": "cpu_and_ne",
                                        "models": ["mobileone_s0"], "tag": None}, ["mobileone_s0"],
                                       PARTIAL["device"])[2])}
    (spec,) = _specs("mobileone_s0")
    old = legacy.result(run, run["results"][0], spec=spec, where="old", runner=executor.RUNNER_IOS_APP)
    assert old["status"] == "ok" and "device_id" not in old
    (new,) = executor.measure([spec], _job(tmp_path=tmp_path), store, destination=JANE, harness_dir=harness,
                           team="ABCDE12345")
    assert new["record_id"] != old["record_id"] and new["device_id"] == JANE and exports == ["mobileone_s0"]
    (reused,) = executor.measure([spec], _job(tmp_path=tmp_path), store, destination=JANE, harness_dir=harness,
                              team="ABCDE12345")
    assert reused["record_id"] == new["record_id"]


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_several_destinations_print_a_line_per_phone(monkeypatch, tmp_path, harness, exports, runner, cli):
    fake = SeveralPhones(harness, {JANE: "attachment", LAB: "none"})
    _on_mac(monkeypatch, fake)
    result = runner.invoke(cli, ["latency", "mobileone_s0", "--device", "iphone", "--destination", JANE,
                                 "--destination", "Lab iPhone 12", "--team", "ABCDE12345", "--harness", str(harness),
                                 "--results", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models"),
                                 "--runs", "20", "--warmup", "1", "--compute-units", "cpu_and_ne"])
    assert result.exit_code == 1, result.output  # a phone failed: recorded, and said
    lines = result.output.splitlines()
    assert f"Jane's iPhone (iPhone13,2, iOS 17.5.1, {JANE}): 1 ok, 0 failed" in lines
    assert f"Lab iPhone 12 (iPhone13,2, iOS 17.5.1, {LAB}): 0 ok, 1 failed" in lines
    assert any(line.startswith("1 of 2 measurements failed") for line in lines)


@pytest.mark.parametrize("args, fragment", [
    (["latency", "mobileone_tiny", "--sequential"], "--sequential applies to measuring on --device iphone"),
    (["latency", "mobileone_tiny", "--device", "mac", "--sequential"], "--sequential applies"),
    (["latency", "mobileone_tiny", "--destination", "a", "--destination", "b"],
     "--destination apply to --device iphone or mac"),
])
def test_cli_bad_destination_options_are_one_line(runner, cli, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output
    assert not (tmp_path / "results").exists()


def test_a_phone_not_connected_keeps_its_stored_records(monkeypatch, tmp_path, harness, exports, devices):
    """A phone measured before and not connected now: its stored record is returned, not a failure."""
    fake = SeveralPhones(harness, {JANE: "marked"})
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    spare = next(d for d in devices if d.udid == SPARE)
    (spec,) = _specs("mobileone_s0")
    recorder = executor._Records(store, _job(tmp_path=tmp_path).resolved(), force=False, source="measured",
                               warn=print, phone=spare)
    run = _report_of(_harness_lines({"warmup": 1, "runs": 20, "compute_units": "cpu_and_ne",
                                     "models": ["mobileone_s0"], "tag": None}, ["mobileone_s0"],
                                    PARTIAL["device"])[2])
    before = recorder.result(run, run["results"][0], spec=spec, where="earlier", runner=executor.RUNNER_IOS_APP)
    jane, again = executor.measure([spec], _job(tmp_path=tmp_path), store, destination=[JANE, "Spare iPhone 12"],
                                harness_dir=harness, team="ABCDE12345")
    assert jane["status"] == "ok" and jane["device_id"] == JANE
    assert again["record_id"] == before["record_id"] and again["status"] == "ok"
    (xcodebuild,) = _xcodebuilds(fake)
    assert _destinations(xcodebuild) == [f"id={JANE}"]
