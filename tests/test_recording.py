"""One maker of records: the same job measured in this process, on a (fake) cluster node and on an iPhone (an
imported harness report) gives records made by the same functions of ``pipeline.recording``: the same envelope,
the same identity fields, statistics computed from the stored samples by one function, and no field that only one
path knows except the ones that say where it ran."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mobileone_bench.pipeline import LatencyJob, cluster, measure_models, phone, recording
from mobileone_bench.store.records import ResultsStore
from tests.conftest import FIXTURES
from tests.test_cluster import FakeExecutor

MODEL = "mobileone_s0"  # one of the harness report fixture's models
ENVELOPE = {"record_id", "kind", "key", "created", "schema"}
#: what only a cluster record says: where it ran (the node, its address, the attempt) and the (model, label) key
CLUSTER_ONLY = {"cluster_on", "cluster_node", "cluster_node_ip", "cluster_attempt", "cluster_key"}
#: what every latency record has whatever measured it (besides envelope, identity and statistics)
COMMON = {"status", "error", "report", "paper_name", "source", "seconds", "artifact_format", "artifact_path",
          "artifact_sha256", "runtime_settings", "clock", "env_tool"}


def _host_job() -> LatencyJob:
    return LatencyJob(device="cpu", runtime="onnxruntime", warmup=1, runs=6, threads=1, input_size=(32, 32),
                      protocol="blocked", models_dir="models").resolved()


@pytest.fixture
def records(tmp_path, monkeypatch, quiet_machine) -> dict[str, dict[str, Any]]:
    from mobileone_bench.models import registry

    monkeypatch.chdir(tmp_path)
    spec = registry.resolve(MODEL)
    stores = {name: ResultsStore(tmp_path / name) for name in ("host", "cluster", "phone")}
    job = _host_job()
    [(host, _)] = measure_models([spec], job, stores["host"], force=True)
    [row] = cluster.drive([spec], ["cpu-test"], replace(job, models_dir=str(tmp_path / "node-models")),
                          stores["cluster"], FakeExecutor())
    phone_job = LatencyJob(device="iphone", runtime_options=(("compute_units", "all"),)).resolved()
    [mobile] = phone.import_reports([str(FIXTURES / "harness" / "report_ok.json")], stores["phone"], job=phone_job,
                                    models=[spec])
    out = {"host": host, "cluster": row["latency"], "phone": mobile}
    for name, rec in out.items():
        assert rec["status"] == "ok", (name, rec.get("error"))
        out[name] = {**rec, "_samples": stores[name].samples(rec)}
    return out


def _keys(rec: dict[str, Any]) -> set[str]:
    return {k for k in rec if not k.startswith("_")}


def test_host_cluster_and_phone_records_have_the_same_keys(records):
    host, on_node, mobile = records["host"], records["cluster"], records["phone"]
    # the cluster's node ran this very pipeline: the same keys, plus where it ran
    assert _keys(on_node) - _keys(host) == CLUSTER_ONLY
    assert _keys(host) - _keys(on_node) == set()
    # the phone: the same envelope, identity and statistics as the host, and the common fields
    identity = set(recording.latency_identity(None, _host_job(), input_shape=None, machine=None, versions=None))
    stats = set(recording.summary_fields([1.0, 2.0, 3.0], "median"))
    for name, rec in records.items():
        missing = (ENVELOPE | identity | stats | COMMON) - _keys(rec)
        assert missing == set(), f"{name} record lacks {sorted(missing)}"
    assert (_keys(mobile) & _keys(host)) >= ENVELOPE | identity | stats | COMMON


def test_every_paths_statistics_come_from_its_stored_samples_by_one_function(records):
    for name, rec in records.items():
        samples = rec["_samples"]
        assert samples, name
        expected = recording.summary_fields(samples, str(rec["report"]))
        for field, value in expected.items():
            got = rec[field]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (name, field)
            else:
                assert got == value, (name, field)


def test_the_identity_is_the_one_recording_makes(records):
    from mobileone_bench.models import registry
    from mobileone_bench.store.records import record_key

    spec = registry.resolve(MODEL)
    assert records["host"]["key"] == record_key(recording.latency_identity(spec, _host_job()))
    # the phone's identity says what the phone decided (machine, OS, runs), through the same function
    assert records["phone"]["device"] == "iphone" and records["phone"]["runs"] == 20
