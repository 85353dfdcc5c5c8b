"""`run`: the whole pipeline, resuming after a kill, and `ablate`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from mobileone_bench.store.records import ResultsStore, as_list
from tests.phase_launcher import run_until

pytestmark = pytest.mark.slow

MODELS = ["mobileone_tiny", "mobileone_mu0", "timm:mobilenetv3_small_050", "torchvision:squeezenet1_1"]


def _run_args(tmp_path):
    return ["run", *MODELS, "--input-size", "64", "64", "--warmup", "1", "--runs", "5", "--threads", "1",
            "--results", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models")]


def test_run_resumes_after_being_killed(tmp_path):
    # blocked: one record per model as it finishes; SIGKILL lands while the second model is being built
    args = [*_run_args(tmp_path), "--protocol", "blocked", "--format", "json"]
    status, _ = run_until("build", 2, args, lambda proc: proc.kill())
    assert status == -signal.SIGKILL
    store = ResultsStore(tmp_path / "results")
    done_before = {r["model"] for r in store.records("latency") if r["status"] == "ok"}
    assert done_before == {MODELS[0]}, "the first model's record is stored before the second is built"

    rerun = subprocess.run([sys.executable, "-m", "mobileone_bench", *args], capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = {m["model"]: m for m in json.loads(rerun.stdout)["models"]}
    assert set(summary) == set(MODELS)
    for name in done_before:
        assert summary[name]["status"].startswith("ok (stored)")  # not measured twice (maybe flagged contended)
    latency = store.records("latency")
    assert sorted(r["model"] for r in latency) == sorted(MODELS)  # exactly one record per model
    assert {r["model"] for r in store.records("profile")} == set(MODELS)


def test_a_killed_interleaved_run_loses_at_most_the_round_in_progress(tmp_path):
    """SIGKILL (no handler can run) inside the second round: the journal holds every finished round; the same
    command says what it found and goes on from there, timing only what is missing."""
    args = [*_run_args(tmp_path), "--runs", "8", "--rounds", "4", "--format", "json"]
    n = len(MODELS)
    status, _ = run_until("rounds", n + 2, args, lambda proc: proc.kill())  # the second round's second block
    assert status == -signal.SIGKILL
    store = ResultsStore(tmp_path / "results")
    assert store.records("latency") == []  # nothing could be stored as a record...
    journals = [json.loads(p.read_text()) for p in (tmp_path / "results" / "journal").glob("*.json")]
    assert len(journals) == n  # ...but every model's finished rounds are journaled
    assert sorted(len(j["state"]["block_sizes"]) for j in journals) == [1] * (n - 1) + [2]

    rerun = subprocess.run([sys.executable, "-m", "mobileone_bench", *args], capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed from the journal" in rerun.stderr
    ok = {r["model"]: r for r in store.records("latency") if r["status"] == "ok"}
    assert set(ok) == set(MODELS)
    assert sorted(r["rounds_resumed"] for r in ok.values()) == [1] * (n - 1) + [2]
    for r in ok.values():
        assert r["n"] == 8 and len(store.samples(r)) == sum(as_list(r["runs_per_round"]))


def test_run_prints_the_table_and_correlations(runner, cli, tmp_path, monkeypatch, unavailable_model):
    from mobileone_bench.models import factory

    real = factory.create_model

    def flaky(name, **kwargs):
        if getattr(name, "name", name) == "mobileone_mu0":
            raise RuntimeError("simulated out-of-memory while building")
        return real(name, **kwargs)

    monkeypatch.setattr(factory, "create_model", flaky)
    result = runner.invoke(cli, _run_args(tmp_path) + [unavailable_model])
    assert result.exit_code == 1  # one model failed; it is recorded and the others go on
    assert "mobileone_tiny" in result.stdout and "squeezenet1_1" in result.stdout
    assert "simulated out-of-memory" in result.stdout
    assert "Spearman" in result.stdout
    assert "1 of 5 models failed" in result.output
    assert "1 of 5 models cannot be built here" in result.output
    store = ResultsStore(tmp_path / "results")
    assert {r["model"] for r in store.records("latency") if r["status"] == "ok"} == set(MODELS) - {"mobileone_mu0"}
    # an unavailable row is recorded once, not again on every rerun
    runner.invoke(cli, _run_args(tmp_path) + [unavailable_model])
    assert sum(r["model"] == unavailable_model for r in store.records("latency")) == 1


def test_run_refuses_iphone(runner, cli, tmp_path):
    result = runner.invoke(cli, ["run", "--device", "iphone", "--results", str(tmp_path)])
    assert result.exit_code == 2 and "latency --device iphone" in result.output


def test_ablate_blocks_exports_and_measures(runner, cli, tmp_path):
    result = runner.invoke(cli, ["ablate", "blocks", "--warmup", "1", "--runs", "3", "--threads", "2", "--format",
                                 "json", "--results", str(tmp_path / "r"), "--models-dir", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"ablation30-relu", "ablation30-se", "ablation30-skip", "ablation30-se-skip"}
    assert rows["ablation30-relu"]["ratio"] == pytest.approx(1.0)
    assert rows["ablation30-se"]["paper_iphone_ms"] == 2.10
    assert rows["ablation30-se"]["paper_ratio"] == pytest.approx(2.10 / 1.53)
    assert all(r["export_onnx"] == "ok" and r["export_coreml"] == "ok" for r in rows.values())


def _harness_report(tmp_path, latencies):
    """A schema-valid harness report with one result per ablation variant (samples scaled from the fixture)."""
    import numpy as np
    from scipy.stats import trim_mean

    from tests.conftest import FIXTURES

    report = json.loads((FIXTURES / "harness" / "report_ok.json").read_text())
    template = report["results"][0]
    base = np.asarray(template["samples_ms"]) / min(template["samples_ms"])
    results = []
    for model, ms in latencies.items():
        samples = [round(float(v), 6) for v in base * ms]
        x = np.asarray(samples)
        results.append({**template, "model": model, "file": f"{model}.mlmodelc", "samples_ms": samples, "summary": {
            "n": len(samples), "min": float(x.min()), "median": float(np.percentile(x, 50)), "mean": float(x.mean()),
            "std": float(x.std()), "p90": float(np.percentile(x, 90)), "p99": float(np.percentile(x, 99)),
            "trimmed_mean": float(trim_mean(x, 0.1))}})
    report["results"] = results
    path = tmp_path / "ablation_report.json"
    path.write_text(json.dumps(report))
    return path


def test_ablate_on_the_iphone_from_a_harness_report(runner, cli, tmp_path):
    latencies = {"ablation30-relu": 1.5, "ablation30-se": 2.1, "ablation30-skip": 2.6, "ablation30-se-skip": 3.0}
    report = _harness_report(tmp_path, latencies)
    result = runner.invoke(cli, ["ablate", "blocks", "--device", "iphone", "--from-report", str(report), "--formats",
                                 "onnx", "--format", "json", "--results", str(tmp_path / "r"), "--models-dir",
                                 str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert rows["ablation30-relu"]["latency_ms"] == pytest.approx(1.5)  # min of the samples, as the paper
    assert rows["ablation30-skip"]["ratio"] == pytest.approx(2.6 / 1.5)
    assert rows["ablation30-skip"]["paper_ratio"] == pytest.approx(2.62 / 1.53)
    assert rows["ablation30-se"]["flops_m"] > 1000
