"""The per-operator schema (store/operators.py) and the categories of operators (complexity_ops.py), on small
hand-built graphs of each kind (issue 30): a depthwise convolution is not a dense one, a 1x1 convolution is pointwise,
a squeeze-excite block is gating, a branch merge is element-wise, a dynamic activation is one; and the honesty of a
profile (coverage flagged outside the documented range, the profiler's overhead)."""

from __future__ import annotations

import pytest

from mobileone_bench.complexity_ops import (
    GraphNode,
    ModuleMap,
    assign_flops,
    categorize_row,
    conv_category,
    normalize_op,
    op_category,
    shape_macs,
    structural_categories,
)
from mobileone_bench.store.operators import (
    CATEGORIES,
    COVERAGE_RANGE,
    OPERATOR_FIELDS,
    category_totals,
    operator_row,
    operator_rows,
)

# ------------------------------------------------------------------------------------------------ convolutions


@pytest.mark.parametrize("weight, inp, expected", [
    ([32, 1, 3, 3], [1, 32, 56, 56], "depthwise-conv"),   # groups = 32 = input channels
    ([64, 32, 1, 1], [1, 32, 56, 56], "pointwise-conv"),  # 1x1, groups 1
    ([64, 32, 3, 3], [1, 32, 56, 56], "dense-conv"),      # 3x3, groups 1
    ([64, 8, 3, 3], [1, 32, 56, 56], "grouped-conv"),     # groups 4 of 32
    ([16, 3, 3, 3], [1, 3, 224, 224], "dense-conv"),      # a stem: 3 input channels, groups 1
    ([32, 1, 1, 1], [1, 32, 56, 56], "depthwise-conv"),   # a 1x1 depthwise (MobileOne's scale branch) is depthwise
])
def test_a_convolution_is_categorised_by_its_geometry(weight, inp, expected):
    assert op_category("Conv", weight_shape=weight, input_shape=inp) == expected
    assert op_category("aten::conv2d", weight_shape=weight, input_shape=inp) == expected


def test_a_depthwise_conv_is_not_dense_and_a_1x1_is_pointwise():
    assert conv_category(32, 32, (3, 3)) == "depthwise-conv" != "dense-conv"
    assert conv_category(1, 32, (1, 1)) == "pointwise-conv"
    assert conv_category(1, 32, (3, 3)) == "dense-conv"
    assert conv_category(4, 32, (3, 3)) == "grouped-conv"


@pytest.mark.parametrize("op, expected", [
    ("Relu", "activation"), ("aten::hardswish", "activation"), ("Sigmoid", "activation"), ("aten::gelu", "activation"),
    ("Add", "elementwise"), ("aten::add", "elementwise"), ("Mul", "elementwise"),
    ("GlobalAveragePool", "pooling"), ("aten::adaptive_avg_pool2d", "pooling"), ("MaxPool", "pooling"),
    ("Reshape", "data-movement"), ("aten::flatten", "data-movement"), ("ReorderInput", "data-movement"),
    ("Transpose", "data-movement"), ("aten::cat", "data-movement"),
    ("BatchNormalization", "normalization"), ("aten::layer_norm", "normalization"),
    ("Gemm", "linear"), ("aten::linear", "linear"), ("Softmax", "attention"),
    ("aten.convolution.default", "dense-conv"), ("SomethingNew", "other"),
])
def test_every_other_operator_by_its_type(op, expected):
    assert op_category(op) == expected


def test_a_matrix_product_between_activations_in_attention_is_attention_and_with_a_weight_linear():
    assert op_category("MatMul", context="attention", has_weight=False) == "attention"
    assert op_category("MatMul", context="attention", has_weight=True) == "linear"
    assert op_category("MatMul") == "linear"


def test_op_names_are_normalised_across_runtimes():
    assert normalize_op("aten::conv2d") == "conv2d"
    assert normalize_op("aten.convolution.default") == "convolution"
    assert normalize_op("com.microsoft.nchwc:Conv") == "conv"


