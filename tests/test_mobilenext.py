"""MobileNeXt (Zhou et al., ECCV 2020): the paper's table and width rules, the authors' block forms, complexity
against the authors' figures, the partial shortcut against a loop reference, re-parameterization, ONNX parity and
the authors' (and d-li14's) checkpoint layouts.

Figures (MFLOPs = mega multiply-adds / M params):

* the authors (MobileNeXt README and paper): x1.0 300 / 3.5 (the paper's Figure 1 prints 3.4M), x1.4 590 / 6.1;
* the MobileOne paper's Table 9: x1.0 311 / 3.4, x1.4 590 / 6.1.

The tests use the authors' figures (5% FLOPs, 3% params), and pin the tool's exact counts; the authors' own training
log of the x1.0 network prints ``param count: 3535416`` (train-time, BatchNorm included), pinned too.
"""

from __future__ import annotations

import argparse

import warnings

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mobileone_bench.models import registry
from mobileone_bench.models.factory import create_model
from mobileone_bench.models.archs.mobilenext import (
    TABLE,
    BlockCfg,
    MobileNeXt,
    SandglassBlock,
    block_table,
    make_divisible,
    mobilenext_cfg,
    mobilenext_dli14,
)
from mobileone_bench.models.checkpoints import load_weights
from mobileone_bench.complexity import count_params, profile_model
from mobileone_bench.errors import CheckpointError
from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model, verify_reparam

SMALL = (1, 3, 64, 64)
FULL = (1, 3, 224, 224)

# name -> (authors' MFLOPs, authors' M params, MobileOne Table 9 MFLOPs, Table 9 M params,
#          counted FLOPs, counted params)
FIGURES = {
    "mobilenext-x1.0": (300.0, 3.5, 311.0, 3.4, 311_342_592, 3_508_904),
    "mobilenext-x1.4": (590.0, 6.1, 590.0, 6.1, 588_319_256, 6_089_040),
}
AUTHORS_LOG_PARAMS_X1_0 = 3_535_416  # "Model mnext_mbv2_cfg created, param count: 3535416" (train-time, with BN)

# The paper's table: (t, c, n, s).
PAPER_TABLE = ((2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2), (6, 288, 3, 2), (6, 384, 4, 1), (6, 576, 4, 2),
               (6, 960, 3, 1), (6, 1280, 1, 1))
# Per block at x1.0, as the authors' training log prints the network:
# (in, hidden, out, stride, first dw, last dw, shortcut).
X1_0_BLOCKS = (
    (32, 16, 96, 2, True, True, False),
    (96, 32, 144, 1, True, True, False),
    (144, 32, 192, 2, False, True, False), (192, 32, 192, 1, True, True, True), (192, 32, 192, 1, True, True, True),
    (192, 48, 288, 2, False, True, False), (288, 48, 288, 1, True, True, True), (288, 48, 288, 1, True, True, True),
    (288, 64, 384, 1, False, False, False), *[(384, 64, 384, 1, True, True, True)] * 3,
    (384, 96, 576, 2, False, True, False), *[(576, 96, 576, 1, True, True, True)] * 3,
    (576, 160, 960, 1, False, False, False), *[(960, 160, 960, 1, True, True, True)] * 2,
    (960, 208, 1280, 1, True, True, False),
)
# Stem and row widths at x1.4 (make_divisible(c * 1.4, 8); the last stage scales too).
X1_4_WIDTHS = (48, 136, 200, 272, 400, 536, 808, 1344, 1792)
# A few keys of the authors' released layout (yitu-opensource/MobileNeXt, printed in their training log) and shapes.
AUTHORS_KEYS_X1_0 = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.running_var": (32,),
    "features.1.conv.0.weight": (32, 1, 3, 3),
    "features.1.conv.3.weight": (16, 32, 1, 1),
    "features.1.conv.5.weight": (96, 16, 1, 1),
    "features.1.conv.8.weight": (96, 1, 3, 3),
    "features.3.conv.0.weight": (32, 144, 1, 1),
    "features.3.conv.2.weight": (192, 32, 1, 1),
    "features.3.conv.5.weight": (192, 1, 3, 3),
    "features.9.conv.0.weight": (64, 288, 1, 1),
    "features.9.conv.2.weight": (384, 64, 1, 1),
    "features.16.conv.3.weight": (96, 576, 1, 1),
    "features.20.conv.3.weight": (208, 960, 1, 1),
    "features.20.conv.5.weight": (1280, 208, 1, 1),
    "features.20.conv.9.bias": (1280,),
    "classifier.1.weight": (1000, 1280),
}
# d-li14/mobilenext.pytorch: every block the full one, bottleneck C_in // t, bare classifier.
DLI14_KEYS_X1_0 = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.3.conv.0.weight": (144, 1, 3, 3),
    "features.3.conv.3.weight": (24, 144, 1, 1),
    "features.3.conv.5.weight": (192, 24, 1, 1),
    "features.20.conv.3.weight": (160, 960, 1, 1),
    "classifier.weight": (1000, 1280),
}


