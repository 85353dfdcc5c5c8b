"""One reader for records (issue 26, item 2): every record carries its schema version, every line is checked
against ``mobileone_bench/data/record.schema.json``, and what the tool cannot use (a line that is not JSON, a record
that breaks the schema, one written by a newer version) is skipped with one warning per file naming the lines and
why, counted, never reused as "cached", never printed raw, never copied by ``merge``.

Stores are built with the analysis tests' record helpers, then edited as a user or another tool would edit them.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest

from mobileone_bench.errors import BenchWarning
from mobileone_bench.store.merging import StoreUnion, merge
from mobileone_bench.store.records import (RECORD_SCHEMA, SCHEMA_VERSION, ResultsStore, check_record, new_record,
                                     read_lines)
from tests.test_analysis_fixtures import add_latency, add_profile, build_store

MODELS = ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv1", "mobilenetv2-x1.0", "mobilenetv3-s"]
FAST_ARGS = ["--runtime", "torch", "--input-size", "32", "32", "--warmup", "1", "--runs", "4", "--threads", "1"]


def small_store(root: Path) -> ResultsStore:
    """Profiles and CPU onnxruntime latencies of six models: enough for a table and a correlation."""
    store = ResultsStore(root)
    for i, m in enumerate(MODELS):
        add_profile(store, m, 100.0 * (i + 1), 1.0 + i)
        add_latency(store, m, 1.0 + i * (1 + 0.1 * i))
    return store


def edit_line(path: Path, number: int, change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Rewrite line ``number`` (from 1) of a records.jsonl with some fields changed or removed, as a hand edit
    would; returns the edited record."""
    lines = path.read_text(encoding="utf-8").split("\n")
    rec = json.loads(lines[number - 1])
    rec.update(change)
    for name in drop:
        rec.pop(name, None)
    lines[number - 1] = json.dumps(rec)  # writes NaN / Infinity as Python's json does
    path.write_text("\n".join(lines), encoding="utf-8")
    return rec