def test_shape_macs_counts_a_convolution_and_a_matrix_product():
    assert shape_macs("Conv", [[1, 32, 8, 8], [32, 1, 3, 3]], [[1, 32, 8, 8]]) == 32 * 8 * 8 * 9
    assert shape_macs("MatMul", [[1, 4, 16, 8], [1, 4, 8, 16]], [[1, 4, 16, 16]]) == 4 * 16 * 8 * 16
    # onnxruntime's FusedMatMul with a transposed operand (its inputs' shapes are before the transpose): q @ k^T of
    # 6 tokens against 196 positions, 24 channels, 4 heads; and transA: a stored [K, M]
    assert shape_macs("FusedMatMul", [[1, 4, 6, 24], [1, 4, 196, 24]], [[1, 4, 6, 196]]) == 4 * 6 * 196 * 24
    assert shape_macs("FusedMatMul", [[1, 24, 6], [1, 24, 196]], [[1, 6, 196]]) == 6 * 196 * 24
    assert shape_macs("MatMul", [[197, 192], [192, 576]], [[197, 576]]) == 197 * 192 * 576  # a 2-D product
    assert shape_macs("Relu", [[1, 8]], [[1, 8]]) is None


# ------------------------------------------------------------------------------------------------ graphs


def _node(name, op, inputs, outputs, in_shapes, out_shapes, constants=()):
    return GraphNode(name, op, list(inputs), list(outputs), list(in_shapes), list(out_shapes), set(constants))


FMAP = [1, 32, 8, 8]
VEC = [1, 32, 1, 1]


def se_graph():
    """x -> conv -> [ReduceMean -> Conv 1x1 -> Relu -> Conv 1x1 -> Sigmoid] -> Mul(x, gate) -> Relu."""
    return [
        _node("conv", "Conv", ["in", "w0"], ["x"], [FMAP, [32, 32, 3, 3]], [FMAP], ["w0"]),
        _node("pool", "ReduceMean", ["x", "axes"], ["p"], [FMAP, [2]], [VEC], ["axes"]),
        _node("reduce", "Conv", ["p", "w1"], ["r"], [VEC, [8, 32, 1, 1]], [[1, 8, 1, 1]], ["w1"]),
        _node("relu", "Relu", ["r"], ["r2"], [[1, 8, 1, 1]], [[1, 8, 1, 1]]),
        _node("expand", "Conv", ["r2", "w2"], ["e"], [[1, 8, 1, 1], [32, 8, 1, 1]], [VEC], ["w2"]),
        _node("sigmoid", "Sigmoid", ["e"], ["g"], [VEC], [VEC]),
        _node("gate", "Mul", ["x", "g"], ["y"], [FMAP, VEC], [FMAP]),
        _node("act", "Relu", ["y"], ["z"], [FMAP], [FMAP]),
    ]


def test_a_squeeze_excite_block_is_gating_and_the_rest_keeps_its_type():
    found = structural_categories(se_graph(), ["z"])
    assert {n for n, c in found.items() if c == "gating"} == {"pool", "reduce", "relu", "expand", "sigmoid", "gate"}
    assert "conv" not in found and "act" not in found
    rows = [{"name": n.name, "op_type": n.op_type, "structural": found.get(n.name), "input_shapes": n.input_shapes}
            for n in se_graph()]
    cats = {r["name"]: categorize_row(r) for r in rows}
    assert cats["conv"] == "dense-conv" and cats["act"] == "activation" and cats["gate"] == "gating"


def test_a_classifier_head_is_pooling_and_linear_not_a_gate():
    nodes = [
        _node("pool", "GlobalAveragePool", ["x"], ["p"], [FMAP], [VEC]),
        _node("flat", "Flatten", ["p"], ["f"], [VEC], [[1, 32]]),
        _node("fc", "Gemm", ["f", "w", "b"], ["logits"], [[1, 32], [10, 32], [10]], [[1, 10]], ["w", "b"]),
    ]
    assert structural_categories(nodes, ["logits"]) == {}
    assert [op_category(n.op_type) for n in nodes] == ["pooling", "data-movement", "linear"]


