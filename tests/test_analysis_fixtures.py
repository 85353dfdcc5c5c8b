"""Fixture stores for the analysis tests (records made with new_record + ResultsStore.append, no model built), and
the tests of the record selection every analysis shares (mobileone_bench.store.frames)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mobileone_bench.store.records import ResultsStore, new_record

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
MACHINE = "fixturemachin"
SHAPE = "1x3x224x224"


def load_spec() -> dict[str, Any]:
    return json.loads((FIXTURES / "measurements.json").read_text(encoding="utf-8"))


def _samples(value: float, report: str) -> list[float]:
    # 100 samples whose median (or min) is exactly ``value``
    deltas = (0.0, 0.01, 0.02, 0.05, 0.1) if report == "min" else (-0.02, -0.01, 0.0, 0.01, 0.02)
    return sorted(value * (1 + d) for d in deltas for _ in range(20))


def add_latency(store: ResultsStore, model: str, value: float | None, *, device: str = "cpu",
                runtime: str = "onnxruntime", precision: str = "fp32", threads: int | None = 4,
                report: str = "median", runs: int = 100, created: str | None = None, status: str = "ok",
                error: str | None = None, machine: str = MACHINE, input_shape: str = SHAPE,
                env: dict[str, Any] | None = None, contended: bool | None = None) -> dict[str, Any]:
    """Append one latency record shaped as pipeline.measure_latency makes them."""
    from mobileone_bench.stats import summarize

    identity = {"model": model, "target": model, "patches": [], "weights_sha256": None, "input_shape": input_shape,
                "reparameterized": True, "device": device, "runtime": runtime, "precision": precision,
                "threads": threads, "warmup": 10, "runs": runs, "runtime_options": {}, "machine": machine,
                "versions": {}}
    fields: dict[str, Any] = {"status": status, "error": error, "report": report, "paper_name": None,
                              "source": "measured", "contended": contended,
                              "contended_share": None if contended is None else float(contended)}
    samples = None
    if status == "ok":
        samples = _samples(float(value), report)
        stats = summarize(samples)
        fields.update(stats.as_dict(), latency_ms=stats.value(report), noise_warning=None)
    rec = new_record("latency", identity, fields, {"env_machine": machine, **(env or load_spec()["env"])})
    if created:
        rec["created"] = created
    return store.append(rec, samples)


def add_profile(store: ResultsStore, model: str, flops_m: float, params_m: float, *,
                input_shape: str = SHAPE) -> dict[str, Any]:
    identity = {"model": model, "target": model, "patches": [], "weights_sha256": None, "input_shape": input_shape,
                "counter": "fixture"}
    fields = {"status": "ok", "error": None, "paper_name": None, "params": int(params_m * 1e6),
              "flops": int(flops_m * 1e6), "params_m": params_m, "flops_m": flops_m}
    return store.append(new_record("profile", identity, fields, {}))


def build_store(root: Path, spec: dict[str, Any] | None = None) -> ResultsStore:
    """The fixture measurements as a results store under ``root``."""
    spec = spec or load_spec()
    store = ResultsStore(root)
    for model, flops, params in spec["profiles"]:
        add_profile(store, model, flops, params)
    for entry in spec["older"]:
        device, runtime, precision, threads, report = entry["group"].split("/")
        add_latency(store, entry["model"], entry["latency_ms"], device=device, runtime=runtime, precision=precision,
                    threads=None if threads == "-" else int(threads), report=report, created=entry["created"])
    for group, rows in spec["latency"].items():
        device, runtime, precision, threads, report = group.split("/")
        for model, value in rows:
            add_latency(store, model, value, device=device, runtime=runtime, precision=precision,
                        threads=None if threads == "-" else int(threads), report=report,
                        runs=1000 if report == "min" else 100)
    for entry in spec["failed"]:
        device, runtime, precision, threads, report = entry["group"].split("/")
        add_latency(store, entry["model"], None, device=device, runtime=runtime, precision=precision,
                    threads=int(threads), status="failed", error=entry["error"])
    return store


def expected(device: str, runtime: str) -> dict[str, float]:
    """model -> latency of one group of the fixture."""
    for group, rows in load_spec()["latency"].items():
        d, r = group.split("/")[:2]
        if (d, r) == (device, runtime):
            return dict((m, v) for m, v in rows)
    raise KeyError((device, runtime))


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return build_store(tmp_path / "results")


# ------------------------------------------------------------------------------------------------------ tests


def test_latency_frame_takes_newest_ok_per_model_device_runtime(store):
    from mobileone_bench.store.frames import latency_frame

    frame, notes = latency_frame(store)
    assert not frame.duplicated(["model", "device", "runtime"]).any()
    cpu = frame[(frame.device == "cpu") & (frame.runtime == "onnxruntime")].set_index("model")
    assert cpu.loc["mobileone_s0", "latency_ms"] == pytest.approx(2.1)  # newest (4 threads), not the 1-thread one
    assert cpu.loc["mobileone_s0", "threads"] == 4
    torch = frame[(frame.device == "cpu") & (frame.runtime == "torch")].set_index("model")
    assert torch.loc["mobilenetv1", "latency_ms"] == pytest.approx(3.1)  # a newer failure does not hide it
    assert any("different settings" in n and "mobileone_s0" in n for n in notes)
    assert set(frame.statistic) == {"median of 100", "min of 1000"}


def test_filters(store):
    from mobileone_bench.store.frames import latency_frame

    frame, _ = latency_frame(store, devices=["cpu"], runtime="onnxruntime", threads=1)
    assert list(frame.model) == ["mobileone_s0"] and frame.latency_ms.iloc[0] == pytest.approx(7.7)
    frame, _ = latency_frame(store, threads=1)  # a CPU filter: other devices stay
    assert set(frame[frame.device == "cpu"].model) == {"mobileone_s0"} and (frame.device == "iphone").sum() == 8
    frame, _ = latency_frame(store, models=["MobileOne*"], exclude=["*s2"])
    assert set(frame.model) == {"mobileone_s0", "mobileone_s1"}


def test_measurements_join_profile_on_model_and_input(store):
    from mobileone_bench.store.frames import measurements

    add_latency(store, "mobileone_s1", 9.0, input_shape="1x3x256x256", runtime="torch", threads=2)
    frame, _ = measurements(store, devices=["cpu"])
    by = frame.set_index(["model", "runtime"])
    assert by.loc[("mobileone_s0", "onnxruntime"), "flops_m"] == pytest.approx(275.1)
    assert by.loc[("mixnet-s", "onnxruntime"), "flops_m"] != by.loc[("mixnet-s", "onnxruntime"), "flops_m"]  # NaN
    # a 256x256 latency is not paired with the 224x224 FLOP count
    assert by.loc[("mobileone_s1", "torch"), "input_shape"] == "1x3x256x256"
    assert by.loc[("mobileone_s1", "torch"), "flops_m"] != by.loc[("mobileone_s1", "torch"), "flops_m"]


def test_empty_store_says_what_to_run(tmp_path):
    from mobileone_bench.store.frames import latency_frame
    from mobileone_bench.errors import AnalysisError

    with pytest.raises(AnalysisError, match="mobileone-bench run"):
        latency_frame(ResultsStore(tmp_path / "nothing"))


def test_parse_devices_rejects_unknown():
    from mobileone_bench.store.frames import parse_devices
    from mobileone_bench.errors import UsageError

    assert parse_devices(("cpu,iphone", "cpu")) == ["cpu", "iphone"]
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        parse_devices(["tpu"])


def test_reference_frame_is_the_papers_table9():
    from mobileone_bench.store.frames import reference_frame

    ref = reference_frame("table9")
    assert len(ref[ref.device == "iphone"]) == 30 and len(ref[ref.device == "cpu"]) == 30
    assert len(ref[ref.device == "gpu"]) == 24  # six transformers have '-' on GPU
    s0 = ref[(ref.model == "mobileone_s0") & (ref.device == "iphone")].iloc[0]
    assert (s0.latency_ms, s0.flops_m, s0.params_m, s0.top1) == (0.79, 275.0, 2.1, 71.4)