def line_of(store: ResultsStore, kind: str, model: str) -> int:
    """The line number (from 1) of the first ``kind`` record of ``model``."""
    for number, line in enumerate(store.records_path.read_text(encoding="utf-8").split("\n"), start=1):
        if line.strip():
            rec = json.loads(line)
            if rec.get("kind") == kind and rec.get("model") == model:
                return number
    raise AssertionError(f"no {kind} record of {model}")


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def reading(store: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """``store.records()`` and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = store.records()
    return records, [str(w.message) for w in caught]


# ------------------------------------------------------------------------------------------------------ the schema


def test_new_records_carry_the_schema_version_the_package_schema_describes():
    from importlib import resources

    rec = new_record("latency", {"model": "m", "device": "cpu"}, {"status": "ok", "latency_ms": 1.0}, {})
    assert rec["schema"] == SCHEMA_VERSION == 1
    schema = json.loads(resources.files("mobileone_bench").joinpath(RECORD_SCHEMA).read_text("utf-8"))
    assert schema["title"].endswith(f"schema {SCHEMA_VERSION}") and schema["$id"].endswith(f"-{SCHEMA_VERSION}.json")
    assert check_record(rec) is None


def test_every_record_the_fixtures_make_is_valid_and_old_records_without_a_version_still_read(tmp_path):
    store = build_store(tmp_path / "results")
    lines, skipped = read_lines(store.records_path)
    assert skipped == [] and len(lines) > 40
    assert {ln.record["kind"] for ln in lines} == {"latency", "profile"}
    assert all(ln.record["schema"] == SCHEMA_VERSION for ln in lines)
    # what a store written before records carried a version looks like: read just the same
    old = tmp_path / "old" / "records.jsonl"
    old.parent.mkdir()
    old.write_text("".join(json.dumps({k: v for k, v in ln.record.items() if k != "schema"}) + "\n" for ln in lines),
                   encoding="utf-8")
    records, messages = reading(ResultsStore(old.parent))
    assert messages == [] and len(records) == len(lines)


@pytest.mark.parametrize("kind, change, drop, reason", [
    ("latency", {"latency_ms": "0.068 ms"}, (), 'latency_ms is "0.068 ms" (a string), not a number'),
    ("latency", {"median_ms": {"value": 1}}, (), "median_ms is an object, not a number"),
    ("latency", {"latency_ms": float("nan")}, (), "latency_ms is NaN, not a finite number"),
    ("latency", {"std_ms": float("inf")}, (), "std_ms is Infinity, not a finite number"),
    ("latency", {"latency_ms": -1.0}, (), "latency_ms is -1.0 (a number), below 0"),
    ("latency", {"key": ["a", "b"]}, (), "key is a list, not a string"),
    ("latency", {"key": ""}, (), "key is empty"),
    ("latency", {}, ("model",), "no model"),
    ("latency", {}, ("latency_ms",), "no latency_ms"),  # a successful measurement without its latency
    ("latency", {"model": 7}, (), "model is 7 (an integer), not a string"),
    ("latency", {"threads": 2.5}, (), "threads is 2.5 (a number), not an integer"),
    ("latency", {"contended": "yes"}, (), 'contended is "yes" (a string), not true or false'),
    ("latency", {"schema": "1"}, (), 'schema is "1" (a string), not an integer'),
    ("latency", {}, ("kind",), "no kind"),
    ("profile", {"flops_m": "275"}, (), 'flops_m is "275" (a string), not a number'),
    ("profile", {}, ("model",), "no model"),
    ("peak", {"gflops": None}, (), "gflops is null, not a number"),
    ("explain", {"coverage": float("nan")}, (), "coverage is NaN, not a finite number"),
    ("explain", {"coverage": -0.5}, (), "coverage is -0.5 (a number), below 0"),
    ("explain", {}, ("model",), "no model"),
    ("accuracy", {"top1": 101.0}, (), "top1 is 101.0 (a number), above 100"),
    ("accuracy", {"agreement": "all"}, (), 'agreement is "all" (a string), not a number'),
    ("accuracy", {"n": 2.5}, (), "n is 2.5 (a number), not an integer"),
])
def test_check_record_names_the_field_and_what_is_wrong(kind, change, drop, reason):
    if kind == "peak":
        rec = new_record("peak", {"machine": "m", "threads": 4}, {"status": "ok", "gflops": 50.0}, {})
    elif kind == "profile":
        rec = new_record("profile", {"model": "m", "input_shape": [1, 3, 64, 64]},
                         {"status": "ok", "flops_m": 1.0, "params_m": 1.0}, {})
    elif kind == "explain":
        rec = new_record("explain", {"model": "m", "runtime": "onnxruntime"},
                         {"status": "ok", "source": "profiler", "operators": [], "coverage": 1.02, "e2e_ms": 2.0,
                          "total_op_ms": 2.04, "profiler_overhead": 0.03}, {})
    elif kind == "accuracy":
        rec = new_record("accuracy", {"model": "m", "artifact": "onnx"},
                         {"status": "ok", "n": 100, "top1": 71.0, "top5": 90.0, "agreement": 100.0}, {})
    else:
        rec = new_record("latency", {"model": "m", "threads": 1}, {"status": "ok", "latency_ms": 1.0,
                                                                   "median_ms": 1.0, "std_ms": 0.1}, {})
    assert check_record(rec) is None
    rec.update(change)
    for name in drop:
        rec.pop(name)
    why, text = check_record(rec)
    assert why == "invalid" and text.startswith(reason), text


def test_a_failed_record_needs_no_statistics_and_unknown_fields_are_allowed():
    rec = new_record("latency", {"model": "m"}, {"status": "failed", "error": "boom", "latency_ms": None}, {})
    assert check_record({**rec, "anything_new": [1, {"x": 2}]}) is None
    assert check_record({"key": "k", "kind": "a-kind-of-the-future"}) is None


def test_a_record_from_a_newer_version_is_reported_and_not_used(tmp_path):
    store = small_store(tmp_path / "r")
    number = line_of(store, "latency", "mobileone_s1")
    newer = edit_line(store.records_path, number, {"schema": SCHEMA_VERSION + 1, "a_new_field": {"x": 1}})
    assert check_record(newer) == ("newer", f"written by a newer mobileone-bench (schema {SCHEMA_VERSION + 1})")
    records, messages = reading(store)
    assert newer["record_id"] not in {r["record_id"] for r in records}
    (message,) = messages
    assert str(store.records_path) in message and f"line {number}" in message
    assert (f"skipped 1 record(s) written by a newer mobileone-bench (schema {SCHEMA_VERSION + 1}): line {number}; "
            f"this one reads schema {SCHEMA_VERSION}: upgrade mobileone-bench to use them") in message
    assert [(s.line, s.why) for s in store.skipped] == [(number, "newer")]
    # not "cached" either: the store does not know that measurement
    with pytest.warns(BenchWarning):
        assert store.find(newer["key"], "latency") is None and not store.has(newer["key"])


# ------------------------------------------------------------------------------------------------------ the reader


def test_a_byte_order_mark_at_the_start_costs_nothing(tmp_path, runner, cli):
    store = small_store(tmp_path / "r")
    count = len(store.records())
    store.records_path.write_bytes(b"\xef\xbb\xbf" + store.records_path.read_bytes())
    records, messages = reading(store)
    assert messages == [] and len(records) == count and store.skipped == []
    add_latency(store, "mobilenetv3-l", 2.5)  # an append after it is read too
    records, messages = reading(store)
    assert messages == [] and len(records) == count + 1
    report = merge([store.root], tmp_path / "copy")
    assert report["copied"] == count + 1 and report["sources"][0]["unreadable_lines"] == 0
    assert not (tmp_path / "copy" / "records.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")
    result = runner.invoke(cli, ["table", "--results", str(store.root), "--format", "json"])
    assert result.exit_code == 0 and warning_lines(result.stderr) == [], result.output
    assert "mobileone_s0" in {r["model"] for r in json.loads(result.stdout)["rows"]}


def test_one_warning_per_file_names_the_first_lines_and_counts_them_all(tmp_path, runner, cli):
    store = small_store(tmp_path / "r")
    with open(store.records_path, "a", encoding="utf-8") as fh:
        for i in range(5):
            fh.write(json.dumps({"key": ["list", i], "kind": "latency", "model": f"x{i}"}) + "\n")
        fh.write('{"record_id": "cut", "kind": "lat\n')  # an interrupted write
    records, messages = reading(store)
    assert len(records) == 12
    (message,) = messages
    assert message.startswith(f"{store.records_path}: ")
    assert "skipped 1 unreadable line(s) (an interrupted write?): line 18" in message
    assert ("skipped 5 record(s) this tool cannot use: line 13 (key is a list, not a string), line 14 (key is a "
            "list, not a string), line 15 (key is a list, not a string) and 2 more") in message
    assert len(store.skipped) == 6 and {s.why for s in store.skipped} == {"invalid", "unreadable"}
    assert "\n" not in message
    result = runner.invoke(cli, ["table", "--results", str(store.root)])
    assert result.exit_code == 0, result.output
    assert warning_lines(result.stderr) == [f"warning: {message}"]


def test_the_store_never_reuses_a_record_it_does_not_understand(tmp_path):
    store = ResultsStore(tmp_path)
    rec = store.append(new_record("latency", {"model": "m", "device": "cpu"},
                                  {"status": "ok", "latency_ms": 1.0, "median_ms": 1.0}, {}))
    assert store.find(rec["key"], "latency") == rec and store.has(rec["key"]) and store.keys() == {rec["key"]}
    edit_line(store.records_path, 1, {"latency_ms": "0.068 ms", "median_ms": {"value": 1}})
    with pytest.warns(BenchWarning, match="line 1"):
        assert store.find(rec["key"], "latency") is None
    with pytest.warns(BenchWarning):
        assert not store.has(rec["key"])
    with pytest.warns(BenchWarning):
        assert store.keys("latency") == set() and store.latest() == []


def test_reading_several_folders_warns_once_per_folder_and_counts(tmp_path):
    a, b = small_store(tmp_path / "a"), small_store(tmp_path / "b")
    edit_line(a.records_path, 2, {}, drop=("model",))
    edit_line(b.records_path, 4, {"latency_ms": float("nan")})
    union = StoreUnion([a.root, b.root])
    records, messages = reading(union)
    assert len(records) == 22 and len(messages) == 2
    assert str(a.records_path) in messages[0] and "line 2 (no model)" in messages[0]
    assert str(b.records_path) in messages[1] and "line 4 (latency_ms is NaN, not a finite number)" in messages[1]
    assert [(Path(s.path), s.line) for s in union.skipped] == [(a.records_path, 2), (b.records_path, 4)]
    assert union.read()[1] == union.skipped


# ------------------------------------------------------------------------------------------------------ the CLI


def test_a_record_whose_key_is_a_list_or_without_a_model_does_not_stop_the_table(tmp_path, runner, cli):
    store = small_store(tmp_path / "r")
    for i, m in enumerate(["mobilenetv3-l", "efficientnet-b0"]):  # five usable models: a correlation
        add_profile(store, m, 50.0 * (i + 1), 3.0 + i)
        add_latency(store, m, 0.5 + i)
    key_line = line_of(store, "latency", "mobileone_s1")
    model_line = line_of(store, "latency", "mobileone_s2")
    edit_line(store.records_path, key_line, {"key": ["not", "a", "string"]})
    edit_line(store.records_path, model_line, {}, drop=("model",))
    for args in (["table"], ["table", "--format", "json"], ["table", "--layout", "table14"], ["correlate"],
                 ["export-results"]):
        result = runner.invoke(cli, [*args, "--results", str(store.root)])
        assert result.exit_code == 0, (args, result.output)
        assert "unexpected" not in result.output
        (warning,) = warning_lines(result.stderr)
        assert str(store.records_path) in warning
        assert f"line {key_line} (key is a list, not a string)" in warning
        assert f"line {model_line} (no model)" in warning
    table = json.loads(runner.invoke(cli, ["table", "--format", "json", "--results", str(store.root)]).stdout)
    shown = {r["model"]: r for r in table["rows"]}
    assert "mobileone_s0" in shown and shown["mobileone_s0"]["cpu_ms"] == pytest.approx(1.0)
    assert shown.get("mobileone_s1", {}).get("cpu_ms") is None and shown.get("mobileone_s2", {}).get("cpu_ms") is None


def test_an_edited_latency_is_not_printed_raw_by_table(tmp_path, runner, cli):
    store = small_store(tmp_path / "r")
    number = line_of(store, "latency", "mobileone_s1")
    edit_line(store.records_path, number, {"latency_ms": "0.068 ms", "median_ms": {"value": 1}})
    for fmt in ("rich", "md", "csv", "json"):
        result = runner.invoke(cli, ["table", "--format", fmt, "--results", str(store.root)])
        assert result.exit_code == 0, result.output
        assert "0.068" not in result.stdout and "value" not in result.stdout
        (warning,) = warning_lines(result.stderr)
        assert f"line {number} (latency_ms is \"0.068 ms\" (a string), not a number or null (also wrong: median_ms))" \
            in warning


def test_a_non_finite_latency_is_skipped_with_the_reason_not_taken_for_missing_flops(tmp_path, runner, cli):
    store = small_store(tmp_path / "r")
    add_profile(store, "mobilenetv3-l", 216.6, 5.48)
    add_latency(store, "mobilenetv3-l", 2.4)
    number = line_of(store, "latency", "mobilenetv3-l")
    edit_line(store.records_path, number, {"latency_ms": float("nan"), "median_ms": float("nan")})
    assert "NaN" in store.records_path.read_text(encoding="utf-8")
    result = runner.invoke(cli, ["correlate", "--results", str(store.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["rows"]
    assert row["n"] == len(MODELS) and not math.isnan(row["flops_rho"])
    assert "mobilenetv3-l" not in json.dumps(row)  # not said to lack FLOPs: its latency is not used at all
    (warning,) = warning_lines(result.stderr)
    assert f"line {number} (latency_ms is NaN, not a finite number (also wrong: median_ms))" in warning


def test_an_edited_record_is_not_reused_as_cached_a_rerun_measures_again(tmp_path, runner, cli, quiet_machine):
    results = tmp_path / "results"
    args = ["latency", "mobileone_tiny", *FAST_ARGS, "--results", str(results), "--models-dir",
            str(tmp_path / "models"), "--format", "json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    (measured,) = json.loads(first.stdout)
    again = runner.invoke(cli, args)  # what "cached" means: the same record, not measured again
    assert again.exit_code == 0 and [r["record_id"] for r in json.loads(again.stdout)] == [measured["record_id"]]

    path = results / "records.jsonl"
    edit_line(path, 1, {"latency_ms": "0.068 ms", "median_ms": {"value": 1}})
    rerun = runner.invoke(cli, args)
    assert rerun.exit_code == 0, rerun.output
    (fresh,) = json.loads(rerun.stdout)
    assert fresh["record_id"] != measured["record_id"] and fresh["key"] == measured["key"]
    assert isinstance(fresh["latency_ms"], float) and fresh["latency_ms"] > 0 and fresh["n"] == 4
    assert "0.068" not in rerun.stdout
    warning = warning_lines(rerun.stderr)[0]
    assert str(path) in warning and 'line 1 (latency_ms is "0.068 ms" (a string)' in warning
    # the store now has the bad line (kept, unused) and the new measurement, which the next run reuses
    with pytest.warns(BenchWarning):
        assert [r["record_id"] for r in ResultsStore(results).records()] == [fresh["record_id"]]
    cached = runner.invoke(cli, args)
    assert [r["record_id"] for r in json.loads(cached.stdout)] == [fresh["record_id"]]


# ------------------------------------------------------------------------------------------------------ merge


def test_merge_does_not_copy_what_the_reader_cannot_use_and_counts_it(tmp_path, runner, cli):
    store = small_store(tmp_path / "src")
    key_line = line_of(store, "latency", "mobileone_s1")
    bad = edit_line(store.records_path, key_line, {"key": ["a"]})
    nan_line = line_of(store, "latency", "mobileone_s2")
    edit_line(store.records_path, nan_line, {"latency_ms": float("inf")})
    model_line = line_of(store, "profile", "mobilenetv1")
    edit_line(store.records_path, model_line, {}, drop=("model",))
    newer_line = line_of(store, "profile", "mobileone_s0")
    edit_line(store.records_path, newer_line, {"schema": 99})

    report = merge([store.root], tmp_path / "dest")
    (row,) = report["sources"]
    assert (row["records"], row["copied"], row["skipped"], row["unreadable_lines"]) == (12, 8, 4, 0)
    assert report["skipped"] == 4 and report["records_after"] == 8
    by_line = {s["line"]: s for s in report["skipped_records"]}
    assert by_line[key_line]["record_id"] == bad["record_id"]
    assert by_line[key_line]["reason"] == "key is a list, not a string"
    assert by_line[nan_line]["reason"] == "latency_ms is Infinity, not a finite number"
    assert by_line[model_line]["reason"] == "no model"
    assert by_line[newer_line]["reason"] == "written by a newer mobileone-bench (schema 99)"
    copied, messages = reading(ResultsStore(tmp_path / "dest"))
    assert messages == [] and len(copied) == 8 and bad["record_id"] not in {r["record_id"] for r in copied}

    result = runner.invoke(cli, ["merge", str(store.root), "--into", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "copied 8 record(s)" in result.stderr and "4 skipped (not copied" in result.stderr
    assert "no model" in result.stdout and "Infinity" in result.stdout
    as_json = runner.invoke(cli, ["merge", str(store.root), "--into", str(tmp_path / "cli2"), "--format", "json"])
    assert json.loads(as_json.stdout)["skipped_records"] == report["skipped_records"]


def test_the_merge_summary_line_says_which_records_lack_their_samples(tmp_path, runner, cli):
    store = small_store(tmp_path / "src")
    (rec,) = [r for r in store.records("latency") if r["model"] == "mobileone_s0"]
    (store.root / rec["samples_file"]).unlink()
    result = runner.invoke(cli, ["merge", str(store.root), "--into", str(tmp_path / "dest")])
    assert result.exit_code == 0, result.output
    (summary,) = [line for line in result.stderr.splitlines() if line.startswith("copied ")]
    assert "copied 12 record(s)" in summary
    assert "1 of them were copied without their samples file (missing in the source too)" in summary
    dry = runner.invoke(cli, ["merge", str(store.root), "--into", str(tmp_path / "dry"), "--dry-run"])
    assert "1 of them would be copied without their samples file" in dry.stderr