def test_a_branch_merge_is_elementwise():
    nodes = [
        _node("a", "Conv", ["x", "wa"], ["ya"], [FMAP, [32, 32, 3, 3]], [FMAP], ["wa"]),
        _node("b", "Conv", ["x", "wb"], ["yb"], [FMAP, [32, 32, 1, 1]], [FMAP], ["wb"]),
        _node("merge", "Add", ["ya", "yb"], ["y"], [FMAP, FMAP], [FMAP]),
    ]
    assert structural_categories(nodes, ["y"]) == {}
    rows = [{"name": n.name, "op_type": n.op_type, "input_shapes": n.input_shapes} for n in nodes]
    assert [categorize_row(r) for r in rows] == ["dense-conv", "pointwise-conv", "elementwise"]


def test_a_dynamic_relu_is_a_dynamic_activation():
    """Coefficients from a pooled vector, applied by several multiplies and adds, then a max over the pieces."""
    coef = [1, 128]
    nodes = [
        _node("pool", "ReduceMean", ["x", "axes"], ["p"], [FMAP, [2]], [[1, 32]], ["axes"]),
        _node("fc", "Gemm", ["p", "w", "b"], ["t"], [[1, 32], [128, 32], [128]], [coef], ["w", "b"]),
        _node("view", "Reshape", ["t", "shape"], ["t4"], [coef, [4]], [[1, 128, 1, 1]], ["shape"]),
        _node("split", "Split", ["t4"], ["a1", "b1", "a2", "b2"], [[1, 128, 1, 1]], [VEC] * 4),
        _node("m1", "Mul", ["a1", "x"], ["u1"], [VEC, FMAP], [FMAP]),
        _node("s1", "Add", ["u1", "b1"], ["v1"], [FMAP, VEC], [FMAP]),
        _node("m2", "Mul", ["a2", "x"], ["u2"], [VEC, FMAP], [FMAP]),
        _node("s2", "Add", ["u2", "b2"], ["v2"], [FMAP, VEC], [FMAP]),
        _node("max", "Max", ["v1", "v2"], ["y"], [FMAP, FMAP], [FMAP]),
        _node("next", "Conv", ["y", "w3"], ["z"], [FMAP, [32, 32, 1, 1]], [FMAP], ["w3"]),
    ]
    found = structural_categories(nodes, ["z"])
    assert set(found.values()) == {"dynamic-activation"}
    assert set(found) == {"pool", "fc", "view", "split", "m1", "s1", "m2", "s2", "max"}


def test_a_module_context_outranks_the_graph_and_the_type():
    modules = ModuleMap(contexts={"block.se": "gating", "block.act": "dynamic-activation"},
                        conv={"block.dw": (32, 32, (3, 3), 32)})
    assert categorize_row({"op_type": "aten::mul", "module": "block.se"}, modules) == "gating"
    assert categorize_row({"op_type": "aten::linear", "module": "block.act.hyper.fc"}, modules) == "dynamic-activation"
    assert categorize_row({"op_type": "aten::conv2d", "module": "block.dw"}, modules) == "depthwise-conv"
    assert categorize_row({"op_type": "Conv", "category": "pointwise-conv"}, modules) == "pointwise-conv"


def test_flops_go_to_the_module_once_and_the_rest_is_unmapped_not_spread():
    modules = ModuleMap(total=1000, flops={"c1": 600, "c2": 300}, conv={"c1": (1, 8, (3, 3), 8),
                                                                        "c2": (1, 8, (1, 1), 8)})
    rows = [{"op_type": "Conv", "module": "c1"}, {"op_type": "Relu"}, {"op_type": "Conv", "module": "c2"}]
    left = assign_flops(rows, modules)
    assert [r["flops"] for r in rows] == [600, 0, 300]
    assert left == 100


