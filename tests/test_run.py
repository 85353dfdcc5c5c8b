"""`run`: the whole pipeline, resuming after a kill, and `ablate`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mobileone_bench.records import ResultsStore, as_list

pytestmark = pytest.mark.slow

MODELS = ["mobileone_tiny", "mobileone_mu0", "timm:mobilenetv3_small_050", "torchvision:squeezenet1_1"]


def _run_args(tmp_path):
    return ["run", *MODELS, "--input-size", "64", "64", "--warmup", "1", "--runs", "5", "--threads", "1",
            "--results", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models")]


def test_run_resumes_after_being_killed(tmp_path):
    # blocked: one record per model as it finishes, so a SIGKILL lands between records
    cmd = [sys.executable, "-m", "mobileone_bench", *_run_args(tmp_path), "--protocol", "blocked", "--format", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    store = ResultsStore(tmp_path / "results")
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(r.get("kind") == "latency" for r in store.records()):
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = {r["model"] for r in store.records("latency") if r["status"] == "ok"}
    assert done_before and len(done_before) < len(MODELS), "the kill should land in the middle of the sweep"

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = {m["model"]: m for m in json.loads(rerun.stdout)["models"]}
    assert set(summary) == set(MODELS)
    for name in done_before:
        assert summary[name]["status"].startswith("ok (stored)")  # not measured twice (maybe flagged contended)
    latency = store.records("latency")
    assert sorted(r["model"] for r in latency) == sorted(MODELS)  # exactly one record per model
    assert {r["model"] for r in store.records("profile")} == set(MODELS)


def test_interleaved_run_stores_what_it_measured_when_terminated(tmp_path):
    """SIGTERM in the middle of the interleaved rounds: every model's samples so far are stored as an
    ``interrupted`` record (kept, never reused); the rerun measures them all and reuses the stored profiles."""
    args = ["run", *MODELS, "--input-size", "64", "64", "--warmup", "1", "--runs", "4000", "--rounds", "4",
            "--threads", "1", "--results", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models")]
    cmd = [sys.executable, "-m", "mobileone_bench", *args, "--format", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    store = ResultsStore(tmp_path / "results")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(store.records("profile")) == len(MODELS) and (tmp_path / "models").exists() and \
                sum(1 for _ in (tmp_path / "models").rglob("manifest.json")) == len(MODELS):
            break
        time.sleep(0.2)
    time.sleep(3)  # into the rounds (about 4 x 4000 runs of 1-2 ms)
    assert proc.poll() is None, "the run ended before it could be terminated"
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    latency = store.records("latency")
    assert sorted(r["model"] for r in latency) == sorted(MODELS)
    assert {r["status"] for r in latency} == {"interrupted"}
    assert all("of 4 rounds" in r["error"] for r in latency)
    measured = [r for r in latency if store.samples(r)]
    assert measured, "the samples of the rounds done are stored"
    for r in measured:
        assert len(store.samples(r)) == sum(as_list(r["runs_per_round"]))

    rerun = subprocess.run([*cmd[:-2], "--runs", "8", "--format", "json"], capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert len(store.records("profile")) == len(MODELS)  # profiles reused, not measured again
    ok = [r for r in store.records("latency") if r["status"] == "ok"]
    assert sorted(r["model"] for r in ok) == sorted(MODELS)
    assert len(store.records("latency")) == 2 * len(MODELS)  # the interrupted records are kept


def test_run_prints_the_table_and_correlations(runner, cli, tmp_path, monkeypatch, unavailable_model):
    from mobileone_bench import registry

    real = registry.create_model

    def flaky(name, **kwargs):
        if getattr(name, "name", name) == "mobileone_mu0":
            raise RuntimeError("simulated out-of-memory while building")
        return real(name, **kwargs)

    monkeypatch.setattr(registry, "create_model", flaky)
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
