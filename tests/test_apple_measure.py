"""``pipeline.phone.measure``: what it says off macOS, and the whole iPhone and Mac flows on a simulated Mac.

The simulated Mac replaces the one command wrapper (``commands.run``) with fakes of ``devicectl``,
``coremlcompiler``, ``xcodegen``, ``xcodebuild``, ``xcresulttool``, ``swift`` and ``sysctl`` that behave as the
harness does (their output is built from the shared fixtures), and the Core ML export with a stub package. What only a
real Mac can check (Xcode building, signing and installing the app, Core ML predicting) is in the darwin-only test.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import jsonschema
import pytest

from mobileone_bench.models import registry
from mobileone_bench.devices.apple import commands, mac, xcodebuild
from mobileone_bench.devices.apple import report as harness_report
from mobileone_bench.errors import DeviceUnavailableError, ExportError, MeasurementError, UsageError
from mobileone_bench.pipeline import LatencyJob, phone
from mobileone_bench.store.records import ResultsStore

FIXTURES = Path(__file__).parent / "fixtures" / "harness"
PARTIAL = json.loads((FIXTURES / "report_partial_failure.json").read_text())
MAC = {"model_identifier": "Mac14,2", "os_name": "macOS", "os_version": "14.5.0", "thermal_state": "nominal",
       "low_power_mode": None, "processor_count": 8, "physical_memory_bytes": 17179869184}


def _job(device: str = "iphone", tmp_path: Path | None = None, **kw: Any) -> LatencyJob:
    return LatencyJob(device=device, runs=20, warmup=1, runtime_options=(("compute_units", "cpu_and_ne"),),
                      models_dir=str(tmp_path / "models") if tmp_path else "models", **kw)


def _specs(*names: str) -> list:
    return [registry.resolve(n) for n in names]


# ------------------------------------------------------------------------------------------------- off macOS


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the message given where there is no Mac")
def test_iphone_off_mac_says_what_is_needed_and_the_way_by_hand(tmp_path):
    store = ResultsStore(tmp_path / "results")
    with pytest.raises(DeviceUnavailableError) as info:
        phone.measure(_specs("mobileone_s0"), _job(), store, destination=None, force=False)
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("needs a Mac", "Xcode", "XcodeGen", "Developer Mode", f"runs {sys.platform}",
                     "ios_harness/README.md", "export the report",
                     "mobileone-bench latency --device iphone --from-report REPORT.json"):
        assert fragment in message, fragment
    assert not store.root.exists()


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the message given where there is no Mac")
def test_mac_off_mac_says_what_is_needed(tmp_path):
    with pytest.raises(DeviceUnavailableError, match=r"needs macOS .*swift run -c release mobileone-harness.*"
                                                     r"--device mac --from-report report\.json"):
        phone.measure(_specs("mobileone_s0"), _job("mac"), ResultsStore(tmp_path), destination=None, force=False)


def test_missing_xcode_tools_are_named(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "xcodegen" else f"/usr/bin/{tool}")
    with pytest.raises(DeviceUnavailableError, match=r"needs xcodegen on this Mac .*brew install xcodegen.*"
                                                     r"--from-report"):
        xcodebuild.require_xcode()


# -------------------------------------------------------------------------------------------- a simulated Mac


def _marked(report: dict, prefix: str = "") -> str:
    return prefix + harness_report.MARKER + " " + json.dumps(report, sort_keys=True, separators=(",", ":"))


def _harness_lines(config: dict, names: list[str], device: dict, *, fail: set[str] = frozenset(),
                   crash_after: int | None = None) -> list[str]:
    """What the harness prints for a run: a progress line and a marked line per model, as ok/error results
    built from the partial-failure fixture (mobileone_s0 ok, mobilevit_s load failure)."""
    ok, error = PARTIAL["results"][0], PARTIAL["results"][1]
    lines = [f"{harness_report.LOG_PREFIX} config: bundled run_config.json"]
    for i, name in enumerate(names):
        if crash_after is not None and i >= crash_after:
            lines.append("Restarting after unexpected exit, crash, or test timeout")
            break
        result = dict(error if name in fail else ok, model=name, file=f"{name}.mlmodelc",
                      compute_units=config["compute_units"], warmup=config["warmup"], runs=config["runs"])
        report = {"schema": harness_report.SCHEMA_NAME, "schema_version": 1, "harness_version": "0.1.0",
                  "created": "2026-11-28T13:00:00Z", "device": device, "config": config, "results": [result]}
        lines.append(f"{harness_report.LOG_PREFIX} {name}: min 0.803 ms")
        lines.append(_marked(report, prefix="2026-11-28 13:00:01.5+0000 MobileOneBenchApp[1:2] " if i else ""))
    return lines


HARNESS_TEST_ID = "HeadlessBenchmarkTests/testBenchmarkBundledModels()"


def write_xcresult_export(out: Path, documents: list[tuple[dict, str | None]], *, extension: str = "json") -> None:
    """What ``xcresulttool export attachments`` writes: each attachment as ``<UUID>.<extension>`` and a
    ``manifest.json`` listing them (``exportedFileName``, ``suggestedHumanReadableName`` = the test's name with
    ``_0_<UUID>`` before the extension, ``deviceId``, ``deviceName``...), as in the shape of the fixture
    ``tests/fixtures/apple/xcresult_export/manifest.json``. ``documents``: (document, device UDID or None)."""
    import uuid

    attachments = []
    for i, (doc, device_id) in enumerate(documents):
        file_id = str(uuid.UUID(int=i + 1)).upper()
        suffix = str(uuid.UUID(int=1000 + i)).upper()
        model = doc["results"][0]["model"] if "results" in doc else doc["model"]
        kind = "compute-plan-" if "results" not in doc else ""
        (out / f"{file_id}.{extension}").write_text(json.dumps(doc, indent=2))
        attachments.append({"configurationName": "Test Scheme Action", "deviceId": device_id or
                            "00008101-001A2D3C0E91002E", "deviceName": "Jane's iPhone",
                            "exportedFileName": f"{file_id}.{extension}", "isAssociatedWithFailure": False,
                            "suggestedHumanReadableName": f"mobileone-bench-{kind}20261128T130000Z-{model}_0_{suffix}.json",
                            "timestamp": 1795870801.5 + i})
    (out / "manifest.json").write_text(json.dumps([{"attachments": attachments, "testIdentifier": HARNESS_TEST_ID}],
                                                  indent=2))


class FakeMac:
    """The command wrapper of a Mac with Xcode, XcodeGen, Swift and one connected iPhone 12."""

    def __init__(self, harness: Path, *, fail: set[str] = frozenset(), crash_after: int | None = None,
                 xcodebuild: Callable[[], tuple[int, list[str]]] | None = None,
                 attachments: list[dict] | None = None, container: list[dict] | None = None,
                 xcresulttool_code: int = 0):
        self.harness = harness
        self.fail = fail
        self.crash_after = crash_after
        self.xcodebuild = xcodebuild
        self.attachments = attachments or []  # reports in the result bundle
        self.container = container  # reports in the app's Documents/reports (None: devicectl copy fails)
        self.xcresulttool_code = xcresulttool_code
        self.calls: list[list[str]] = []
        self.staged: list[str] = []

    def __call__(self, argv: list[str], *, cwd: Path | None = None, on_line: Callable[[str], None] | None = None,
                 keep: int = 400) -> commands.RunResult:
        self.calls.append(list(argv))
        code, lines = self._respond(argv, cwd)
        for line in lines:
            if on_line:
                on_line(line)
        return commands.RunResult(code, tuple(lines[-keep:]))

    def _respond(self, argv: list[str], cwd: Path | None) -> tuple[int, list[str]]:
        tool = argv[1] if argv[0] == "xcrun" else argv[0]
        if tool == "xcresulttool":
            write_xcresult_export(Path(argv[argv.index("--output-path") + 1]), [(r, None) for r in self.attachments])
            return self.xcresulttool_code, []
        if tool == "devicectl" and argv[2:5] == ["device", "copy", "from"]:
            if self.container is None:
                return 1, ["ERROR: The file couldn't be opened because there is no such file."]
            out = Path(argv[argv.index("--destination") + 1])
            for i, report in enumerate(self.container):
                (out / f"mobileone-bench-{i}.json").write_text(json.dumps(report, indent=2))
            return 0, []
        if tool == "devicectl":
            shutil.copy(FIXTURES / "devicectl_list_devices.json", argv[argv.index("--json-output") + 1])
            return 0, []
        if tool == "coremlcompiler":
            if "broken" in argv[3]:
                return 1, ["coremlcompiler: error: Failed to read model package"]
            out = Path(argv[4]) / (Path(argv[3]).stem + ".mlmodelc")
            out.mkdir()
            (out / "model.mil").write_text(argv[3])
            return 0, [str(out)]
        if tool == "xcodegen":
            assert cwd == self.harness
            (self.harness / "MobileOneBench.xcodeproj").mkdir(exist_ok=True)
            return 0, ["Created project at MobileOneBench.xcodeproj"]
        if tool == "xcodebuild":
            if self.xcodebuild:
                return self.xcodebuild()
            config = json.loads((self.harness / "App" / "run_config.json").read_text())
            self.staged = sorted(p.name for p in (self.harness / "App" / "Models").iterdir())
            device = PARTIAL["device"]
            lines = _harness_lines(config, config["models"], device, fail=self.fail, crash_after=self.crash_after)
            return (65 if self.crash_after is not None else 0), lines + ["** TEST SUCCEEDED **"]
        if tool == "swift":
            models = Path(argv[argv.index("--models") + 1])
            config = json.loads(Path(argv[argv.index("--config") + 1]).read_text())
            self.staged = sorted(p.name for p in models.iterdir())
            names = [Path(p).stem for p in self.staged]
            return (1 if self.fail else 0), _harness_lines(config, names, MAC, fail=self.fail)
        if tool == "sysctl":
            return 0, [{"hw.model": MAC["model_identifier"], "hw.memsize": "17179869184"}[argv[2]]]
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def harness(tmp_path) -> Path:
    folder = tmp_path / "ios_harness"
    (folder / "App" / "Models").mkdir(parents=True)
    (folder / "App" / "Models" / ".gitkeep").write_text("")
    (folder / "project.yml").write_text("name: MobileOneBench\n")
    (folder / "Package.swift").write_text("// swift-tools-version:5.9\n")
    return folder


@pytest.fixture
def exports(monkeypatch, tmp_path) -> list[str]:
    """Replace the Core ML export with a stub package (returns the names exported): mobileone_s3 fails to export,
    mobileone_s2's package fails to compile."""
    exported: list[str] = []

    def fake_export(spec, job, force):
        if spec.name == "mobileone_s3":
            raise ExportError("coreml export: Core ML conversion failed (torch.export: boom)")
        exported.append(spec.name)
        folder = tmp_path / "models" / spec.name / ("broken" if spec.name == "mobileone_s2" else "coreml-fp16")
        package = folder / "model.mlpackage"
        package.mkdir(parents=True, exist_ok=True)
        (package / "Manifest.json").write_text("{}")
        return SimpleNamespace(ok=True, path=str(package), manifest={
            "sha256": "ab" * 32, "input_shape": [1, 3, 224, 224], "input_name": "input"})

    monkeypatch.setattr(phone, "_export", fake_export)
    return exported