@pytest.fixture(scope="module")
def models() -> dict[str, MobileNeXt]:
    torch.manual_seed(0)
    return {name: create_model(name) for name in FIGURES}


def _convs(block: SandglassBlock) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, groups, in, out) of the block's convolutions, in order."""
    return [(m.kernel_size[0], m.stride[0], m.groups, m.in_channels, m.out_channels)
            for m in block.conv if isinstance(m, nn.Conv2d)]


# ------------------------------------------------------------------------------------------------ structure


def test_registry_names_and_paper_names(models):
    for name, paper in (("mobilenext-x1.0", "MobileNeXt-x1.0"), ("mobilenext-x1.4", "MobileNeXt-x1.4")):
        spec = registry.resolve(name)
        assert (spec.source, spec.paper_name, spec.input_size) == ("own", paper, (224, 224))
        assert isinstance(models[name], MobileNeXt)
    assert models["mobilenext-x1.0"].cfg.width_mult == 1.0 and models["mobilenext-x1.4"].cfg.width_mult == 1.4
    assert create_model("mobilenext-x1.0", num_classes=10).classifier[1].out_features == 10


def test_table_is_the_papers():
    assert tuple((r.t, r.c, r.n, r.s) for r in TABLE) == PAPER_TABLE
    assert sum(r.n for r in TABLE) == 20


def test_width_rounding():
    assert [make_divisible(v, 8) for v in (44.8, 134.4, 201.6, 268.8, 403.2, 537.6, 806.4)] == \
        [48, 136, 200, 272, 400, 536, 808]
    assert make_divisible(10, 8) == 16  # never more than 10% below: 8 < 0.9 x 10
    stem, blocks = block_table(1.4)
    last_of_row = {b.row: b.out_ch for b in blocks}
    assert (stem, *[last_of_row[r] for r in range(len(TABLE))]) == X1_4_WIDTHS
    stem, blocks = block_table(0.5)
    assert blocks[-1].out_ch == 1280  # the last stage keeps 1280 below width 1.0 only


