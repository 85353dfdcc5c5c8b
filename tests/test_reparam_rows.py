"""Every available row of the paper's zoos is deployed with no BatchNorm left where one follows a convolution.

The reference is the model's own data flow: a BatchNorm whose input is produced by an ``nn.Conv2d`` (or by a
concatenation of them, as in MixNet's ``MixedConv2d``) must be gone in the inference-time model, whether FX can
trace the model (MobileNets) or not (MobileViT).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mobileone_bench.models import registry
from mobileone_bench.models.factory import create_model
from mobileone_bench.complexity import count_params
from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model, verify_reparam


def _rows() -> list[str]:
    names: dict[str, None] = {}
    for zoo in ("paper-table9", "paper-table13", "paper-table14"):
        for spec in registry.expand([], zoo=zoo, include_unavailable=False):
            names[spec.name] = None
    return list(names)


ROWS = _rows()


def _bn_after_conv(model: nn.Module, shape: tuple[int, ...]) -> list[str]:
    """Names of the BatchNorms whose input is the output of a convolution module or of timm's ``MixedConv2d``
    (an independent check)."""
    from timm.layers import MixedConv2d

    conv_outputs: set[int] = set()
    keep: list[torch.Tensor] = []
    hits: list[str] = []
    handles = []

    def post(mod, args, out):
        keep.append(out)
        conv_outputs.add(id(out))

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, MixedConv2d)):
            handles.append(m.register_forward_hook(post))
        elif isinstance(m, _BatchNorm):
            def pre(mod, args, name=name):
                if id(args[0]) in conv_outputs:
                    hits.append(name)
            handles.append(m.register_forward_pre_hook(pre))
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return hits


def test_the_zoos_have_their_rows():
    assert len(ROWS) >= 30  # 26 of Table 9, 5 of Table 13, RepVGG-B2 of Table 14 (the rest are unavailable)
    for expected in ("mixnet-s", "mobilevit-s", "mobilevit-xs", "mobilevit-xxs", "repvgg-b2", "tinynet-e"):
        assert expected in ROWS


@pytest.mark.slow
@pytest.mark.parametrize("name", ROWS)
def test_no_batchnorm_follows_a_conv_after_reparam(name):
    spec = registry.resolve(name)
    shape = registry.input_shape(spec, None)
    torch.manual_seed(0)
    train = create_model(spec)
    calibrate_bn(train, shape, steps=1, batch=2)
    before = _bn_after_conv(train, shape)
    result = reparameterize_model(train, input_shape=shape)
    assert result.bn_remaining == 0, result.note
    assert result.note == ""
    assert _bn_after_conv(result.model, shape) == []
    assert not any(isinstance(m, _BatchNorm) for m in result.model.modules())
    if before:  # every BN that followed a conv was folded (by a block's own hook, or here), so params shrank
        if not result.blocks_reparameterized:
            assert result.bn_folded == len(before)
        assert count_params(result.model) < count_params(train)
    assert verify_reparam(train, result.model, shape).passed


def test_reparam_cli_reports_remaining_bn(runner, cli):
    import json

    result = runner.invoke(cli, ["reparam", "mixnet-s", "--input-size", "64", "64", "--format", "json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["bn_folded"] == 49 and row["bn_remaining"] == 0 and row["check"] == "passed"
    assert row["params_infer"] < row["params_train"]
