"""``evaluate`` end to end on a model whose predictions are known by construction: a 1x1 convolution that scores
each of red, green and blue by its own channel, then a global average (classes 3-5 always score below). Generated
solid-colour images (a few of them in the wrong class folder) give a top-1 computed here; every fp32 artifact this
machine runs (ONNX on onnxruntime, ExecuTorch) must agree with PyTorch on at least 99% of the images; int8 is
calibrated on the images when asked and the record says so. TensorRT and Core ML cannot run here: their predictors are
checked against fakes built from their real surfaces (``TensorRTEngine.infer``, ``MLModel.predict``)."""

from __future__ import annotations

import json

import pytest

import mobileone_bench as mb
from mobileone_bench.errors import AnalysisError, DeviceUnavailableError, UsageError

MODEL = "evaltest-colours"
COLOURS = {0: (210, 40, 40), 1: (40, 210, 40), 2: (40, 40, 210)}
#: (folder, colour) of each image: the last two are in the wrong folder, so top-1 is 10/12.
IMAGES = [(c, c) for c in (0, 1, 2) for _ in range(4)][:10] + [(2, 0), (2, 1)]


@pytest.fixture(autouse=True)
def _colour_model():
    import torch
    from torch import nn

    from mobileone_bench.models import registry

    def build(num_classes: int = 6, **_: object) -> nn.Module:
        conv = nn.Conv2d(3, 6, 1)
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -5.0, -6.0, -7.0]))
            for c in range(3):
                conv.weight[c, c] = 1.0
        return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    registry.register_model(build, name=MODEL, input_size=32)
    yield
    registry._OWN.pop(registry._key(MODEL), None)


