"""TensorRT's engine layers read back to the ONNX nodes and modules they were built from (``devices/_trt_layers``).

The layer names and metadata below are TensorRT's own forms, as they appear in public engine-inspector output and
``trtexec --dumpProfile`` logs (``Conv_0 + Relu_1``, ``Conv_68 || Conv_72``, ``PWN(PWN(/m/act/Sigmoid), /m/act/Mul)``,
``Reformatting CopyNode for Input Tensor 0 to ...``, ``{ForeignNode[A...B]}``, ``<tensor> copy``) and as the ONNX
parser writes metadata (``[ONNX Layer: <name>]``, parts joined by ``\\x1f``). The end-to-end tests fuse the nodes of
a real ONNX export of ``mobileone_tiny`` (the torch exporter's names and metadata) the way TensorRT does, then check
that ``explain``'s categories tell depthwise from pointwise convolutions and that the layers' FLOPs sum to the
model's, as ``profile`` counts them. No TensorRT runs here (none can be imported on a machine without a GPU).
"""

from __future__ import annotations

import pytest

from mobileone_bench.devices import _trt_layers as trt_layers
from mobileone_bench.pipeline.explain import operator_fields
from tests.test_explain import modules, onnx_path, prepared  # noqa: F401 - the same tiny model's fixtures

ACTIVATIONS = {"Relu", "Add", "Clip", "HardSigmoid", "HardSwish"}


@pytest.mark.parametrize("metadata, nodes", [
    ("[ONNX Layer: node_conv2d_1]", ["node_conv2d_1"]),
    ("[ONNX Layer: /stem/Conv]\x1f[ONNX Layer: /stem/act/Relu]", ["/stem/Conv", "/stem/act/Relu"]),
    ("[ONNX Layer: a]\x1f[ONNX Layer: b]\x1e[ONNX Layer: c]", ["a", "b", "c"]),
    ("[ONNX Layer: node_mul_3 | Local Function: se_block]", ["node_mul_3"]),
    ("", []), (None, []),
])
def test_the_parsers_metadata_tags_name_the_nodes(metadata, nodes):
    assert trt_layers.metadata_nodes(metadata) == nodes


GRAPH = dict.fromkeys(["Conv_0", "Relu_1", "MaxPool_2", "Conv_68", "Conv_72", "Conv_531", "LeakyRelu_532",
                       "/model.19/act/Sigmoid", "/model.19/act/Mul", "Transpose_7808", "Reshape_7812",
                       "Reshape_7814"], {})


@pytest.mark.parametrize("name, kind, nodes", [
    ("Conv_0 + Relu_1", "fused", ["Conv_0", "Relu_1"]),
    ("MaxPool_2", "fused", ["MaxPool_2"]),
    ("Conv_68 || Conv_72", "fused", ["Conv_68", "Conv_72"]),
    ("Conv_531 + PWN(LeakyRelu_532)", "fused", ["Conv_531", "LeakyRelu_532"]),
    ("PWN(PWN(/model.19/act/Sigmoid), /model.19/act/Mul)", "fused", ["/model.19/act/Sigmoid", "/model.19/act/Mul"]),
    ("Reformatting CopyNode for Input Tensor 0 to Conv_0 + Relu_1", "reformat", []),
    ("Reformatting CopyNode for Output Tensor 0 to MaxPool_2", "reformat", []),
    ("/model.9/cv2/act/Mul_output_0 copy", "copy", []),
    ("{ForeignNode[Transpose_7808...Reshape_7814]}", "foreign", ["Transpose_7808", "Reshape_7812", "Reshape_7814"]),
    ("{ForeignNode[(Unnamed Layer* 3274) [Shuffle]...Reshape_7814]}", "foreign", ["Reshape_7814"]),
    ("(Unnamed Layer* 882) [Shuffle]", "fused", []),
])
def test_tensorrts_layer_names_are_read_by_its_fusion_grammar(name, kind, nodes):
    assert trt_layers.name_nodes(name, GRAPH) == (kind, nodes)


@pytest.fixture(scope="module")
def graph(onnx_path):
    return trt_layers.read_graph_nodes(onnx_path)


