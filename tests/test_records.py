"""The results store: round trips, interrupted writes, concurrent appends, latest-per-key."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from mobileone_bench.store.records import ResultsStore, new_record, record_key


def _record(model="m", value=1.0, status="ok"):
    identity = {"model": model, "device": "cpu", "input_shape": [1, 3, 64, 64]}
    return new_record("latency", identity, {"status": status, "latency_ms": value, "nested": {"a": 1}},
                      {"env_cpu": "test cpu"})


def test_round_trip_json_and_csv(tmp_path):
    store = ResultsStore(tmp_path)
    rec = store.append(_record(), samples=[1.0, 2.0, 3.0])
    back = store.records("latency")
    assert back == [rec]
    assert rec["input_shape"] == "1x3x64x64" and json.loads(rec["nested"]) == {"a": 1}
    assert store.samples(back[0]) == [1.0, 2.0, 3.0]
    frame = store.frame("latency")
    csv_path = tmp_path / "out.csv"
    frame.to_csv(csv_path, index=False)
    import pandas as pd

    again = pd.read_csv(csv_path)
    assert again.loc[0, "model"] == "m" and again.loc[0, "latency_ms"] == 1.0
    assert again.loc[0, "key"] == rec["key"]


def test_key_is_stable_and_order_independent():
    assert record_key({"a": 1, "b": [1, 2]}) == record_key({"b": [1, 2], "a": 1})
    assert record_key({"a": 1}) != record_key({"a": 2})


def test_partial_line_from_a_killed_writer_is_skipped_and_stepped_over(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(_record("first"))
    with open(store.records_path, "a") as fh:
        fh.write('{"record_id": "x", "kind": "latency", "key": "trunc')  # no newline: killed mid-write
    with pytest.warns(UserWarning, match="skipped 1 unreadable line"):
        assert [r["model"] for r in store.records()] == ["first"]
    store.append(_record("second"))
    with pytest.warns(UserWarning):
        assert [r["model"] for r in store.records()] == ["first", "second"]


def test_latest_per_key_and_failures_do_not_count(tmp_path):
    store = ResultsStore(tmp_path)
    a = store.append(_record("m", 1.0))
    b = store.append(_record("m", 2.0))
    store.append(_record("n", 3.0, status="failed"))
    assert a["key"] == b["key"]
    latest = store.latest("latency")
    assert [r["latency_ms"] for r in latest] == [2.0]
    assert store.has(a["key"]) and len(store.records()) == 3  # nothing is overwritten


def _writer(root, worker, count):
    store = ResultsStore(root)
    for i in range(count):
        store.append(_record(f"w{worker}-{i}", float(i)), samples=[float(i)] * 50)


def test_concurrent_appends_do_not_corrupt(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    store = ResultsStore(tmp_path)
    records = store.records()
    assert len(records) == 160
    assert len({r["model"] for r in records}) == 160
    assert all(len(store.samples(r)) == 50 for r in records)


def test_unwritable_store_is_a_clear_error(tmp_path):
    from mobileone_bench.errors import RecordsError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordsError, match="cannot create results folder"):
        ResultsStore(blocker / "results").append(_record())