# ------------------------------------------------------------------------------------------------ the schema


def test_an_operator_row_has_every_field_and_refuses_unknown_ones():
    row = operator_row(name="n", op_type="Conv", category="depthwise-conv", time_ms=1.0)
    assert tuple(row) == OPERATOR_FIELDS and row["flops"] is None
    assert operator_row(name="n")["category"] == "other"
    with pytest.raises(ValueError, match="unknown operator field"):
        operator_row(name="n", colour="red")
    with pytest.raises(ValueError, match="unknown operator category"):
        operator_row(name="n", category="convolution")


def test_category_totals_sum_time_and_flops_in_the_categories_order():
    rows = [operator_row(name="a", category="pointwise-conv", time_ms=3.0, flops=300),
            operator_row(name="b", category="depthwise-conv", time_ms=1.0, flops=100),
            operator_row(name="c", category="pointwise-conv", time_ms=1.0, flops=100),
            operator_row(name="d", category="gating", time_ms=5.0, flops=0)]
    totals = category_totals(rows)
    assert list(totals) == [c for c in CATEGORIES if c in totals]
    assert totals["pointwise-conv"]["count"] == 2 and totals["pointwise-conv"]["time_ms"] == 4.0
    assert totals["pointwise-conv"]["share"] == pytest.approx(0.4)
    assert totals["pointwise-conv"]["flop_share"] == pytest.approx(0.8)
    assert totals["gating"]["share"] == pytest.approx(0.5) and totals["gating"]["flop_share"] == 0


def test_a_compute_plan_without_times_shares_its_cost():
    rows = [operator_row(name="a", category="dense-conv", cost=0.75), operator_row(name="b", category="activation",
                                                                                  cost=0.25)]
    totals = category_totals(rows)
    assert totals["dense-conv"]["share"] == 0.75 and totals["dense-conv"]["time_ms"] is None


def test_operator_rows_read_back_the_stored_json():
    import json

    rows = [operator_row(name="a", category="dense-conv", time_ms=1.0)]
    assert operator_rows({"operators": json.dumps(rows)}) == rows
    assert operator_rows({}) == []


# ------------------------------------------------------------------------------------------------ honesty


def _result(times, profiled):
    return {"rows": [{"name": f"n{i}", "op_type": "Conv", "time_ms": t, "category": "pointwise-conv", "flops": 10 ** 6}
                     for i, t in enumerate(times)], "profiled_ms": profiled, "notes": []}


def test_coverage_inside_the_range_is_ok_and_the_overhead_is_recorded():
    from mobileone_bench.pipeline.explain import operator_fields

    fields = operator_fields(_result([0.5, 0.5], [1.1, 1.1, 1.1]), None, 1.0)
    assert fields["coverage"] == pytest.approx(1.0) and fields["coverage_ok"] is True
    assert fields["profiler_overhead"] == pytest.approx(0.1)
    assert fields["operators"][0]["share"] == pytest.approx(0.5)
    assert fields["operators"][0]["gflops_per_s"] == pytest.approx(2 * 1e6 / 0.5e-3 / 1e9)
    assert fields["coverage_range"] == list(COVERAGE_RANGE)


def test_coverage_below_the_range_is_flagged_with_a_note():
    from mobileone_bench.pipeline.explain import operator_fields

    fields = operator_fields(_result([0.2, 0.2], [1.0]), None, 1.0)
    assert fields["coverage"] == pytest.approx(0.4) and fields["coverage_ok"] is False
    assert any("outside" in n and "miss" in n for n in fields["notes"])


def test_an_operator_above_the_peak_gets_a_note():
    from mobileone_bench.pipeline.explain import operator_fields

    fields = operator_fields(_result([0.001], [1.0]), None, 1.0, peak_gflops=100.0)
    assert fields["operators"][0]["gflops_per_s"] > 100
    assert any("above the peak" in n for n in fields["notes"])