def _engine_layers(graph, *, metadata: bool) -> list[dict]:
    """The layers TensorRT would build from ``graph``: each convolution or matrix product fused with the activations
    and adds after it (``A + B``), a sigmoid with its multiply (``PWN(PWN(A), B)``), every other node alone, and a
    reformat of the input first; named as TensorRT names them, with the parser's metadata when ``metadata``."""
    names, layers, i = list(graph), [], 0
    layers.append({"name": f"Reformatting CopyNode for Input Tensor 0 to {names[0]}", "op_type": "Reformat",
                   "time_ms": 0.01, "onnx_nodes": []})
    while i < len(names):
        group = [names[i]]
        op = graph[names[i]]["op_type"]
        if op in ("Conv", "Gemm", "MatMul"):
            while i + len(group) < len(names) and graph[names[i + len(group)]]["op_type"] in ACTIVATIONS:
                group.append(names[i + len(group)])
            name, kind = " + ".join(group), "CaskConvolution" if op == "Conv" else "CaskGemmConvolution"
        elif op == "Sigmoid" and i + 1 < len(names) and graph[names[i + 1]]["op_type"] == "Mul":
            group.append(names[i + 1])
            name, kind = f"PWN(PWN({group[0]}), {group[1]})", "PointWiseV2"
        else:
            name, kind = group[0], "CaskPooling" if "Pool" in op or op.startswith("Reduce") else "Shuffle"
        layers.append({"name": name, "op_type": kind, "time_ms": 0.1,
                       "onnx_nodes": list(group) if metadata else []})
        i += len(group)
    return layers


@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "names"])
def test_layers_are_categorised_by_their_onnx_nodes_and_hold_the_models_flops(graph, modules, metadata):
    rows = _engine_layers(graph, metadata=metadata)
    counts = trt_layers.annotate(rows, graph)
    assert counts == {"metadata": len(rows) - 1 if metadata else 0, "name": 0 if metadata else len(rows) - 1,
                      "inserted": 1, "unmapped": 0}
    fields = operator_fields({"rows": rows, "profiled_ms": [0.1 * len(rows)]}, modules, e2e_ms=0.1 * len(rows))
    cats = {r["category"] for r in fields["operators"]}
    assert {"dense-conv", "depthwise-conv", "pointwise-conv", "gating", "linear", "data-movement"} <= cats
    assert sum(r["flops"] for r in fields["operators"]) == modules.total and fields["unmapped_flops"] == 0
    first = fields["operators"][0]
    assert (first["op_type"], first["category"], first["flops"]) == ("Reformat", "data-movement", 0)
    assert all(r["trt_layer_type"] for r in rows)  # TensorRT's own type is kept beside the ONNX op type


def test_a_horizontal_fusion_holds_both_convolutions_flops(graph, modules):
    convs = [n for n, info in graph.items() if info["op_type"] == "Conv"][1:3]
    rows = [{"name": " || ".join(convs), "op_type": "CaskConvolution", "time_ms": 0.2, "onnx_nodes": []}]
    trt_layers.annotate(rows, graph)
    assert rows[0]["modules"] == [graph[c]["module"] for c in convs]
    fields = operator_fields({"rows": rows, "profiled_ms": [0.2]}, modules, e2e_ms=0.2)
    assert fields["operators"][0]["flops"] == sum(modules.flops[graph[c]["module"]] for c in convs)


def test_without_the_graph_a_layer_falls_back_to_its_tensorrt_type(modules):
    rows = [{"name": "/stem/conv/Conv + /stem/act/Relu", "op_type": "CaskConvolution", "time_ms": 0.3},
            {"name": "/head/pool/GlobalAveragePool", "op_type": "CaskPooling", "time_ms": 0.1},
            {"name": "/head/fc/Gemm", "op_type": "CaskGemmConvolution", "time_ms": 0.05},
            {"name": "Reformatting CopyNode for Input Tensor 0 to /head/fc/Gemm", "op_type": "Reformat",
             "time_ms": 0.01},
            {"name": "{ForeignNode[/a/MatMul.../a/Softmax]}", "op_type": "Myelin", "time_ms": 0.2}]
    assert trt_layers.annotate(rows, {}) == {"metadata": 0, "name": 0, "inserted": 1, "unmapped": 4}
    fields = operator_fields({"rows": rows, "profiled_ms": [0.66]}, None, e2e_ms=0.66)
    assert [r["category"] for r in fields["operators"]] == ["dense-conv", "pooling", "linear", "data-movement",
                                                           "other"]


def test_the_fp16_graphs_wrapper_prefix_is_stripped(prepared, modules, tmp_path):
    from mobileone_bench.formats.onnx import HALF_PREFIX, export_fp16

    facts = export_fp16(prepared.model, prepared.input_shape, tmp_path / "model.fp16.onnx", opset=18)
    assert facts["module_prefix"] == HALF_PREFIX
    graph = trt_layers.read_graph_nodes(tmp_path / "model.fp16.onnx", facts["module_prefix"])
    convs = [info for info in graph.values() if info["op_type"] == "Conv"]
    assert convs and all(info["module"] in modules.conv for info in convs)
    assert all(modules.owner(info["params"]) == info["module"] for info in convs)
    raw = trt_layers.read_graph_nodes(tmp_path / "model.fp16.onnx")
    assert all(info["module"].startswith(HALF_PREFIX) for info in raw.values() if info["op_type"] == "Conv")
