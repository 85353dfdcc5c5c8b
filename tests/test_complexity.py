"""FLOPs and params against the paper's figures (Table 9, Table 13), on the inference-time model."""

from __future__ import annotations

import pytest

from mobileone_bench import pipeline
from mobileone_bench.models.factory import create_model
from mobileone_bench.reference import paper_row
from mobileone_bench.complexity import count_flops, profile_model


def _profile(name):
    return pipeline.profile(pipeline.prepare(name, check=False))


@pytest.mark.parametrize("name", ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4",
                                  "mobilenetv2-x1.0"])
def test_flops_within_1_percent_of_the_paper(name):
    row = paper_row(name)
    assert _profile(name)["flops_m"] == pytest.approx(row["flops_m"], rel=0.01)


@pytest.mark.parametrize("name", ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4",
                                  "mobilenetv1"])
def test_params_within_2_percent_of_the_paper(name):
    row = paper_row(name)
    assert _profile(name)["params_m"] == pytest.approx(row["params_m"], rel=0.02)


def test_known_deviations_from_the_paper_are_pinned():
    """Two of the paper's figures are quoted from the original papers and differ from every PyTorch implementation.

    MobileNetV1: 568.7M multiply-adds here, 569M in Howard et al. (2017); the MobileOne paper prints 575M (+1.1%),
    which fvcore gives only when it also counts the BatchNorm of the unfolded model. MobileNetV2: 3.488M parameters
    here (3.505M before BN folding, as timm and torchvision report); the paper quotes the MobileNetV2 paper's 3.4M.
    """
    v1 = _profile("mobilenetv1")
    assert v1["flops_m"] == pytest.approx(569, rel=0.01)
    assert v1["flops_m"] < paper_row("mobilenetv1")["flops_m"] * 0.995
    v2 = _profile("mobilenetv2-x1.0")
    assert v2["params_m"] == pytest.approx(3.5, rel=0.01)
    assert v2["params_m"] > paper_row("mobilenetv2-x1.0")["params_m"] * 1.02


@pytest.mark.parametrize("name", ["mobileone_mu0", "mobileone_mu1", "mobileone_mu2"])
def test_micro_variants_match_table13(name):
    row = paper_row(name, "table13")
    got = _profile(name)
    assert got["flops_m"] == pytest.approx(row["flops_m"], rel=0.015)
    # Table 13 prints params with two significant digits (0.57, 0.98, 1.3): compare within that rounding
    assert abs(got["params_m"] - row["params_m"]) <= 0.05 * row["params_m"]


def test_train_time_model_is_never_counted():
    model = create_model("timm:mobileone_s0")  # k = 4 branches: 1.09 GMACs if counted as is
    assert profile_model(model, (1, 3, 224, 224)).flops_m == pytest.approx(275, rel=0.01)
    raw_flops, _ = count_flops(model, (1, 3, 224, 224))
    assert raw_flops / 1e6 > 1000


def test_attention_is_counted_for_vision_transformers():
    got = _profile("deit-tiny")
    assert got["flops_by_op"].get("_scaled_dot_product_flash_attention_for_cpu", 0) > 1e8
    assert got["flops_m"] == pytest.approx(1254, rel=0.01)


def test_other_input_size():
    full = _profile("mobileone_s0")
    small = pipeline.profile(pipeline.prepare("mobileone_s0", input_size=(112, 112), check=False))
    assert small["input_shape"] == [1, 3, 112, 112]
    linear = full["flops_by_op"]["addmm"]  # the classifier costs the same at any size
    assert small["flops_by_op"]["addmm"] == linear
    # convolutions scale with the number of pixels (up to the odd 7 -> 4 map of the last stride)
    assert small["flops_by_op"]["convolution"] == pytest.approx(full["flops_by_op"]["convolution"] / 4, rel=0.03)
