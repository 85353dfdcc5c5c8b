"""The TensorRT runtime against the strict fakes of 8.6, 10.x and 11.4: the engine's stream orders every write and
launch, the launch is captured once and replayed from a CUDA graph (or enqueued, and said), every TensorRT dtype with a
torch counterpart maps, per-layer precisions come from the engine inspector, and ``profile_operators`` gives the
per-layer rows of ``IProfiler``."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from mobileone_bench.devices import _tensorrt
from mobileone_bench.devices import tensorrt as trt_runtime
from mobileone_bench.devices._tensorrt import TensorRTEngine, layer_precision, torch_dtype
from mobileone_bench.errors import MeasurementError
from tests.test_tensorrt_fake import LAYER_MS, LAYERS, VERSIONS, FakeCuda, engine_output, install


@pytest.fixture
def engine_file(tmp_path):
    path = tmp_path / "tensorrt-fp16" / "model.engine"
    path.parent.mkdir()
    path.write_bytes(b"ENGINE")
    return path


@pytest.mark.parametrize("version", VERSIONS)
def test_the_engine_is_replayed_from_a_cuda_graph_on_its_own_stream(monkeypatch, engine_file, version):
    fake, world = install(monkeypatch, version)
    engine = TensorRTEngine(engine_file)
    mine = engine.stream.cuda_stream
    assert engine.mode == "cuda-graph" and engine.graph_error is None
    # buffers made and filled on the engine's stream, which waited for the caller's first
    assert {s for what, s in world.writes if what in ("randn", "empty")} == {mine} and engine.stream.waited == [0]
    # one launch before the capture (shape setup), one captured; each on the engine's stream
    assert [(handle, current, captured) for _, handle, current, captured in world.launches] == [
        (mine, mine, False), (mine, mine, True)]
    world.launches.clear()
    samples = engine.time(2, 3)
    assert samples == [1.0] * 3 and world.launches == [("replay", mine)] * 5  # warm-up and timed runs: replays
    engine.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_without_graphs_every_run_is_enqueued_on_the_engines_stream(monkeypatch, engine_file, version):
    fake, world = install(monkeypatch, version)
    engine = TensorRTEngine(engine_file, cuda_graph=False)
    world.launches.clear()
    engine.time(1, 2)
    mine = engine.stream.cuda_stream
    assert engine.mode == "enqueue" and world.launches == [("execute_async_v3", mine, mine, False)] * 3


def test_a_capture_that_fails_falls_back_to_enqueueing_and_says_so(monkeypatch, engine_file):
    fake, world = install(monkeypatch, VERSIONS[-1], FakeCuda(capture_fails=True))
    engine = TensorRTEngine(engine_file)
    assert engine.mode == "enqueue" and "capturing" in engine.graph_error
    settings = engine.settings()
    assert settings["launch"] == "enqueue" and settings["cuda_graph_error"] == engine.graph_error


@pytest.mark.parametrize("version", VERSIONS)
def test_infer_writes_its_input_on_the_engines_stream(monkeypatch, engine_file, version):
    fake, world = install(monkeypatch, version)
    engine = TensorRTEngine(engine_file)
    x = torch.randn(1, 3, 8, 8)
    world.writes.clear()
    got = engine.infer(x)
    assert world.writes and {s for _, s in world.writes} == {engine.stream.cuda_stream}
    assert torch.allclose(got, engine_output(x)) and world.launches[-1][0] == "replay"


@pytest.mark.parametrize("version", VERSIONS)
def test_settings_say_how_it_ran_and_at_which_precision(monkeypatch, engine_file, version):
    fake, world = install(monkeypatch, version)
    settings = TensorRTEngine(engine_file).settings()
    assert settings["tensorrt"] == fake.__version__ and settings["launch"] == "cuda-graph"
    assert settings["layer_precisions"] == {"fp16": 2, "fp32": 1} and settings["clock"] == "cuda-events"
    assert settings["io"]["input"] == ["torch.float32", [1, 3, 8, 8]]


def test_a_bad_engine_file_is_a_measurement_error(monkeypatch, tmp_path):
    install(monkeypatch, VERSIONS[-1])
    bad = tmp_path / "model.engine"
    bad.write_bytes(b"BAD")
    with pytest.raises(MeasurementError, match="cannot deserialize"):
        TensorRTEngine(bad)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_tensorrt_dtype_with_a_torch_counterpart_maps(version):
    from tests.test_tensorrt_fake import FakeTensorRT

    trt = FakeTensorRT(version, {})
    expected = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
                "UINT8": torch.uint8, "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool,
                "FP8": torch.float8_e4m3fn}
    for name, member in trt.DataType.__members__.items():
        if name in expected:
            assert torch_dtype(torch, trt, member) is expected[name]
        else:  # INT4, FP4, E8M0: no torch tensor type
            with pytest.raises(MeasurementError, match=name):
                torch_dtype(torch, trt, member)


@pytest.mark.parametrize("text, precision", [
    ("Row major linear FP16 format", "fp16"), ("Channel major FP16 format where channel % 8 == 0", "fp16"),
    ("Half", "fp16"), ("Float", "fp32"), ("Row major linear FP32", "fp32"), ("Int8", "int8"),
    ("Thirty-two wide channel vectorized row major Int8 format.", "int8"), ("Row major linear BF16 format", "bf16"),
    ("N/A due to dynamic shapes", None)])
def test_the_inspectors_formats_name_a_precision(text, precision):
    assert layer_precision(text) == precision


def test_make_runner_replays_by_default_and_enqueues_when_asked(monkeypatch, engine_file):
    install(monkeypatch, VERSIONS[-1])
    assert trt_runtime.make_runner("tensorrt", artifact=engine_file, model=None, input_shape=(1, 3, 8, 8),
                                   precision="fp16", threads=None, options={}).mode == "cuda-graph"
    assert trt_runtime.make_runner("tensorrt", artifact=engine_file, model=None, input_shape=(1, 3, 8, 8),
                                   precision="fp16", threads=None, options={"cuda_graphs": False}).mode == "enqueue"


def test_a_job_asking_other_tf32_than_its_engine_was_built_with_is_refused(monkeypatch, engine_file):
    install(monkeypatch, VERSIONS[-1])
    (engine_file.parent / "manifest.json").write_text(json.dumps({"format_meta": {"builder": {
        "tf32": False, "typing": "strong", "onnx_dtype": "float32"}}}))
    with pytest.raises(MeasurementError, match="--tf32"):
        trt_runtime.make_runner("tensorrt", artifact=engine_file, model=None, input_shape=(1, 3, 8, 8),
                                precision="fp32", threads=None, options={"tf32": True})
    runner = trt_runtime.make_runner("tensorrt", artifact=engine_file, model=None, input_shape=(1, 3, 8, 8),
                                     precision="fp32", threads=None, options={"tf32": False})
    settings = runner.settings()  # what every record's runtime_settings holds
    assert (settings["tf32"], settings["typing"], settings["onnx_dtype"]) == (False, "strong", "float32")


@pytest.mark.parametrize("version", VERSIONS)
def test_profile_operators_gives_each_layers_median_time_and_precision(monkeypatch, engine_file, version):
    fake, world = install(monkeypatch, version)
    out = trt_runtime.profile_operators(artifact=engine_file, model=None, input_shape=(1, 3, 8, 8),
                                        precision="fp16", threads=None, options={}, runs=4)
    assert [r["name"] for r in out["rows"]] == [layer["Name"] for layer in LAYERS]
    assert [r["trt_layer_type"] for r in out["rows"]] == [layer["LayerType"] for layer in LAYERS]
    # no ONNX graph beside this engine: each layer is named by its TensorRT type, in operator names
    assert [r["op_type"] for r in out["rows"]] == ["Conv", "MaxPool", "Gemm"]
    assert [r["onnx_nodes"] for r in out["rows"]] == [["/stem/conv/Conv", "/stem/act/Relu"],
                                                      ["/head/pool/GlobalAveragePool"], ["/head/fc/Gemm"]]
    assert [r["precision"] for r in out["rows"]] == ["fp16", "fp16", "fp32"]
    assert [r["time_ms"] for r in out["rows"]] == [LAYER_MS[layer["Name"]] for layer in LAYERS]
    assert len(out["profiled_ms"]) == 4 and statistics.median(out["profiled_ms"]) == pytest.approx(
        sum(LAYER_MS.values()))
    assert any("3 categorised by TensorRT's layer type only (the ONNX graph the engine was built from is not "
               "beside it)" in n for n in out["notes"])
    # profiled launches are enqueued (a graph replay would report nothing), reported after the stream finishes
    assert fake.called("IExecutionContext.enqueue_emits_profile=") == [((False,), {})]
    assert len(fake.called("IExecutionContext.report_to_profiler")) == 4


@pytest.mark.parametrize("version", VERSIONS)
def test_profiled_layers_are_read_back_to_the_graph_the_engine_was_built_from(monkeypatch, engine_file, version):
    import onnx
    from onnx import TensorProto, helper

    install(monkeypatch, version)
    nodes = [helper.make_node("Conv", ["input", "stem.conv.weight"], ["c"], name="/stem/conv/Conv"),
             helper.make_node("Relu", ["c"], ["r"], name="/stem/act/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="/head/pool/GlobalAveragePool"),
             helper.make_node("Flatten", ["p"], ["f"], name="/head/Flatten"),
             helper.make_node("Gemm", ["f", "head.fc.weight"], ["logits"], name="/head/fc/Gemm", transB=1)]
    weights = [helper.make_tensor("stem.conv.weight", TensorProto.FLOAT, [4, 3, 3, 3], [0.0] * 108),
               helper.make_tensor("head.fc.weight", TensorProto.FLOAT, [10, 4], [0.0] * 40)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], weights)
    source = engine_file.parent.parent / "model.onnx"
    onnx.save(helper.make_model(graph), str(source))
    manifest = {"format_meta": {"builder": {"onnx": str(source), "typing": "strong", "onnx_dtype": "float32"}}}
    (engine_file.parent / "manifest.json").write_text(json.dumps(manifest))
    out = trt_runtime.profile_operators(artifact=engine_file, model=None, input_shape=(1, 3, 8, 8),
                                        precision="fp32", threads=None, options={}, runs=2)
    assert [(r["op_type"], r.get("module"), r.get("params")) for r in out["rows"]] == [
        ("Conv", "stem.conv", ["stem.conv.weight"]), ("GlobalAveragePool", "head.pool", []),
        ("Gemm", "head.fc", ["head.fc.weight"])]
    assert any("3 by their metadata, 0 by their name, 0 inserted by TensorRT" in n for n in out["notes"])


def test_profile_operators_needs_an_engine_and_a_run():
    with pytest.raises(MeasurementError):
        trt_runtime.profile_operators(artifact=None, model=None, input_shape=(1, 3, 8, 8), precision="fp16",
                                      threads=None, options={}, runs=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_real_engine_launched_and_replayed(tmp_path):
    pytest.importorskip("tensorrt")
    from mobileone_bench import pipeline
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one

    prepared = pipeline.prepare("mobileone_tiny")
    onnx = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions(opset=17))
    result = export_one(prepared, FORMATS["tensorrt"], tmp_path, ExportOptions(opset=17),
                        context={"onnx": onnx.path, "onnx_manifest": onnx.manifest, "out": str(tmp_path)})
    assert result.ok, result.error
    for graph in (True, False):
        engine = TensorRTEngine(result.path, cuda_graph=graph)
        assert engine.mode == ("cuda-graph" if graph else "enqueue"), engine.graph_error
        assert len(engine.time(5, 20)) == 20 and engine.settings()["layer_precisions"].get("fp16", 0) > 0
        engine.close()
    prof = trt_runtime.profile_operators(artifact=result.path, model=None, input_shape=prepared.input_shape,
                                         precision="fp16", threads=None, options={}, runs=5)
    assert prof["rows"] and all(r["time_ms"] >= 0 for r in prof["rows"]) and len(prof["profiled_ms"]) == 5
    # the layers read back to the ONNX graph: depthwise and pointwise convolutions told apart, the FLOPs all placed
    from mobileone_bench.complexity_ops import module_map
    from mobileone_bench.pipeline.explain import operator_fields

    fields = operator_fields(prof, module_map(prepared.model, prepared.input_shape), None)
    assert {"depthwise-conv", "pointwise-conv"} <= {r["category"] for r in fields["operators"]}, prof["notes"]
    assert abs(fields["unmapped_flops"]) <= 0.01 * fields["flops"], prof["notes"]


def test_the_shared_module_lists_its_names():
    assert {"TensorRTEngine", "installed_tensorrt", "check_opset", "median_rows"} <= set(_tensorrt.__all__)