@pytest.fixture
def folder(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "val"
    for i, (label, colour) in enumerate(IMAGES):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = np.clip(np.array(COLOURS[colour]) + rng.integers(-25, 25, (40, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / str(label) / f"img{i:02d}.png")
    return root


def _expected_top1() -> float:
    return 100.0 * sum(label == colour for label, colour in IMAGES) / len(IMAGES)


def test_every_artifact_here_agrees_with_pytorch_and_the_metrics_are_the_reference_s(folder, tmp_path):
    pytest.importorskip("executorch")
    from mobileone_bench.evaluation.metrics import wilson_interval

    rows = mb.evaluate(MODEL, data=folder, results=tmp_path / "r", models_dir=tmp_path / "m", threads=1,
                       calibration=folder, calibration_samples=6, as_frame=False)
    by = {(r["artifact"], r["precision"]): r for r in rows}
    assert set(by) == {("pytorch", "fp32"), ("onnx", "fp32"), ("executorch", "fp32"), ("executorch", "int8")}
    assert any("coreml not evaluated" in n for n in rows.attrs["notes"])  # said, not silently dropped
    low, high = wilson_interval(10, 12)
    for (artifact, precision), r in by.items():
        assert r["status"] == "ok", r["error"]
        assert r["kind"] == "accuracy" and r["n"] == 12 and r["data_sha256"] == rows.attrs["data_sha256"]
        if precision == "fp32":
            assert r["agreement"] >= 99.0, artifact
            assert r["top1"] == pytest.approx(_expected_top1()) and r["top5"] == 100.0
            assert (r["top1_ci_low"], r["top1_ci_high"]) == (pytest.approx(100 * low, abs=1e-3),
                                                             pytest.approx(100 * high, abs=1e-3))
        assert json.loads(r["preprocessing"])["source"] == "paper"
    int8 = by[("executorch", "int8")]
    assert json.loads(int8["calibration"])["source"] == "images"  # in the record's identity...
    used = json.loads(int8["calibration_used"])  # ... and what the manifest says the export used
    assert used["source"] == "images" and used["samples"] == 6 and used["preprocessing_source"] == "paper"
    assert by[("onnx", "fp32")]["calibration"] is None and by[("onnx", "fp32")]["artifact_sha256"]
    again = mb.evaluate(MODEL, data=folder, results=tmp_path / "r", models_dir=tmp_path / "m", threads=1,
                        calibration=folder, calibration_samples=6, as_frame=False)
    assert [r["record_id"] for r in again] == [r["record_id"] for r in rows]  # stored: not evaluated again


def test_limit_the_cli_table_json_and_the_analysis_of_the_records(runner, cli, folder, tmp_path, quiet_machine):
    base = ["evaluate", MODEL, "--data", str(folder), "--results", str(tmp_path / "r"), "--models-dir",
            str(tmp_path / "m"), "--threads", "1"]
    result = runner.invoke(cli, [*base, "--format", "pytorch,onnx", "--limit", "6"])
    assert result.exit_code == 0, result.output
    assert "Top-1 % (95% CI)" in result.stdout and "onnx" in result.stdout
    as_json = runner.invoke(cli, [*base, "--format", "pytorch,onnx", "--limit", "6", "--json"])
    assert as_json.exit_code == 0 and [r["artifact"] for r in json.loads(as_json.stdout)] == ["pytorch", "onnx"]
    (record,) = [json.loads(line) for line in (tmp_path / "r" / "records.jsonl").read_text().splitlines()
                 if json.loads(line).get("artifact") == "onnx"]
    assert record["n"] == 6 and record["data_total"] == 12 and record["label_mapping"] == "numbers"
    assert record["top1"] == 100.0  # the first six, two of each class in turns, are all in their right folder
    # the analysis reads the records: the accuracy table and Figure 1 with the measured top-1
    results, models = tmp_path / "r", tmp_path / "m"
    mb.latency(MODEL, runtime="onnxruntime", warmup=0, runs=3, threads=1, results=results, models_dir=models)
    table = mb.table("accuracy", results=results, as_frame=False)
    rows = {(r["artifact"], r["precision"]): r for r in table["groups"][0]["rows"]}
    assert set(rows) == {("pytorch", "fp32"), ("onnx", "fp32")} and rows[("onnx", "fp32")]["top1"] == 100.0
    assert rows[("onnx", "fp32")]["latency_ms"] > 0 and rows[("onnx", "fp32")]["latency_of"] == "cpu onnxruntime"
    assert rows[("pytorch", "fp32")]["latency_ms"] is None  # no torch latency stored: '-'
    from mobileone_bench.analysis.plots import figure_panels
    from mobileone_bench.analysis.tables import render
    from mobileone_bench.store.frames import open_store

    assert "Top-1 95% CI" in render(table, "md")
    figures = mb.plot("top1-vs-latency", results=results)
    (panel,) = figures.attrs["panels"]
    assert panel["figure"] == "accuracy-vs-latency" and panel["points"] == 1  # no paper top-1: the measured one
    assert any("top-1 measured by `evaluate` for 1 model(s)" in n for n in panel["notes"])
    (data,) = figure_panels(open_store(results), ["accuracy-vs-latency"])
    (point,) = data["points"]
    assert point["y"] == 100.0 and point["top1_source"] == "measured"
    with pytest.raises(AnalysisError, match="no accuracy records"):
        mb.table("accuracy", results=results, models=["mobileone_tiny"], as_frame=False)


@pytest.mark.parametrize("args, fragment", [
    (["--data", "{tmp}/nope"], "data folder {tmp}/nope does not exist"),
    (["--data", "{val}", "--format", "coreml"], "cannot evaluate coreml here: Core ML predicts only on macOS"),
    (["--data", "{val}", "--format", "onnx", "--precision", "int8"], "onnx cannot be evaluated at int8"),
    (["--data", "{val}", "--format", "onnx", "--calibration", "{val}"], "--calibration applies to ExecuTorch int8"),
    (["--data", "{val}", "--format", "nope"], "unknown export format 'nope'"),
])
def test_bad_input_is_one_line(runner, cli, folder, tmp_path, args, fragment):
    subst = {"tmp": str(tmp_path), "val": str(folder)}
    result = runner.invoke(cli, ["evaluate", MODEL, "--results", str(tmp_path / "r"),
                                 *[a.format(**subst) for a in args]])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert fragment.format(**subst) in lines[0]
    assert not (tmp_path / "r").exists()


def test_an_unreadable_image_is_one_line(runner, cli, folder, tmp_path):
    (folder / "1" / "broken.png").write_bytes(b"\x89PNG not an image")
    result = runner.invoke(cli, ["evaluate", MODEL, "--data", str(folder), "--format", "pytorch", "--results",
                                 str(tmp_path / "r")])
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("warning")]
    assert result.exit_code != 0 and lines == [lines[0]] and "broken.png cannot be read" in lines[0], result.output


def test_labels_outside_the_model_s_classes_are_one_line(folder, tmp_path):
    (folder / "7").mkdir()
    (folder / "0" / "img00.png").rename(folder / "7" / "img00.png")
    with pytest.raises(UsageError, match="label 7 is outside the model's 6 classes"):
        mb.evaluate(MODEL, data=folder, formats="pytorch", results=tmp_path / "r")


def test_plan_targets_by_name_and_by_machine(monkeypatch):
    from mobileone_bench.pipeline import evaluate as ev

    targets, notes = ev.plan_targets(["pte", "torch"], "fp32")
    assert [(t.artifact, t.precision, t.runtime) for t in targets] == [("executorch", "fp32", "executorch"),
                                                                       ("pytorch", "fp32", "torch")]
    monkeypatch.setattr(ev, "_why_not_here", lambda artifact: None)  # as on a Mac with a GPU beside it
    targets, notes = ev.plan_targets(None, None)
    assert [(t.artifact, t.precision) for t in targets] == [
        ("pytorch", "fp32"), ("onnx", "fp32"), ("executorch", "fp32"), ("executorch", "int8"), ("tensorrt", "fp16"),
        ("coreml", "fp16")] and notes == []
    with pytest.raises(UsageError, match="--precision applies to the formats named"):
        ev.plan_targets(None, "int8")
    monkeypatch.setattr(ev, "_why_not_here", lambda artifact: "no GPU here")
    with pytest.raises(DeviceUnavailableError, match="cannot evaluate tensorrt here: no GPU here"):
        ev.plan_targets(["tensorrt"], None)


# ------------------------------------------------------------------------------- runtimes that cannot run here


class _FakeEngine:
    """What the evaluation uses of :class:`mobileone_bench.devices._tensorrt.TensorRTEngine` (its real methods:
    ``infer(x)`` returns the first output on the host as float32, ``settings()``, ``close()``), computing with a
    model instead of an engine."""

    def __init__(self, model):
        self.model, self.closed = model, False

    def infer(self, x):
        import torch

        with torch.no_grad():
            return self.model(x).float().cpu()

    def settings(self):
        return {"tensorrt": "fake", "clock": "cuda-events"}

    def close(self):
        self.closed = True


class _FakeMLModel:
    """``coremltools.models.MLModel`` as documented: built from a path and ``compute_units``; ``predict`` takes a
    dict of input name -> numpy array and returns a dict of output name -> numpy array."""

    def __init__(self, path, compute_units=None):
        self.path, self.compute_units = path, compute_units

    def predict(self, data):
        import numpy as np

        (x,) = data.values()
        assert list(data) == ["input"] and isinstance(x, np.ndarray) and x.dtype == np.float32
        means = x.mean(axis=(2, 3))  # the colour model: each colour's channel, then three constant classes
        rest = np.broadcast_to(np.array([-5, -6, -7], np.float32), (x.shape[0], 3))
        return {"logits": np.concatenate([means, rest], axis=1)}


def test_tensorrt_and_core_ml_predictors_with_fakes(monkeypatch):
    import torch

    from mobileone_bench import pipeline
    from mobileone_bench.devices import _coreml
    from mobileone_bench.pipeline import evaluate as ev

    prepared = pipeline.prepare(MODEL, input_size=(32, 32))
    engine = _FakeEngine(prepared.model)
    monkeypatch.setattr(ev, "_runner", lambda target, prepared, artifact, threads: engine)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = prepared.model(x)
    trt = ev.load_predictor(ev.Target("tensorrt", "fp16", "gpu", "tensorrt"), prepared, "model.engine", {}, None)
    assert torch.allclose(trt(x), expected) and trt.settings()["tensorrt"] == "fake"
    trt.close()
    assert engine.closed

    import coremltools as ct

    monkeypatch.setattr(ct.models, "MLModel", _FakeMLModel)
    monkeypatch.setattr(_coreml, "import_coremltools", lambda: ct)
    manifest = {"input_name": "input", "output_name": "logits", "settings": {"input_kind": "tensor"}}
    coreml = ev.load_predictor(ev.Target("coreml", "fp16", "mac", "coreml"), prepared, "model.mlpackage", manifest,
                               None, compute_units="cpu-ne")
    assert torch.allclose(coreml(x), expected, atol=1e-5) and coreml.settings()["compute_units"] == "cpu-ne"
    with pytest.raises(UsageError, match="--coreml-input tensor"):
        ev.load_predictor(ev.Target("coreml", "fp16", "mac", "coreml"), prepared, "model.mlpackage",
                          {**manifest, "settings": {"input_kind": "image"}}, None)