def test_blocks_at_x1_0_are_the_authors(models):
    stem, blocks = block_table(1.0)
    assert stem == 32
    rows = tuple((b.in_ch, b.hidden, b.out_ch, b.stride, b.first_dw, b.last_dw, b.residual) for b in blocks)
    assert rows == X1_0_BLOCKS
    model = models["mobilenext-x1.0"]
    assert len(model.features) == 21 and model.classifier[1].in_features == 1280
    for layer, (cin, hid, cout, s, first_dw, last_dw, _) in zip(model.features[1:], X1_0_BLOCKS):
        expected = [(3, 1, cin, cin, cin)] if first_dw else []
        expected += [(1, 1, 1, cin, hid), (1, 1, 1, hid, cout)]
        expected += [(3, s, cout, cout, cout)] if last_dw else []
        assert _convs(layer) == expected
        acts = [type(m) for m in layer.conv if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
        assert acts == [nn.ReLU6] * (2 if first_dw else 1)  # linear bottleneck, linear last dw
    with torch.no_grad():
        assert model.features(torch.zeros(SMALL)).shape == (1, 1280, 2, 2)  # stride 32


def test_blocks_at_x1_4(models):
    _, blocks = block_table(1.4)
    # 48 // 2; 136 // 6 = 22 < 200 / 6 -> ceil 34 -> 32 (multiple of 16); 1344 // 6 = 224 < 1792 / 6 -> 299 -> 304
    assert [b.hidden for b in blocks if b.row in (0, 1, 7)] == [24, 32, 304]
    assert [b.residual for b in blocks] == [b.residual for b in block_table(1.0)[1]]
    assert models["mobilenext-x1.4"].classifier[1].in_features == 1792


def test_dli14_layout_is_the_table1_block_everywhere():
    _, blocks = block_table(1.0, "d-li14")
    assert all(b.first_dw and b.last_dw for b in blocks)
    assert [b.hidden for b in blocks][:4] == [16, 16, 24, 32]  # C_in // t, no floor
    with pytest.raises(ValueError, match="unknown MobileNeXt layout"):
        mobilenext_cfg(1.0, layout="timm")


# ----------------------------------------------------------------------------------------------- complexity


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_complexity_against_the_authors_figures(name, models):
    authors_flops, authors_params, table9_flops, table9_params, flops, params = FIGURES[name]
    c = profile_model(models[name], FULL)
    assert (c.flops, c.params) == (flops, params)
    assert abs(c.flops_m / authors_flops - 1) <= 0.05  # x1.0: +3.8% of 300 (311.3M: 0.1% off Table 9's 311)
    assert abs(c.params_m / authors_params - 1) <= 0.03  # x1.0: +0.3% of 3.5M (+3.2% of Table 9's 3.4M)
    assert abs(c.flops_m / table9_flops - 1) <= 0.01
    assert c.flops_by_op["addmm"] == models[name].classifier[1].in_features * 1000
    if name == "mobilenext-x1.0":
        assert count_params(models[name]) == AUTHORS_LOG_PARAMS_X1_0


# ------------------------------------------------------------------------------------------ identity tensor


@pytest.mark.parametrize("alpha, channels", [(1.0, 12), (0.5, 6), (1 / 3, 4), (0.0, 0)])
def test_partial_shortcut_matches_loop_reference(alpha, channels):
    torch.manual_seed(0)
    block = SandglassBlock(BlockCfg(12, 4, 12, 1, True, True, True, 0), alpha).eval()
    assert block.identity_channels == channels
    x = torch.randn(2, 12, 5, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        branch = block.conv(x)
        expected = torch.empty_like(branch)
        for n in range(2):
            for c in range(12):
                expected[n, c] = branch[n, c] + (x[n, c] if c < channels else 0.0)
        torch.testing.assert_close(block(x), expected)


def test_no_shortcut_where_the_shape_changes():
    model = MobileNeXt(mobilenext_cfg(1.0, identity_multiplier=0.5))
    ids = [b.identity_channels for b in model.features[1:]]
    assert ids == [b[2] // 2 if b[6] else 0 for b in X1_0_BLOCKS]
    with pytest.raises(ValueError, match="identity multiplier"):
        mobilenext_cfg(1.0, identity_multiplier=1.5)


# ---------------------------------------------------------------------------------------------- reparam/export


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_reparameterize_folds_every_bn(name, models):
    model = models[name]
    calibrate_bn(model, SMALL, steps=1, batch=4)
    result = reparameterize_model(model, input_shape=SMALL)
    assert (result.bn_folded, result.bn_remaining, result.note) == (74, 0, "")  # stem + 73 in the blocks
    assert not any(isinstance(m, _BatchNorm) for m in result.model.modules())
    assert verify_reparam(model, result.model, SMALL).passed


def test_onnx_parity_through_the_export_code(tmp_path):
    from mobileone_bench import pipeline
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import EXPORTED, ExportOptions, export_one

    prepared = pipeline.prepare("mobilenext-x1.0", input_size=(64, 64))
    assert prepared.reparam["bn_remaining"] == 0 and prepared.verify["passed"]
    result = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions())
    assert result.status == EXPORTED, result.error
    assert result.manifest["parity"]["passed"] and result.manifest["parity"]["max_rel_err"] < 1e-3


def test_partial_shortcut_exports_to_onnx():
    import io

    import onnxruntime as ort

    torch.manual_seed(0)
    block = SandglassBlock(BlockCfg(48, 16, 48, 1, True, True, True, 0), identity_multiplier=0.5)
    shape = (1, 48, 16, 16)
    calibrate_bn(block, shape, steps=1, batch=4)
    deploy = reparameterize_model(block, input_shape=shape).model
    assert not any(isinstance(m, _BatchNorm) for m in deploy.modules())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(deploy, (x,), buf, opset_version=17, dynamo=False, input_names=["x"], output_names=["y"])
    out = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        ref = deploy(x).numpy()
    assert abs(out - ref).max() <= 1e-4 * abs(ref).max()


# ------------------------------------------------------------------------------------------------ checkpoints


def _random_state(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(1000)
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(v.shape, generator=g) * 0.1
    return state


def test_authors_checkpoint_layout_loads_strict(tmp_path):
    model = create_model("mobilenext-x1.0")
    state = _random_state(model, 3)
    assert {k: tuple(state[k].shape) for k in AUTHORS_KEYS_X1_0} == AUTHORS_KEYS_X1_0
    assert "features.9.conv.5.weight" not in state  # the 288 -> 384 block is two pointwise convs
    path = tmp_path / "model_best.pth.tar"
    # as the authors' training script saves it: DataParallel prefixes, nested, next to its argparse.Namespace
    torch.save({"epoch": 199, "args": argparse.Namespace(arch="mobilenext", lr=0.1),
                "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = load_weights(create_model("mobilenext-x1.0"), path)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k]), k
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(mobilenext_dli14(), path)


def test_dli14_checkpoint_layout_loads_strict(tmp_path):
    model = mobilenext_dli14()
    state = _random_state(model, 4)
    assert {k: tuple(state[k].shape) for k in DLI14_KEYS_X1_0} == DLI14_KEYS_X1_0
    path = tmp_path / "mobilenext-dli14.pth"
    torch.save(state, path)
    loaded = load_weights(mobilenext_dli14(), path)
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    assert count_params(loaded) == 3_305_720