def test_core_ml_is_not_profiled_here_and_says_where_its_view_comes_from():
    from mobileone_bench.errors import UsageError
    from mobileone_bench.pipeline.explain import profiler_of
    from mobileone_bench.pipeline.job import LatencyJob

    with pytest.raises(UsageError, match="compute plan"):
        profiler_of(LatencyJob(device="iphone", runtime="coreml"))


def _explain_record(model, rows, e2e):
    from mobileone_bench.store.records import new_record

    ops = [operator_row(name=f"n{i}", category=c, time_ms=t, share=t / sum(x[1] for x in rows))
           for i, (c, t) in enumerate(rows)]
    return new_record("explain", {"model": model, "device": "cpu", "runtime": "torch", "threads": 1},
                      {"status": "ok", "source": "profiler", "operators": ops, "categories": category_totals(ops),
                       "e2e_ms": e2e, "coverage": 1.0, "coverage_ok": True}, {})


def test_section32_reads_tables_2_and_3_through_the_explain_records(tmp_path):
    import mobileone_bench as mb
    from mobileone_bench.analysis.table_text import render
    from mobileone_bench.store.records import ResultsStore

    store = ResultsStore(tmp_path)
    store.append(_explain_record("ablation30-relu", [("pointwise-conv", 8.0), ("activation", 2.0)], 10.0))
    store.append(_explain_record("ablation30-se", [("pointwise-conv", 8.0), ("gating", 3.0), ("activation", 1.0)],
                                 12.0))
    store.append(_explain_record("ablation30-skip", [("pointwise-conv", 8.0), ("elementwise", 2.0)], 10.5))
    table = mb.table("section32", results=tmp_path, as_frame=False)
    groups = {g["name"]: {r["model"]: r for r in g["rows"]} for g in table["groups"]}
    blocks = groups["Table 3: architectural blocks"]
    assert blocks["ablation30-se"]["gating_share"] == 25.0 and blocks["ablation30-se"]["vs_baseline_ms"] == 2.0
    assert blocks["ablation30-skip"]["branch_share"] == pytest.approx(100 * 2 / 10)
    assert groups["Table 2: activation functions"]["ablation30-relu"]["activation_share"] == 20.0
    assert "Gating / SE (%)" in render(table, "md")
    frame = mb.table("section32", results=tmp_path)
    assert set(frame["model"]) == {"ablation30-relu", "ablation30-se", "ablation30-skip"}


def test_a_weighted_node_traced_to_a_module_already_counted_is_counted_by_its_own_shapes():
    """Random-init transformers have identical (zero) biases, which the ONNX export keeps as one initializer: every
    block's qkv node then reads block 0's name. The second node is not given 0 FLOPs: its shapes count it, so the
    rows still sum to the model's total; a node without weights (attention's second product) stays at 0."""
    from mobileone_bench.complexity_ops import ModuleMap, assign_flops

    modules = ModuleMap(total=2 * 197 * 192 * 576 + 1000, flops={"blocks.0.qkv": 197 * 192 * 576,
                                                                 "blocks.1.qkv": 197 * 192 * 576, "attn": 1000})
    gemm = {"op_type": "Gemm", "input_shapes": [[197, 192], [192, 576]], "output_shapes": [[197, 576]],
            "module": "blocks.0.qkv", "params": ["blocks.0.qkv.bias"]}
    rows = [dict(gemm), dict(gemm),
            {"op_type": "MatMul", "input_shapes": [[1, 3, 4, 5], [1, 3, 5, 4]], "output_shapes": [[1, 3, 4, 4]],
             "module": "attn"},
            {"op_type": "MatMul", "input_shapes": [[1, 3, 4, 4], [1, 3, 4, 5]], "output_shapes": [[1, 3, 4, 5]],
             "module": "attn"}]
    left = assign_flops(rows, modules)
    assert [r["flops"] for r in rows] == [197 * 192 * 576, 197 * 192 * 576, 1000, 0]
    assert left == 0
