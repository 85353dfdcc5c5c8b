"""Results from many hosts, one study: `merge SRC... --into DIR`, `--results` given several times, and
`export-results` (flat CSV, Parquet, PyTorch OSS benchmark JSON).

Every store here is built by the test from records of two machine ids ("host-a" and "host-b"), with the record
helpers of the analysis tests; nothing is measured.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from pathlib import Path

import pytest

import mobileone_bench as mb
from mobileone_bench.errors import BenchWarning, UsageError
from mobileone_bench.store.merging import StoreUnion, merge, open_results
from mobileone_bench.store.records import ResultsStore
from tests.test_analysis_fixtures import add_latency, add_profile

MODELS = ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv1", "mobilenetv2-x1.0", "mobilenetv3-s"]
HOST_A = {"env_hostname": "alpha", "env_cpu": "Alpha CPU", "env_cores_logical": 8, "env_torch": "2.1.0",
          "env_onnxruntime": "1.17.0"}
HOST_B = {"env_hostname": "beta", "env_cpu": "Beta CPU", "env_cores_logical": 4, "env_gpu": "Beta GPU",
          "env_torch": "2.1.0"}


def host_a(root: Path) -> ResultsStore:
    """Host A: profiles and CPU onnxruntime latencies of every model."""
    store = ResultsStore(root)
    for i, m in enumerate(MODELS):
        add_profile(store, m, 100.0 * (i + 1), 1.0 + i)
        add_latency(store, m, 1.0 + i, machine="host-a", env=HOST_A, created="2026-01-01T00:00:00+00:00")
    return store


def host_b(root: Path) -> ResultsStore:
    """Host B: GPU TensorRT latencies of every model, and CPU onnxruntime ones measured with the very settings of
    host A (same model, runtime, threads, runs...): only the machine differs."""
    store = ResultsStore(root)
    for i, m in enumerate(MODELS):
        add_latency(store, m, 0.1 + 0.05 * i, device="gpu", runtime="tensorrt", precision="fp16", threads=None,
                    machine="host-b", env=HOST_B, created="2026-01-02T00:00:00+00:00")
        add_latency(store, m, 2.0 + 1.5 * i, machine="host-b", env=HOST_B, created="2026-01-02T00:00:00+00:00")
    return store


def lines(root: Path) -> list[str]:
    return (root / "records.jsonl").read_text(encoding="utf-8").splitlines()


def by_id(root: Path) -> dict[str, dict]:
    return {r["record_id"]: r for r in ResultsStore(root).records()}


@pytest.fixture
def hosts(tmp_path):
    return host_a(tmp_path / "a").root, host_b(tmp_path / "b").root


# ------------------------------------------------------------------------------------------------------ identity


def test_two_hosts_with_the_same_settings_have_different_keys_and_both_are_kept(hosts, tmp_path):
    a, b = hosts
    cpu_a = {r["model"]: r for r in ResultsStore(a).records("latency")}
    cpu_b = {r["model"]: r for r in ResultsStore(b).records("latency") if r["device"] == "cpu"}
    assert all(cpu_a[m]["key"] != cpu_b[m]["key"] for m in MODELS)  # the machine is part of the key

    report = merge([a, b], tmp_path / "study")
    assert (report["copied"], report["already_present"], report["conflicting"]) == (24, 0, 0)
    assert [r["copied"] for r in report["sources"]] == [12, 12]
    assert [r["hosts"] for r in report["sources"]] == ["alpha", "beta"]
    merged = ResultsStore(tmp_path / "study")
    latest = merged.latest("latency")
    assert len(latest) == 18  # 6 CPU records of each host + 6 GPU ones: none hides another
    assert {(r["machine"], r["device"]) for r in latest} == {("host-a", "cpu"), ("host-b", "cpu"), ("host-b", "gpu")}
    # each record is copied verbatim (same record_id, key and fields, byte for byte), with its samples
    assert set(lines(tmp_path / "study")) == set(lines(a)) | set(lines(b))
    for rec in latest:
        source = ResultsStore(a if rec["machine"] == "host-a" else b)
        assert merged.samples(rec) == source.samples(rec)
        copied, original = tmp_path / "study" / rec["samples_file"], source.root / rec["samples_file"]
        assert copied.read_bytes() == original.read_bytes()


def test_profiles_of_two_hosts_share_a_key_but_both_records_are_kept(tmp_path):
    a, b = ResultsStore(tmp_path / "a"), ResultsStore(tmp_path / "b")
    pa, pb = add_profile(a, "mobileone_s0", 275.1, 2.08), add_profile(b, "mobileone_s0", 275.1, 2.08)
    assert pa["key"] == pb["key"] and pa["record_id"] != pb["record_id"]  # FLOPs do not depend on the machine
    merge([a.root, b.root], tmp_path / "c")
    merged = ResultsStore(tmp_path / "c")
    assert {r["record_id"] for r in merged.records("profile")} == {pa["record_id"], pb["record_id"]}
    assert len(merged.latest("profile")) == 1


# ------------------------------------------------------------------------------------------------------ duplicates


def test_merging_again_copies_nothing_and_never_rewrites_the_destination(hosts, tmp_path):
    a, b = hosts
    dest = tmp_path / "dest"
    own = add_latency(ResultsStore(dest), "mobileone_s0", 5.0, machine="host-c")
    before = (dest / "records.jsonl").read_bytes()
    first = merge([a, b], dest)
    after_first = (dest / "records.jsonl").read_bytes()
    assert first["records_before"] == 1 and first["copied"] == 24 and first["records_after"] == 25
    assert after_first.startswith(before)  # appended after, nothing in front rewritten
    assert by_id(dest)[own["record_id"]] == own

    second = merge([a, b], dest)
    assert (second["copied"], second["already_present"], second["conflicting"]) == (0, 24, 0)
    assert (dest / "records.jsonl").read_bytes() == after_first


def test_the_same_records_from_several_sources_are_kept_once(hosts, tmp_path):
    a, _ = hosts
    copy = tmp_path / "copy-of-a"
    shutil.copytree(a, copy)  # the same records under another name (a host's folder copied around)
    report = merge([a, copy, a], tmp_path / "dest")  # the same folder twice counts once
    assert [r["source"] for r in report["sources"]] == [str(a), str(copy)]
    assert report["sources"][0]["copied"] == 12
    assert report["sources"][1]["copied"] == 0 and report["sources"][1]["already_present"] == 12
    ids = [json.loads(line)["record_id"] for line in lines(tmp_path / "dest")]
    assert len(ids) == len(set(ids)) == 12
    # read together without copying, they count once too
    union = open_results([a, copy])
    assert isinstance(union, StoreUnion) and len(union.records()) == 12
    assert isinstance(open_results([a, a]), ResultsStore)


def test_dry_run_says_what_a_merge_would_do_and_writes_nothing(hosts, tmp_path):
    a, b = hosts
    dest = tmp_path / "dest"
    dry = merge([a, b], dest, dry_run=True)
    assert not dest.exists()
    real = merge([a, b], dest)
    keys = ("copied", "already_present", "conflicting", "skipped", "samples_copied")
    assert [{k: r[k] for k in keys} for r in dry["sources"]] == [{k: r[k] for k in keys} for r in real["sources"]]
    assert dry["dry_run"] and not real["dry_run"]
    again = merge([a, b], dest, dry_run=True)
    assert again["copied"] == 0 and again["already_present"] == 24


# ------------------------------------------------------------------------------------------------------ conflicts


def _conflicting_copy(source: Path, dest: Path) -> dict:
    """``dest`` holds one record of ``source`` under the same record_id but with another latency."""
    rec = ResultsStore(source).records("latency")[0]
    changed = dict(rec, latency_ms=rec["latency_ms"] * 3, median_ms=rec["median_ms"] * 3)
    dest.mkdir(parents=True)
    (dest / "samples").mkdir()
    shutil.copy(source / rec["samples_file"], dest / rec["samples_file"])
    (dest / "records.jsonl").write_text(json.dumps(changed, separators=(",", ":")) + "\n", encoding="utf-8")
    return changed


def test_a_conflicting_record_is_reported_and_the_destination_kept(hosts, tmp_path):
    a, b = hosts
    dest = tmp_path / "dest"
    changed = _conflicting_copy(a, dest)
    before = (dest / "records.jsonl").read_bytes()
    report = merge([a, b], dest)
    assert report["conflicting"] == 1 and report["copied"] == 23
    (conflict,) = report["conflicts"]
    assert conflict["record_id"] == changed["record_id"] and conflict["what"] == "record"
    assert conflict["fields"] == ["latency_ms", "median_ms"] and conflict["source"] == str(a)
    assert (dest / "records.jsonl").read_bytes().startswith(before)
    assert by_id(dest)[changed["record_id"]] == changed  # the destination's, untouched
    # a second merge reports it again and copies nothing else
    again = merge([a, b], dest)
    assert (again["copied"], again["conflicting"], again["already_present"]) == (0, 1, 23)


def test_a_record_whose_samples_differ_is_a_conflict(hosts, tmp_path):
    a, _ = hosts
    dest = tmp_path / "dest"
    merge([a], dest)
    rec = ResultsStore(a).records("latency")[0]
    tampered = tmp_path / "tampered"
    shutil.copytree(a, tampered)
    (tampered / rec["samples_file"]).write_text(json.dumps({"record_id": rec["record_id"], "unit": "ms",
                                                             "samples": [9.0, 9.0]}), encoding="utf-8")
    kept = (dest / rec["samples_file"]).read_bytes()
    report = merge([tampered], dest)
    assert report["conflicting"] == 1 and report["conflicts"][0]["what"] == "samples"
    assert report["conflicts"][0]["record_id"] == rec["record_id"]
    assert (dest / rec["samples_file"]).read_bytes() == kept


def test_reading_two_folders_with_a_conflict_uses_the_first_and_warns(hosts, tmp_path):
    a, _ = hosts
    dest = tmp_path / "dest"
    changed = _conflicting_copy(a, dest)
    with pytest.warns(BenchWarning, match="same record_id but different content"):
        records = {r["record_id"]: r for r in open_results([dest, a]).records()}
    assert records[changed["record_id"]]["latency_ms"] == changed["latency_ms"]
    assert len(records) == 12


def test_the_cli_reports_a_conflict_and_exits_1(runner, cli, hosts, tmp_path):
    a, b = hosts
    dest = tmp_path / "dest"
    changed = _conflicting_copy(a, dest)
    result = runner.invoke(cli, ["merge", str(a), str(b), "--into", str(dest), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["conflicts"][0]["record_id"] == changed["record_id"] and report["copied"] == 23
    assert "1 conflicting record(s) not copied" in result.stderr and "kept" in result.stderr
    table = runner.invoke(cli, ["merge", str(a), "--into", str(dest)])
    assert table.exit_code == 1 and changed["record_id"] in table.stdout and "latency_ms" in table.stdout


# ------------------------------------------------------------------------------------------------------ safety


def test_two_merges_and_a_measurement_at_once_lose_and_duplicate_nothing(hosts, tmp_path):
    a, b = hosts
    dest = tmp_path / "dest"
    errors: list[BaseException] = []
    appended: list[str] = []

    def merging(sources):
        try:
            for _ in range(3):
                merge(sources, dest)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def measuring():
        store = ResultsStore(dest)
        for i in range(10):
            appended.append(add_latency(store, f"model-{i}", 1.0 + i, machine="host-c")["record_id"])

    threads = [threading.Thread(target=merging, args=([a, b],)), threading.Thread(target=merging, args=([b, a],)),
               threading.Thread(target=measuring)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    ids = [json.loads(line)["record_id"] for line in lines(dest)]
    assert len(ids) == len(set(ids)) == 24 + 10
    assert set(appended) <= set(ids)


def test_an_interrupted_merge_is_completed_by_the_next(hosts, tmp_path):
    a, _ = hosts
    dest = tmp_path / "dest"
    merge([a], dest, dry_run=False)
    # what a kill leaves: the last records' lines lost (one of them half written), their samples already copied
    full = lines(dest)
    (dest / "records.jsonl").write_text("\n".join(full[:-3]) + "\n" + full[-3][:40], encoding="utf-8")
    report = merge([a], dest)
    assert report["copied"] == 3 and report["conflicting"] == 0
    assert report["sources"][0]["samples_copied"] == 0  # identical samples already there: only the lines
    with pytest.warns(UserWarning, match="unreadable line"):
        ids = [r["record_id"] for r in ResultsStore(dest).records()]
    assert sorted(ids) == sorted(json.loads(line)["record_id"] for line in full)


def test_unreadable_lines_and_unsafe_samples_paths_are_not_copied(hosts, tmp_path):
    a, _ = hosts
    bad = tmp_path / "bad"
    shutil.copytree(a, bad)
    rec = dict(ResultsStore(a).records("latency")[0], record_id="evil0000", samples_file="../../outside.json")
    with open(bad / "records.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n" + json.dumps(rec) + "\n")
    report = merge([bad], tmp_path / "dest")
    row = report["sources"][0]
    assert row["unreadable_lines"] == 1 and row["skipped"] == 1 and row["copied"] == 12
    assert report["skipped_records"][0]["record_id"] == "evil0000"
    assert "evil0000" not in by_id(tmp_path / "dest")


# ------------------------------------------------------------------------------------------------------ analysis


def test_analysis_of_several_results_is_the_analysis_of_their_merge(runner, cli, hosts, tmp_path):
    a, b = hosts
    merged = tmp_path / "study"
    assert runner.invoke(cli, ["merge", str(a), str(b), "--into", str(merged)]).exit_code == 0
    several = ["--results", str(a), "--results", str(b)]
    for args in (["table", "--format", "json"], ["correlate", "--format", "json"],
                 ["roofline", "--peak-gflops", "50", "--format", "json"]):
        union = runner.invoke(cli, [*args, *several])
        one = runner.invoke(cli, [*args, "--results", str(merged)])
        assert union.exit_code == 0 and one.exit_code == 0, union.output + one.output
        u, o = json.loads(union.stdout), json.loads(one.stdout)
        u.pop("source", None), o.pop("source", None)  # names the folders read
        assert u == o, args

    table = json.loads(runner.invoke(cli, ["table", "--format", "json", *several]).stdout)
    headers = [c["header"] for c in table["columns"]]
    assert any(h.startswith("CPU onnxruntime") for h in headers) and any(h.startswith("GPU tensorrt") for h in headers)
    corr = json.loads(runner.invoke(cli, ["correlate", "--format", "json", *several]).stdout)
    assert {(r["device"], r["runtime"], r["n"]) for r in corr["rows"]} == {("cpu", "onnxruntime", 6),
                                                                          ("gpu", "tensorrt", 6)}
    assert any("records with different settings" in n for n in corr["notes"])  # two hosts in the CPU row
    roof = json.loads(runner.invoke(cli, ["roofline", "--peak-gflops", "50", "--format", "json", *several]).stdout)
    # the newest record per model, runtime and thread count, whichever folder holds it (host B measured later)
    assert {r["machine"] for r in roof["rows"]} == {"host-b"} and len(roof["rows"]) == len(MODELS)

    out = tmp_path / "figures"
    plot = runner.invoke(cli, ["plot", "--figure", "latency-vs-flops", "--out", str(out), "--format", "json",
                               *several])
    assert plot.exit_code == 0, plot.output
    assert {(p["device"], p["runtime"]) for p in json.loads(plot.stdout)} == {("cpu", "onnxruntime"),
                                                                            ("gpu", "tensorrt")}
    assert len(lines(a)) == 12  # reading several folders copies nothing into them
    assert len(lines(b)) == 12


def test_the_api_takes_a_list_of_folders(hosts):
    a, b = hosts
    frame = mb.correlate([a, b])
    assert set(zip(frame["device"], frame["runtime"])) == {("cpu", "onnxruntime"), ("gpu", "tensorrt")}
    table = mb.table("table9", results=[a, b])
    assert len(table) == len(MODELS)
    assert len(mb.load_results([a, b])) == 18
    assert len(mb.plot("latency-vs-flops", results=[a, b])) == 2


# ------------------------------------------------------------------------------------------------------ export


def test_csv_export_is_every_record_once_as_a_flat_row(runner, cli, hosts, tmp_path):
    a, b = hosts
    result = runner.invoke(cli, ["export-results", "--results", str(a), "--results", str(b), "--results", str(a)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 24 and len({r["record_id"] for r in rows}) == 24
    header = result.stdout.splitlines()[0].split(",")
    assert header[:4] == ["record_id", "kind", "key", "created"] and "env_hostname" in header
    stored = {r["record_id"]: r for r in ResultsStore(a).records() + ResultsStore(b).records()}
    for r in rows:
        assert r["key"] == stored[r["record_id"]]["key"]
        if r["kind"] == "latency":
            assert float(r["latency_ms"]) == pytest.approx(stored[r["record_id"]]["latency_ms"])
            assert r["machine"] in ("host-a", "host-b")
        else:
            assert r["latency_ms"] == "" and float(r["flops_m"]) == stored[r["record_id"]]["flops_m"]

    out = tmp_path / "sub" / "latest.csv"
    done = mb.export_results([a, b], out=out, kinds="latency", latest=True)
    assert done["rows"] == 18 and done["text"] is None
    assert {r["kind"] for r in csv.DictReader(out.open(encoding="utf-8"))} == {"latency"}


def test_pytorch_benchmark_export(hosts, tmp_path):
    a, b = hosts
    out = tmp_path / "benchmark-results.json"
    done = mb.export_results([a, b], format="pytorch-benchmark", out=out, latest=True)
    entries = json.loads(out.read_text(encoding="utf-8"))
    assert done["records"] == 18 and len(entries) == done["rows"] == 18 * 6
    for e in entries:
        assert e["benchmark"]["name"] == "mobileone-bench" and e["benchmark"]["mode"] == "inference"
        assert e["model"]["name"] in MODELS and e["metric"]["name"].startswith("latency_")
        assert len(e["metric"]["benchmark_values"]) == 1 and e["metric"]["benchmark_values"][0] > 0
        for part in (e["benchmark"], e["model"], e["metric"], e["runners"][0]):
            assert all(isinstance(v, str) for v in part["extra_info"].values())  # Map(String, String)
    reported = {(e["model"]["name"], e["model"]["backend"], e["runners"][0]["extra_info"]["machine"]):
                e["metric"]["benchmark_values"][0] for e in entries if e["metric"]["name"] == "latency_ms"}
    assert reported[("mobileone_s1", "onnxruntime", "host-a")] == pytest.approx(2.0)
    assert reported[("mobileone_s1", "onnxruntime", "host-b")] == pytest.approx(3.5)
    assert reported[("mobileone_s1", "tensorrt", "host-b")] == pytest.approx(0.15)
    gpu = next(e for e in entries if e["model"]["backend"] == "tensorrt")
    assert gpu["benchmark"]["dtype"] == "fp16" and gpu["runners"][0]["name"] == "Beta GPU"
    assert gpu["runners"][0]["type"] == "gpu" and gpu["runners"][0]["gpu_count"] == 1
    cpu = next(e for e in entries if e["runners"][0]["extra_info"]["machine"] == "host-a")
    assert cpu["runners"][0]["name"] == "Alpha CPU" and cpu["runners"][0]["cpu_count"] == 8
    assert cpu["model"]["extra_info"]["flops_m"] == "100.0"  # from host A's profile of the same model and input
    assert cpu["dependencies"]["onnxruntime"] == {"version": "1.17.0"}
    assert cpu["benchmark"]["extra_info"]["statistic"] == "median of 100"


def test_parquet_export_round_trips(hosts, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    a, b = hosts
    out = tmp_path / "study.parquet"
    mb.export_results([a, b], out=out, format="parquet")
    frame = pd.read_parquet(out)
    assert len(frame) == 24 and frame["record_id"].is_unique
    assert frame.loc[frame["kind"] == "latency", "latency_ms"].notna().all()


def test_parquet_without_pyarrow_is_one_line_naming_the_install(runner, cli, hosts, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    a, _ = hosts
    result = runner.invoke(cli, ["export-results", "--results", str(a), "--out", str(tmp_path / "x.parquet")])
    _one_line(result, 1, "mobileone-bench[parquet]")
    assert not (tmp_path / "x.parquet").exists()


# ------------------------------------------------------------------------------------------------------ bad input


def _one_line(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    text = [line for line in result.output.splitlines() if line.strip()]
    assert len(text) == 1 and text[0].startswith("Error: ") and fragment in text[0], result.output


def test_bad_input_is_one_clear_line(runner, cli, hosts, tmp_path):
    a, _ = hosts
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    missing = str(tmp_path / "missing")
    cases = [
        (["merge", missing, "--into", str(tmp_path / "d")], 2, "no such folder"),
        (["merge", str(tmp_path / "other"), "--into", str(tmp_path / "d")], 2, "not a results folder"),
        (["merge", str(a), "--into", str(a)], 2, "is also a source"),
        (["merge", str(a), "--into", str(tmp_path / "other")], 2, "not a results folder (no records.jsonl) and not"),
        (["merge", str(a), "--into", str(tmp_path / "file.txt")], 2, "file.txt"),
        (["merge", str(a)], 2, "--into"),
        (["merge", "--into", str(tmp_path / "d")], 2, "SRC"),
        (["merge", str(a), "--into", str(tmp_path / "d"), "--format", "xml"], 2, "unknown format 'xml'"),
        (["table", "--results", str(a), "--results", missing], 2, "no such folder"),
        (["correlate", "--results", str(a), "--results", str(tmp_path / "other")], 2, "not a results folder"),
        (["export-results", "--results", str(a), "--format", "xlsx"], 2, "unknown export format 'xlsx'"),
        (["export-results", "--results", str(a), "--format", "parquet"], 2, "give --out FILE.parquet"),
        (["export-results", "--results", str(a), "--kind", "nope"], 2, "unknown record kind 'nope'"),
        (["export-results", "--results", str(a), "--format", "pytorch-benchmark", "--kind", "profile"], 2,
         "exports latency records"),
        (["export-results", "--results", str(tmp_path / "empty")], 1, "no records"),
    ]
    for args, code, fragment in cases:
        _one_line(runner.invoke(cli, args), code, fragment)
    assert not (tmp_path / "d").exists()
    with pytest.raises(UsageError, match="at least one results folder"):
        merge([], tmp_path / "d")


def test_help_explains_merge_and_export(runner, cli):
    assert "merge" in runner.invoke(cli, ["--help"]).output
    text = " ".join(runner.invoke(cli, ["merge", "--help"]).output.split())
    assert "--dry-run" in text and "record_id" in text and "conflict" in text
    text = " ".join(runner.invoke(cli, ["export-results", "--help"]).output.split())
    assert "pytorch-benchmark" in text and "parquet" in text
    assert "several" in " ".join(runner.invoke(cli, ["table", "--help"]).output.split())
