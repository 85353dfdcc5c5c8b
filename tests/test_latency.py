"""Latency: end to end on the CPU with a tiny model, records, skip/force, failures as data, GPU paths."""

from __future__ import annotations

import json

import pytest
import torch

from mobileone_bench import pipeline
from mobileone_bench.store.records import ResultsStore
from tests.conftest import flat

QUICK = dict(warmup=2, runs=15)


def _job(tmp_path, **kw):
    return pipeline.LatencyJob(device="cpu", models_dir=str(tmp_path / "models"), **{**QUICK, **kw})


@pytest.mark.slow
def test_cpu_onnxruntime_end_to_end_record(tmp_path):
    store = ResultsStore(tmp_path / "results")
    rec, skipped = pipeline.measure_latency("mobileone_tiny", _job(tmp_path, threads=1), store)
    assert not skipped and rec["status"] == "ok", rec.get("error")
    assert rec["n"] == 15 and rec["warmup"] == 2 and rec["threads"] == 1
    assert rec["runtime"] == "onnxruntime" and rec["precision"] == "fp32" and rec["report"] == "median"
    assert rec["latency_ms"] == rec["median_ms"] > 0
    assert rec["min_ms"] <= rec["median_ms"] <= rec["max_ms"]
    assert rec["artifact_format"] == "onnx" and len(rec["artifact_sha256"]) == 64
    assert json.loads(rec["runtime_settings"])["intra_op_threads"] == 1
    for field in ("env_cpu", "env_cores_logical", "env_os", "env_python", "env_onnxruntime", "env_torch", "machine"):
        assert rec[field], field
    samples = store.samples(rec)
    assert len(samples) == 15
    from mobileone_bench.stats import summarize

    assert summarize(samples).median == pytest.approx(rec["median_ms"])


@pytest.mark.slow
def test_rerun_skips_and_force_remeasures_without_losing_anything(tmp_path):
    store = ResultsStore(tmp_path / "results")
    first, _ = pipeline.measure_latency("mobileone_tiny", _job(tmp_path, runtime="torch", threads=1), store)
    again, skipped = pipeline.measure_latency("mobileone_tiny", _job(tmp_path, runtime="torch", threads=1), store)
    assert skipped and again["record_id"] == first["record_id"]
    forced, skipped = pipeline.measure_latency("mobileone_tiny", _job(tmp_path, runtime="torch", threads=1), store,
                                               force=True)
    assert not skipped and forced["key"] == first["key"] and forced["record_id"] != first["record_id"]
    assert len(store.records("latency")) == 2
    other, skipped = pipeline.measure_latency("mobileone_tiny", _job(tmp_path, runtime="torch", threads=2), store)
    assert not skipped and other["key"] != first["key"]  # threads are part of the identity


def test_failures_are_recorded_and_do_not_raise(tmp_path, unavailable_model):
    store = ResultsStore(tmp_path / "results")
    rec, _ = pipeline.measure_latency(unavailable_model, _job(tmp_path), store)
    assert rec["status"] == "failed" and "NotBuilt" in rec["error"]
    assert store.records("latency")[0]["status"] == "failed"
    assert "samples_file" not in rec


def test_gpu_without_cuda_is_recorded_as_failed(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    store = ResultsStore(tmp_path / "results")
    job = pipeline.LatencyJob(device="gpu", runtime="torch-cuda", models_dir=str(tmp_path / "m"), **QUICK)
    rec, _ = pipeline.measure_latency("mobileone_tiny", job, store)
    assert rec["status"] == "failed" and "no CUDA GPU" in rec["error"]


def test_job_defaults_follow_the_paper():
    cpu = pipeline.LatencyJob(device="cpu").resolved()
    assert (cpu.runtime, cpu.precision, cpu.runs, cpu.report) == ("onnxruntime", "fp32", 100, "median")
    gpu = pipeline.LatencyJob(device="gpu").resolved()
    assert (gpu.runtime, gpu.precision, gpu.runs, gpu.report, gpu.threads) == ("tensorrt", "fp16", 100, "median",
                                                                               None)
    phone = pipeline.LatencyJob(device="iphone").resolved()
    assert (phone.runtime, phone.precision, phone.runs, phone.report) == ("coreml", "fp16", 1000, "min")


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(device="cpu", runtime="tensorrt"), "does not run on cpu"),
    (dict(device="cpu", precision="fp16"), "cannot run fp16"),
    (dict(device="cpu", runs=0), "--runs >= 1"),
    (dict(device="cpu", threads=0), None),
])
def test_bad_jobs_are_usage_errors(kwargs, fragment):
    from mobileone_bench.errors import UsageError

    if kwargs.get("threads") == 0:
        # 0 means "default" for threads; negative is refused
        kwargs["threads"] = -1
        fragment = "--threads must be >= 1"
    with pytest.raises(UsageError, match=fragment):
        pipeline.LatencyJob(**kwargs).resolved()


@pytest.mark.slow
def test_cli_latency_json_and_table(runner, cli, tmp_path):
    args = ["latency", "mobileone_tiny", "--runtime", "torch", "--threads", "1", "--warmup", "1", "--runs", "10",
            "--results", str(tmp_path / "r"), "--models-dir", str(tmp_path / "m")]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    recs = json.loads(result.stdout)
    assert recs[0]["model"] == "mobileone_tiny" and recs[0]["n"] == 10
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "cached" in table.stdout and "latency = median of 10 runs" in flat(table.stdout)
    env_line = next(line for line in table.stdout.splitlines() if "latency = median" in line)
    assert "device cpu" in env_line and "torch" in env_line  # one line, however long this machine's CPU name is


@pytest.mark.parametrize("args, fragment", [
    (["--device", "gpu"], None),
    (["--device", "cpu", "--runtime", "tensorrt"], "does not run on cpu"),
    (["--from-report", "setup.cfg"], "apply to --device iphone or mac"),
    (["--threads", "-2"], "not in the range x>=1"),
    (["--threads", "0"], "not in the range x>=1"),
])
def test_cli_latency_bad_inputs(runner, cli, tmp_path, args, fragment):
    result = runner.invoke(cli, ["latency", "mobileone_tiny", "--results", str(tmp_path), *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    if fragment:
        assert fragment in lines[0]
    elif not torch.cuda.is_available():
        assert "tensorrt" in lines[0] or "GPU" in lines[0]


def test_cuda_timing_needs_a_gpu():
    from mobileone_bench.devices import require_cuda
    from mobileone_bench.errors import DeviceUnavailableError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceUnavailableError, match="NVIDIA GPU"):
        require_cuda()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA (run on the device machine)")
def test_torch_cuda_runner_on_a_real_gpu(tmp_path):
    store = ResultsStore(tmp_path / "results")
    job = pipeline.LatencyJob(device="gpu", runtime="torch-cuda", models_dir=str(tmp_path / "m"), warmup=5, runs=50)
    rec, _ = pipeline.measure_latency("mobileone_s0", job, store)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["clock"] == "cuda-events" and rec["precision"] == "fp16" and rec["env_gpu"]
    assert 0 < rec["median_ms"] < 50
