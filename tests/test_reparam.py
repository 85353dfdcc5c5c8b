"""Re-parameterization: BN folding math, equivalence for own and timm branchy models, typed mismatch error."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mobileone_bench.models.factory import create_model
from mobileone_bench.errors import ReparamMismatchError
from mobileone_bench.reparameterization import (
    calibrate_bn,
    fold_conv_bn,
    reparameterize,
    reparameterize_model,
    verify_reparam,
)
from tests.conftest import randomize_bn


def test_fold_conv_bn_matches_conv_then_bn():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=True)
    bn = nn.BatchNorm2d(6).eval()
    randomize_bn(bn)
    w, b = fold_conv_bn(conv.weight, conv.bias, bn)
    x = torch.randn(2, 4, 7, 7)
    # direct computation of the paper's formula
    sigma = torch.sqrt(bn.running_var + bn.eps)
    expected = (conv(x) - bn.running_mean[None, :, None, None]) / sigma[None, :, None, None]
    expected = expected * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    torch.testing.assert_close(nn.functional.conv2d(x, w, b, padding=1), expected, rtol=1e-5, atol=1e-5)


def test_calibrate_bn_tames_random_activations():
    model = create_model("mobileone_s0")
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        raw = model(x).abs().max().item()
    n = calibrate_bn(model, (1, 3, 96, 96))
    with torch.no_grad():
        calibrated = model(x).abs().max().item()
    assert n > 100
    assert raw > 1e3 * calibrated  # default statistics explode through ~40 layers
    assert calibrated < 100
    assert not model.training


OWN = ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4", "mobileone_mu0",
       "mobileone_mu1", "mobileone_mu2", "mobileone_tiny"]


@pytest.mark.parametrize("name", OWN + ["timm:mobileone_s1", "timm:repvgg_a0", "timm:fastvit_t8"])
def test_reparameterized_model_is_equivalent(name):
    shape = (1, 3, 64, 64)
    torch.manual_seed(0)
    model = create_model(name)
    calibrate_bn(model, shape)
    randomize_bn(model, seed=1)  # non-trivial gamma/beta too
    calibrate_bn(model, shape)
    result = reparameterize_model(model)
    assert result.blocks_reparameterized > 0
    check = verify_reparam(model, result.model, shape)
    assert check.passed and check.max_rel_err < 1e-4
    assert check.ref_max_abs < 1e4
    # nothing branchy is left
    assert not any(hasattr(m, "rbr_conv") and m.rbr_conv is not None for m in result.model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in result.model.modules())
    # the original is untouched (not in place by default)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_plain_cnn_batchnorm_is_folded_into_convs():
    model = create_model("mobilenetv2-x1.0")
    calibrate_bn(model, (1, 3, 64, 64))
    result = reparameterize_model(model)
    assert result.blocks_reparameterized == 0
    assert result.bn_folded == 52 and result.bn_remaining == 0
    assert verify_reparam(model, result.model, (1, 3, 64, 64)).passed
    # timm's BatchNormAct2d keeps its activation after folding
    eff = create_model("efficientnet-b0")
    calibrate_bn(eff, (1, 3, 64, 64))
    r2 = reparameterize_model(eff)
    assert r2.bn_remaining == 0 and verify_reparam(eff, r2.model, (1, 3, 64, 64)).passed


def test_models_fx_cannot_trace_are_folded_too():
    # MobileViT's FX trace fails (TraceError); the recorded data flow does not need one
    model = create_model("mobilevit-xxs")
    shape = (1, 3, 64, 64)
    calibrate_bn(model, shape, steps=2, batch=2)
    result = reparameterize_model(model, input_shape=shape)
    assert result.bn_folded == 32 and result.bn_remaining == 0 and result.note == ""
    assert verify_reparam(model, result.model, shape).passed


def test_bn_after_concatenated_convs_is_folded_per_slice():
    # timm's MixedConv2d: split -> one conv per group of channels -> cat -> BN
    from timm.layers import MixedConv2d

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = MixedConv2d(6, 10, kernel_size=[3, 5, 7], padding="")
            self.bn = nn.BatchNorm2d(10)

        def forward(self, x):
            return self.bn(self.conv(x)).relu()

    torch.manual_seed(0)
    model = Mixed().eval()
    randomize_bn(model)
    result = reparameterize_model(model, input_shape=(1, 6, 12, 12))
    assert result.bn_folded == 1 and result.bn_remaining == 0
    check = verify_reparam(model, result.model, (1, 6, 12, 12))
    assert check.passed and check.max_rel_err < 1e-5
    # the convolutions stay where they were, each with its slice of the BN folded in
    assert all(c.bias is not None for c in result.model.conv.values())


def test_bn_that_follows_no_conv_is_left_with_the_reason():
    class Pre(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn0 = nn.BatchNorm2d(3)
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn1 = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn1(self.conv(self.bn0(x)))

    model = Pre().eval()
    randomize_bn(model)
    result = reparameterize_model(model, input_shape=(1, 3, 8, 8))
    assert result.bn_folded == 1 and result.bn_remaining == 1
    assert result.bn_unfolded == {"bn0": "does not follow a convolution"}
    assert "1 BN not folded: 1 does not follow a convolution (bn0)" == result.note
    assert verify_reparam(model, result.model, (1, 3, 8, 8)).passed


def test_weight_transforming_and_shared_convs_are_not_folded():
    from timm.layers import StdConv2d

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.std = StdConv2d(3, 4, 3, padding=1)
            self.bn_std = nn.BatchNorm2d(4)
            self.shared = nn.Conv2d(4, 4, 1)
            self.bn_a = nn.BatchNorm2d(4)
            self.bn_b = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.bn_std(self.std(x))
            return self.bn_a(self.shared(y)) + self.bn_b(self.shared(y))

    model = Odd().eval()
    randomize_bn(model)
    result = reparameterize_model(model, input_shape=(1, 3, 8, 8))
    assert result.bn_folded == 0 and result.bn_remaining == 3
    assert "transforms its weights" in result.bn_unfolded["bn_std"]
    assert "runs 2 times" in result.bn_unfolded["bn_a"]
    assert verify_reparam(model, result.model, (1, 3, 8, 8)).passed


def test_conv_output_used_twice_is_not_folded():
    class TwoUsers(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    model = TwoUsers().eval()
    randomize_bn(model)
    result = reparameterize_model(model, input_shape=(1, 3, 8, 8))
    assert result.bn_folded == 0 and "used elsewhere" in result.bn_unfolded["bn"]
    assert verify_reparam(model, result.model, (1, 3, 8, 8)).passed


def test_mismatch_raises_typed_error_with_figures():
    model = create_model("mobileone_tiny")
    calibrate_bn(model, (1, 3, 64, 64))
    broken = reparameterize(model)
    with torch.no_grad():
        broken.stage0.reparam_conv.weight.add_(0.5)
    with pytest.raises(ReparamMismatchError) as info:
        verify_reparam(model, broken, (1, 3, 64, 64))
    assert info.value.max_abs_err > 1e-3
    result = verify_reparam(model, broken, (1, 3, 64, 64), raise_on_mismatch=False)
    assert not result.passed


def test_reparameterize_is_idempotent():
    model = create_model("mobileone_tiny")
    calibrate_bn(model, (1, 3, 64, 64))
    once = reparameterize(model)
    twice = reparameterize(copy.deepcopy(once))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(once(x), twice(x))
