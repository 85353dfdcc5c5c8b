"""MobileOne: Table 7 / Table 17 as built, and the block's branches."""

from __future__ import annotations

import pytest
import torch

from mobileone_bench.models import registry
from mobileone_bench.models.archs.mobileone import TABLE7, TABLE17, MobileOne, MobileOneBlock, mobileone_cfg


def _blocks(model):
    return [m for m in model.modules() if isinstance(m, MobileOneBlock)]


@pytest.mark.parametrize("variant, depth", [("s0", 21), ("s4", 21), ("mu0", 13), ("mu1", 17), ("mu2", 17)])
def test_block_count_follows_the_tables(variant, depth):
    model = MobileOne(mobileone_cfg(variant))
    # the stem is one MobileOneBlock, every other MobileOne block is a depthwise + a pointwise MobileOneBlock
    assert len(_blocks(model)) == 1 + 2 * depth
    assert sum(r.blocks for r in mobileone_cfg(variant).stages) == 1 + depth


def test_widths_strides_and_branches_of_s0():
    model = MobileOne(mobileone_cfg("s0"))
    assert model.stage0.out_ch == 48 and model.stage0.stride == 2
    assert model.linear.in_features == 1024  # 512 x 2.0
    pointwise_out = [b.out_ch for b in _blocks(model) if b.kernel_size == 1]
    assert pointwise_out[:2] == [48, 48] and pointwise_out[2:10] == [128] * 8
    assert pointwise_out[10:20] == [256] * 10 and pointwise_out[20] == 1024
    assert all(b.num_branches == 4 for b in _blocks(model))
    strides = [b.stride for b in _blocks(model) if b.kernel_size == 3]
    assert strides.count(2) == 5  # stem + stages 2, 3, 4, 6 of Table 7


def test_stem_width_is_capped_at_64_as_in_the_released_models():
    assert MobileOne(mobileone_cfg("s1")).stage0.out_ch == 64  # Table 7 reads 64 x 1.5
    assert MobileOne(mobileone_cfg("s4")).stage0.out_ch == 64


def test_se_only_in_the_last_six_blocks_of_s4():
    model = MobileOne(mobileone_cfg("s4"))
    with_se = [not isinstance(b.se, torch.nn.Identity) for b in _blocks(model)]
    # Table 7: SE-ReLU in stage 5 (5 blocks) and stage 6 (1 block): 12 MobileOneBlocks at the end
    assert with_se == [False] * (len(with_se) - 12) + [True] * 12
    assert not any(not isinstance(b.se, torch.nn.Identity) for b in _blocks(MobileOne(mobileone_cfg("s3"))))


def test_branch_rules():
    dw = MobileOneBlock(8, 8, 3, 1, 8, num_branches=3)
    assert dw.rbr_skip is not None and dw.rbr_scale is not None and dw.num_branches == 3
    down = MobileOneBlock(8, 8, 3, 2, 8)
    assert down.rbr_skip is None  # shapes differ: no skip
    pw = MobileOneBlock(8, 16, 1)
    assert pw.rbr_scale is None and pw.rbr_skip is None  # 1x1 kernel: no scale branch


def test_tables_are_complete():
    assert set(TABLE7) == {"s0", "s1", "s2", "s3", "s4"}
    assert set(TABLE17) == {"mu0", "mu1", "mu2"}
    assert all(len(rows) == 6 for rows in (*TABLE7.values(), *TABLE17.values()))


def test_reparameterized_block_has_one_conv_and_same_output():
    from tests.conftest import randomize_bn

    torch.manual_seed(0)
    block = MobileOneBlock(8, 8, 3, 1, 8, num_branches=3).eval()
    randomize_bn(block)
    x = torch.randn(2, 8, 9, 9)
    before = block(x)
    block.reparameterize()
    assert block.rbr_conv is None and block.rbr_skip is None and block.rbr_scale is None
    assert block.reparam_conv is not None and block.reparam_conv.bias is not None
    torch.testing.assert_close(block(x), before, rtol=1e-5, atol=1e-5)


def test_every_own_model_is_registered():
    names = {s.name for s in registry.list_models("mobileone*")}
    assert {"mobileone_s0", "mobileone_s4", "mobileone_mu0", "mobileone_mu2", "mobileone_tiny"} <= names