def _on_mac(monkeypatch, fake: FakeMac, *, swift: bool = True) -> None:
    monkeypatch.setattr(xcodebuild, "require_xcode", lambda: None)
    monkeypatch.setattr(mac, "require_macos", lambda: None)
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}" if swift or tool != "swift" else None)
    monkeypatch.setattr(platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    monkeypatch.setattr(commands, "run", fake)


def test_iphone_flow_on_a_simulated_mac(monkeypatch, tmp_path, harness, exports):
    fake = FakeMac(harness, fail={"mobileone_s1"}, crash_after=2)
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    progress: list[tuple[str, bool]] = []
    specs = _specs("mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4")
    records = phone.measure(specs, _job(tmp_path=tmp_path), store, destination="Jane's iPhone", force=False,
                            harness_dir=harness, team="ABCDE12345",
                            on_progress=lambda text, done: progress.append((text, done)))

    assert [(r["model"], r["status"]) for r in records] == [
        ("mobileone_s0", "ok"), ("mobileone_s1", "failed"), ("mobileone_s2", "failed"), ("mobileone_s3", "failed"),
        ("mobileone_s4", "failed")]
    s0, s1, s2, s3, s4 = records
    assert s0["latency_ms"] == s0["min_ms"] == 0.803341 and s0["n"] == 20 and s0["source"] == "measured"
    assert s0["machine"] == "iPhone13,2" and s0["env_os"] == "iOS 17.5.1" and s0["compute_units"] == "cpu_and_ne"
    assert s0["artifact_path"].endswith("model.mlpackage") and s0["artifact_sha256"] == "ab" * 32
    assert s1["error"].startswith("load failed:")
    assert s2["error"] == "compile: error: Failed to read model package"
    assert s3["error"] == "export: coreml export: Core ML conversion failed (torch.export: boom)"
    assert s4["error"].startswith("no result from the harness (xcodebuild exit 65; log: ")
    log = Path(s0["report_file"])
    assert log.parent == store.root / "logs" and "MOBILEONE_BENCH_REPORT" in log.read_text()

    # what was staged and run
    assert fake.staged == [".gitkeep", "mobileone_s0.mlmodelc", "mobileone_s1.mlmodelc", "mobileone_s4.mlmodelc"]
    config = json.loads((harness / "App" / "run_config.json").read_text())
    jsonschema.Draft202012Validator(harness_report.load_schema()["$defs"]["run_config"]).validate(config)
    assert {k: config[k] for k in ("warmup", "runs", "compute_units", "models")} == {
        "warmup": 1, "runs": 20, "compute_units": "cpu_and_ne",
        "models": ["mobileone_s0", "mobileone_s1", "mobileone_s4"]}
    (xcodebuild,) = [c for c in fake.calls if c[0] == "xcodebuild"]
    assert xcodebuild[xcodebuild.index("-destination") + 1] == "id=00008101-001A2D3C0E91002E"
    assert "DEVELOPMENT_TEAM=ABCDE12345" in xcodebuild
    assert "APP_BUNDLE_ID=com.example.mobileone-bench.abcde12345" in xcodebuild
    # mobileone_s4 has no marked line: the result bundle, then the app's container were tried for it
    assert [c[1] for c in fake.calls if c[0] == "xcrun"] == (
        ["devicectl"] + ["coremlcompiler"] * 4 + ["xcresulttool", "devicectl"])
    (copy,) = [c for c in fake.calls if c[1:5] == ["devicectl", "device", "copy", "from"]]
    assert copy[copy.index("--device") + 1] == "5C2A7E1B-8D3F-4E6A-9B1C-2F4D6E8A0B13"
    assert copy[copy.index("--domain-identifier") + 1] == "com.example.mobileone-bench.abcde12345"
    assert copy[copy.index("--source") + 1] == "Documents/reports"
    assert sum(done for _text, done in progress) == 5
    assert ("mobileone_s0: done", True) in progress and ("mobileone_s1: failed", True) in progress

    # measured once: a second run measures only what failed
    exports.clear()
    again = phone.measure(specs, _job(tmp_path=tmp_path), store, destination="00008101-001A2D3C0E91002E",
                          force=False, harness_dir=harness, team="ABCDE12345")
    assert again[0]["record_id"] == s0["record_id"] and "mobileone_s0" not in exports
    assert exports == ["mobileone_s1", "mobileone_s2", "mobileone_s4"]


def test_iphone_needs_a_team_and_a_harness(monkeypatch, tmp_path, harness):
    _on_mac(monkeypatch, FakeMac(harness))
    store = ResultsStore(tmp_path / "results")
    with pytest.raises(UsageError, match="--team TEAM_ID is needed"):
        phone.measure(_specs("mobileone_s0"), _job(), store, harness_dir=harness)
    with pytest.raises(UsageError, match="pass --harness DIR"):
        phone.measure(_specs("mobileone_s0"), _job(), store, harness_dir=tmp_path, team="T")


def test_iphone_build_failure_is_one_error_with_the_reason(monkeypatch, tmp_path, harness, exports):
    signing = (FIXTURES / "xcodebuild_signing_failure.txt").read_text().splitlines()
    _on_mac(monkeypatch, FakeMac(harness, xcodebuild=lambda: (65, signing)))
    store = ResultsStore(tmp_path / "results")
    with pytest.raises(MeasurementError) as info:
        phone.measure(_specs("mobileone_s0"), _job(tmp_path=tmp_path), store, destination="Jane's iPhone",
                      harness_dir=harness, team="ABCDE12345")
    message = str(info.value)
    assert message.startswith("xcodebuild test (exit 65) reported no model: error: No Accounts")
    assert f"log: {store.root / 'logs'}" in message
    assert store.records() == []


def test_iphone_falls_back_to_the_result_bundle(monkeypatch, tmp_path, harness, exports):
    """A passing test whose stdout Xcode did not forward: the report comes from the .xcresult attachment."""
    fake = FakeMac(harness, xcodebuild=lambda: (0, ["** TEST SUCCEEDED **"]))
    respond = fake._respond

    def with_xcresulttool(argv, cwd):
        if argv[:2] == ["xcrun", "xcresulttool"]:
            config = json.loads((harness / "App" / "run_config.json").read_text())
            report = json.loads(_harness_lines(config, ["mobileone_s0"], PARTIAL["device"])[2].split(" ", 1)[1])
            # the file's extension is xcresulttool's choice: the manifest finds it
            write_xcresult_export(Path(argv[argv.index("--output-path") + 1]), [(report, None)], extension="txt")
            return 0, []
        return respond(argv, cwd)

    fake._respond = with_xcresulttool
    _on_mac(monkeypatch, fake)
    records = phone.measure(_specs("mobileone_s0"), _job(tmp_path=tmp_path), ResultsStore(tmp_path / "results"),
                            destination="Jane's iPhone", harness_dir=harness, team="ABCDE12345")
    assert records[0]["status"] == "ok" and records[0]["n"] == 20
    assert records[0]["report_channel"] == "attachment"


def _two_models(harness: Path) -> list[str]:
    config = json.loads((harness / "App" / "run_config.json").read_text())
    return _harness_lines(config, ["mobileone_s0", "mobileone_s1"], PARTIAL["device"])


def _report_of(line: str) -> dict:
    return json.loads(line.split(harness_report.MARKER + " ", 1)[1])


def test_a_model_without_a_marked_line_comes_from_the_result_bundle_whatever_the_exit(monkeypatch, tmp_path,
                                                                                       harness, exports):
    """The first model's line arrived, the second's did not (cut short), and the test then crashed (exit 65): the
    second model comes from its attachment, the first stays the marked line's."""
    fake = FakeMac(harness)

    def xcodebuild():
        lines = _two_models(harness)
        fake.attachments = [_report_of(lines[-1]), _report_of(lines[2])]  # per-model attachments, any order
        return 65, lines[:-1] + [lines[-1][:-40], "Restarting after unexpected exit, crash, or test timeout"]

    fake.xcodebuild = xcodebuild
    _on_mac(monkeypatch, fake)
    warnings: list[str] = []
    records = phone.measure(_specs("mobileone_s0", "mobileone_s1"), _job(tmp_path=tmp_path),
                            ResultsStore(tmp_path / "results"), destination="Jane's iPhone", harness_dir=harness,
                            team="ABCDE12345", on_warning=warnings.append)
    assert [r["status"] for r in records] == ["ok", "ok"] and records[1]["n"] == 20
    assert len(warnings) == 1 and "not valid JSON" in warnings[0]  # the cut line
    assert not any(c[2:5] == ["device", "copy", "from"] for c in fake.calls if c[0] == "xcrun")


def test_a_model_missing_everywhere_else_comes_from_the_app_container(monkeypatch, tmp_path, harness, exports):
    """Xcode 15: no xcresulttool export attachments; the report the test saved in Documents/reports is copied off
    the phone with devicectl. A report of an earlier run in the container is not taken."""
    fake = FakeMac(harness, xcresulttool_code=64)

    def xcodebuild():
        lines = _two_models(harness)
        now = _report_of(lines[-1])
        whole = {**now, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "results": [_report_of(lines[2])["results"][0], now["results"][0]]}
        earlier = {**whole, "created": "2020-01-01T00:00:00Z",
                   "results": [dict(r, samples_ms=[9.0] * 20) for r in whole["results"]]}
        fake.container = [earlier, whole, {**whole, "schema_version": 2}]  # and a broken file: a warning
        return 0, lines[:3] + ["** TEST SUCCEEDED **"]

    fake.xcodebuild = xcodebuild
    _on_mac(monkeypatch, fake)
    warnings: list[str] = []
    records = phone.measure(_specs("mobileone_s0", "mobileone_s1"), _job(tmp_path=tmp_path),
                            ResultsStore(tmp_path / "results"), destination="Jane's iPhone", harness_dir=harness,
                            team="ABCDE12345", on_warning=warnings.append)
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert records[1]["min_ms"] == 0.803341  # this run's samples, not the earlier run's 9.0
    assert any("needs Xcode 16" in w for w in warnings)
    assert any("mobileone-bench-2.json: invalid harness report" in w for w in warnings)


def test_an_iphone_without_a_udid_is_given_by_its_udid(monkeypatch, tmp_path, harness, exports):
    """devicectl gives no UDID for the Old iPhone 8: named, it is one line saying to name it by its UDID; named by
    its UDID, xcodebuild gets that UDID (never a name)."""
    fake = FakeMac(harness)
    _on_mac(monkeypatch, fake)
    with pytest.raises(DeviceUnavailableError, match=r"^devicectl reports no UDID for Old iPhone 8 .*--destination UDID"):
        phone.measure(_specs("mobileone_s0"), _job(tmp_path=tmp_path), ResultsStore(tmp_path / "results"),
                      destination="Old iPhone 8", harness_dir=harness, team="ABCDE12345")
    udid = "0123456789abcdef0123456789abcdef01234567"
    phone.measure(_specs("mobileone_s0"), _job(tmp_path=tmp_path), ResultsStore(tmp_path / "results"),
                  destination=udid, harness_dir=harness, team="ABCDE12345")
    (xcodebuild,) = [c for c in fake.calls if c[0] == "xcodebuild"]
    assert xcodebuild[xcodebuild.index("-destination") + 1] == f"id={udid}"


def test_iphone_corrupt_marked_line_warns_and_keeps_the_others(monkeypatch, tmp_path, harness, exports):
    def xcodebuild():
        config = json.loads((harness / "App" / "run_config.json").read_text())
        lines = _harness_lines(config, ["mobileone_s0", "mobileone_s1"], PARTIAL["device"])
        return 0, lines[:-1] + [lines[-1][:-40]]  # the second model's line is cut short

    _on_mac(monkeypatch, FakeMac(harness, xcodebuild=xcodebuild))
    warnings: list[str] = []
    records = phone.measure(_specs("mobileone_s0", "mobileone_s1"), _job(tmp_path=tmp_path),
                            ResultsStore(tmp_path / "results"), destination="Jane's iPhone", harness_dir=harness,
                            team="ABCDE12345", on_warning=warnings.append)
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert records[1]["error"].startswith("no result from the harness (xcodebuild exit 0")
    (warning,) = warnings
    assert ".log line 5: not valid JSON" in warning


def test_mac_runner_usage_error_is_one_error(monkeypatch, tmp_path, harness, exports):
    fake = FakeMac(harness)
    respond = fake._respond
    fake._respond = lambda argv, cwd: ((2, ["error: run configuration: runs must be >= 1 (got 0)"])
                                       if argv[0] == "swift" else respond(argv, cwd))
    _on_mac(monkeypatch, fake)
    with pytest.raises(MeasurementError, match=r"mobileone-harness \(exit 2\) reported no model: error: run "
                                               r"configuration: runs must be >= 1"):
        phone.measure(_specs("mobileone_s0"), _job("mac", tmp_path), ResultsStore(tmp_path / "r"),
                      harness_dir=harness)


def test_mac_flow_with_the_swift_runner(monkeypatch, tmp_path, harness, exports):
    fake = FakeMac(harness)
    _on_mac(monkeypatch, fake)
    store = ResultsStore(tmp_path / "results")
    records = phone.measure(_specs("mobileone_s0", "mobileone_s1"), _job("mac", tmp_path), store,
                            harness_dir=harness)
    assert [(r["model"], r["status"], r["machine"]) for r in records] == [
        ("mobileone_s0", "ok", "Mac14,2"), ("mobileone_s1", "ok", "Mac14,2")]
    assert json.loads(records[0]["runtime_options"]) == {"compute_units": "cpu_and_ne", "runner": "mac-runner"}
    assert fake.staged == ["mobileone_s0.mlpackage", "mobileone_s1.mlpackage"]
    (swift,) = [c for c in fake.calls if c[0] == "swift"]
    assert swift[:7] == ["swift", "run", "-c", "release", "--package-path", str(harness), "mobileone-harness"]
    again = phone.measure(_specs("mobileone_s0"), _job("mac", tmp_path), store, harness_dir=harness)
    assert again[0]["record_id"] == records[0]["record_id"]  # same Mac, same macOS: not measured again


class _FakeModel:
    def __init__(self, path: str, compute_units: Any):
        self.compute_units = compute_units
        self.calls = 0

    def predict(self, feed: dict) -> dict:
        assert feed["input"].shape == (1, 3, 224, 224)
        self.calls += 1
        return {"logits": None}


def test_mac_flow_without_swift_uses_coremltools(monkeypatch, tmp_path, harness, exports):
    fake_ct = SimpleNamespace(models=SimpleNamespace(MLModel=_FakeModel),
                              ComputeUnit=SimpleNamespace(ALL=0, CPU_ONLY=1, CPU_AND_GPU=2, CPU_AND_NE=3))
    monkeypatch.setattr("mobileone_bench.devices._coreml.import_coremltools", lambda: fake_ct)
    _on_mac(monkeypatch, FakeMac(harness), swift=False)
    records = phone.measure(_specs("mobileone_s0", "mobileone_s3"), _job("mac", tmp_path),
                            ResultsStore(tmp_path / "results"), harness_dir=harness)
    ok, failed = records
    assert ok["status"] == "ok" and ok["n"] == 20 and ok["clock"] == "perf_counter_ns"
    assert json.loads(ok["runtime_options"]) == {"compute_units": "cpu_and_ne", "runner": "coremltools"}
    assert ok["machine"] == "Mac14,2" and ok["env_os"] == "macOS 14.5.0" and ok["summary_check"] is None
    assert ok["load_ms"] >= 0 and ok["first_run_ms"] >= 0
    assert failed["status"] == "failed" and failed["error"].startswith("export: ")


# ---------------------------------------------------------------------------------------------- a real Mac


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predicts only on macOS")
def test_mac_measures_a_tiny_model_for_real(tmp_path):
    job = LatencyJob(device="mac", runs=5, warmup=1, runtime_options=(("compute_units", "cpu_only"),),
                     models_dir=str(tmp_path / "models"))
    (record,) = phone.measure(_specs("mobileone_tiny"), job, ResultsStore(tmp_path / "results"))
    assert record["status"] == "ok", record.get("error")
    assert record["n"] == 5 and record["latency_ms"] == record["min_ms"] > 0


def test_measured_records_are_made_by_the_pipelines_recording_module(monkeypatch, tmp_path, harness, exports):
    """Results and failures of every kind (export, compile, lost run) are made by recording.append_latency."""
    from mobileone_bench.pipeline import recording

    made: list[str] = []
    append = recording.append_latency
    monkeypatch.setattr(recording, "append_latency", lambda *a, **kw: made.append(a[1]["model"]) or append(*a, **kw))
    _on_mac(monkeypatch, FakeMac(harness, fail={"mobileone_s1"}, crash_after=2))
    store = ResultsStore(tmp_path / "results")
    specs = _specs("mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4")
    records = phone.measure(specs, _job(tmp_path=tmp_path), store, destination="Jane's iPhone",
                            harness_dir=harness, team="ABCDE12345")
    assert sorted(made) == sorted(r["model"] for r in records) == sorted(s.name for s in specs)
    assert len(store.records("latency")) == len(made)
