"""MicroNet M1-M3 (Li et al., ICCV 2021): complexity against the authors' figures, structure against their configs,
Dynamic Shift-Max against loop references, re-parameterization, ONNX parity and the authors' checkpoint layout.

Reference facts used as data below come from the authors' repository (github.com/liyunsheng13/micronet): the
per-block widths of ``backbone/microconfig.py`` (its comments), and key names, shapes and counts of the state dicts of
their ``MicroNet`` built with the settings of ``scripts/eval_micronet_m{1,2,3}.sh`` (their model has exactly the
parameter counts pinned here, and computes the same outputs from the same weights).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mobileone_bench.models import registry
from mobileone_bench.models.factory import create_model

NAMES = ("micronet-m1", "micronet-m2", "micronet-m3")

from mobileone_bench.models.archs.activations import DynamicShiftMax, MicroNetShiftMax, shift_permutation  # noqa: E402
from mobileone_bench.models.archs.micronet import (  # noqa: E402
    MICRONET_CFGS,
    ChannelShuffle,
    MicroBlock,
    MicroNet,
    SwishLinear,
    micronet_cfg,
)
from mobileone_bench.complexity import count_params, profile_model  # noqa: E402
from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model, verify_reparam  # noqa: E402

SMALL = (1, 3, 64, 64)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def models() -> dict[str, MicroNet]:
    torch.manual_seed(0)
    return {name: create_model(name).eval() for name in NAMES}


# ----------------------------------------------------------------------------------------------- complexity

# The authors' figures (paper / README): M1 6M MAdds 1.8M params, M2 12M 2.4M, M3 21M 2.6M; the MobileOne paper's
# Table 13 prints 6 / 1.8, 12 / 2.4, 20 / 2.6. Params are checked against the authors' figures (3%). The tool's FLOPs
# are convs + Linears (the Shift-Max hyper-function FCs included) + the element-wise coefficient multiplies of Dynamic
# Shift-Max (J K = 4 per element with K = 2 pieces, 2 with K = 1; without them the counts are 11-14% low):
# 6.12M / 12.74M / 20.81M. M1 is +2.0% of 6M and M3 -0.9% of 21M; M2 is +6.2% of 12M. The authors' figures are
# truncated, not rounded: their config names say 6M / 12M / 20M (Table 13 prints 20 for M3), and the tool's counts
# truncate to exactly those. M2 is held to that (and to 6.5%), not to 5%.
#        name            tool FLOPs   infer params  train params  authors' (MFLOPs, Mparams)  Table 13
COMPLEXITY = {
    "micronet-m1": (6_120_032, 1_770_654, 1_777_587, (6.0, 1.8), (6.0, 1.8)),
    "micronet-m2": (12_743_440, 2_383_964, 2_393_876, (12.0, 2.4), (12.0, 2.4)),
    "micronet-m3": (20_807_520, 2_607_048, 2_622_960, (21.0, 2.6), (20.0, 2.6)),
}
SHIFT_MAX_ELEMENTWISE = {"micronet-m1": 805_952, "micronet-m2": 2_405_312, "micronet-m3": 2_571_520}


def _shift_max_elementwise(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiplies of the Shift-Max coefficients with the input and its shifted copy: J K per output element."""
    total = [0]

    def hook(mod: DynamicShiftMax, args, out) -> None:
        total[0] += out.numel() * mod.shifts * mod.pieces

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, DynamicShiftMax)]
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return total[0]


@pytest.mark.parametrize("name", NAMES)
def test_flops_and_params_against_the_authors_figures(name, models):
    flops, params, train_params, (a_flops, a_params), (t13_flops, t13_params) = COMPLEXITY[name]
    c = profile_model(models[name], (1, 3, 224, 224))
    assert (c.flops, c.params) == (flops, params)
    assert count_params(models[name]) == train_params  # the authors' model has exactly as many
    assert abs(c.params_m - a_params) / a_params < 0.03 and abs(c.params_m - t13_params) / t13_params < 0.03
    # FLOPs: the Shift-Max element-wise work is counted, and is what an independent hook on its outputs finds
    extra = _shift_max_elementwise(models[name], (1, 3, 224, 224))
    assert extra == SHIFT_MAX_ELEMENTWISE[name] == c.flops_by_op["dynamic_activation"]
    assert 0.08 < extra / c.flops < 0.2  # without it the counts would be 11-14% below the authors'
    assert abs(c.flops_m - a_flops) / a_flops < (0.065 if name == "micronet-m2" else 0.05)
    assert abs(c.flops_m - t13_flops) / t13_flops < (0.065 if name == "micronet-m2" else 0.05)
    config_mflops = int(micronet_cfg(name.split("-")[1]).name.split("_")[-2].rstrip("M"))  # "..._12M_221" -> 12
    assert int(c.flops_m) == config_mflops  # the authors' figures are the counts truncated
    hyper = sum(m.in_features * m.out_features for s in models[name].modules() if isinstance(s, MicroNetShiftMax)
                for m in s.fc if isinstance(m, nn.Linear))
    assert hyper > 0 and c.flops_by_op["addmm"] >= hyper  # the hyper-functions are counted


# ------------------------------------------------------------------------------------------------ structure

# (kind, in, hidden, out, stride) per block, from the comments of the authors' microconfig.py; then the stem's
# channels and the classifier's hidden width. Depthwise kernels (the k column of the configs) in KERNELS.
STRUCTURE = {
    "micronet-m1": (6, 960, [("A", 6, 24, 8, 2), ("A", 8, 32, 16, 2), ("A", 16, 64, 16, 2), ("BC", 16, 96, 32, 1),
                             ("BC", 32, 192, 64, 2), ("BC", 64, 384, 96, 1), ("1x1", 96, 576, 576, 1)]),
    "micronet-m2": (8, 1024, [("A", 8, 32, 12, 2), ("A", 12, 48, 16, 2), ("A", 16, 64, 24, 1),
                              ("BC", 24, 144, 32, 2), ("BC", 32, 192, 32, 1), ("BC", 32, 192, 64, 1),
                              ("BC", 64, 384, 96, 2), ("BC", 96, 576, 128, 1), ("1x1", 128, 768, 768, 1)]),
    "micronet-m3": (12, 1024, [("A", 12, 48, 16, 2), ("A", 16, 64, 24, 2), ("A", 24, 96, 24, 1),
                               ("BC", 24, 144, 32, 2), ("BC", 32, 192, 32, 1), ("BC", 32, 192, 64, 1),
                               ("BC", 64, 384, 80, 1), ("BC", 80, 480, 80, 1), ("BC", 80, 480, 120, 2),
                               ("BC", 120, 720, 120, 1), ("BC", 120, 720, 144, 1), ("1x1", 144, 864, 864, 1)]),
}

KERNELS = {"micronet-m1": [3, 3, 5, 5, 5, 3, 3], "micronet-m2": [3, 3, 3, 5, 5, 5, 5, 3, 3],
           "micronet-m3": [3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3, 3]}


@pytest.mark.parametrize("name", NAMES)
def test_structure_follows_the_authors_configs(name, models):
    spec = registry.resolve(name)
    assert spec.source == "own" and spec.input_size == (224, 224)
    assert spec.paper_name == "MicroNet-" + name[-2:].upper()
    model = models[name]
    stem, head, rows = STRUCTURE[name]
    blocks = list(model.features)[1:]
    assert all(isinstance(b, MicroBlock) for b in blocks)
    assert [(b.kind, b.in_ch, b.hidden, b.out_ch, b.stride) for b in blocks] == rows
    assert model.features[0].stem[0].conv[2].out_channels == stem
    assert model.classifier[0].linear[0].out_features == head
    # residuals exactly where stride 1 keeps the width
    assert [b.identity for b in blocks] == [s == 1 and i == o for _, i, _, o, s in rows]
    # every depthwise conv is micro-factorized into k x 1 and 1 x k
    for b, k in zip(blocks, KERNELS[name]):
        convs = [m.kernel_size for m in b.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
        assert sorted(convs) == ([] if b.kind == "1x1" else [(1, k), (k, 1)])
        assert all(m.groups == m.in_channels for m in b.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))
    x = torch.randn(SMALL, generator=_seeded(0))
    with torch.no_grad():
        assert model.features(x).shape == (1, rows[-1][3], 2, 2) and model(x).shape == (1, 1000)
    assert create_model(name, num_classes=10).classifier[2].linear[0].out_features == 10


def test_shift_max_kinds_follow_the_config_columns(models):
    # M1 / M2: K = 2 after the first two layers of a block (y1 = y2 = 2, but ReLU6 after the depthwise conv of their
    # first block: y2 = 0), K = 1 after the last (y3 = 1); M3: ReLU6, K = 2, nothing (y = 0, 2, 0).
    m1, m3 = models["micronet-m1"], models["micronet-m3"]
    first = m1.features[1].layers
    assert isinstance(first[1], nn.ReLU6) and isinstance(first[5], MicroNetShiftMax) and first[5].pieces == 1
    b = m1.features[4].layers
    assert [b[i].pieces for i in (1, 5, 8)] == [2, 2, 1]
    assert (b[1].groups, b[5].groups, b[8].groups) == (4, 96 // 4, 4)  # g2, hidden / g2 after the depthwise, g4
    b3 = m3.features[5].layers
    assert isinstance(b3[1], nn.ReLU6) and b3[5].pieces == 2 and isinstance(b3[8], nn.Identity)
    assert b3[5].alpha.flatten()[:: b3[5].channels].tolist() == [1.0, 0.0, 0.5, 0.5]  # M3: INIT_A 1, 0.5; INIT_B 0, 0.5
    assert b[8].alpha.flatten()[:: b[8].channels].tolist() == [1.0, 0.0]  # INIT_A_BLOCK3
    assert MICRONET_CFGS["m1"].blocks[0].kind == "A" and MICRONET_CFGS["m3"].blocks[-1].kind == "1x1"


# ----------------------------------------------------------------------------------- activation maths (loops)


def _micro_shiftmax_ref(m: MicroNetShiftMax, x: torch.Tensor) -> torch.Tensor:
    """By hand: GAP, FC, ReLU, FC, h_sigmoid = min(max(z + 3, 0), 6) / 6; a = init + 4 (h - 1/2); the copy of channel
    i = p C/G + q is channel ((p + 1) mod G) C/G + (q + 1) mod C/G; y_i = max_k (a_k0 x_i + a_k1 x_copy)."""
    c, g = m.channels, m.groups
    per = c // g
    w1, b1 = m.fc[0].weight.tolist(), m.fc[0].bias.tolist()
    w2, b2 = m.fc[2].weight.tolist(), m.fc[2].bias.tolist()
    init = [[float(m.alpha[0, (k * 2 + j) * c]) for j in range(2)] for k in range(m.pieces)]
    y = torch.empty_like(x, dtype=torch.float64)
    for s in range(x.shape[0]):
        gap = [float(x[s, ch].double().mean()) for ch in range(c)]
        h = [max(0.0, sum(w * v for w, v in zip(row, gap)) + b) for row, b in zip(w1, b1)]
        z = [sum(w * v for w, v in zip(row, h)) + b for row, b in zip(w2, b2)]
        hs = [min(max(v + 3.0, 0.0), 6.0) / 6.0 for v in z]
        for i in range(c):
            p, q = divmod(i, per)
            src = ((p + 1) % g) * per + (q + 1) % per
            mixtures = []
            for k in range(m.pieces):
                a0 = init[k][0] + 4.0 * (hs[(2 * k) * c + i] - 0.5)
                a1 = init[k][1] + 4.0 * (hs[(2 * k + 1) * c + i] - 0.5)
                mixtures.append(a0 * x[s, i].double() + a1 * x[s, src].double())
            y[s, i] = torch.stack(mixtures).amax(dim=0)
    return y


@pytest.mark.parametrize("pieces, init", [(2, ((1.0, 0.5), (0.0, 0.5))), (1, ((1.0, 0.0),))], ids=["K2", "K1"])
def test_micronet_shift_max_matches_loop_reference(pieces, init):
    torch.manual_seed(0)
    m = MicroNetShiftMax(24, groups=4, pieces=pieces, init=init, reduction=4).eval()
    assert m.fc[0].out_features == 8 and m.fc[2].out_features == 2 * pieces * 24  # squeeze, 2 K C
    with torch.no_grad():
        m.fc[2].weight.mul_(300.0)  # spread the hyper-function output over the hard sigmoid's linear and flat parts
        x = torch.randn(2, 24, 3, 3, generator=_seeded(1)) * 2
        torch.testing.assert_close(m(x).double(), _micro_shiftmax_ref(m, x), rtol=1e-5, atol=1e-5)


def test_micronet_shift_index_and_neutral_point():
    assert shift_permutation(8, 2, 1, inner_shift=1) == [5, 6, 7, 4, 1, 2, 3, 0]  # the authors' split / concat index
    assert shift_permutation(8, 4, 1) == [(i + 2) % 8 for i in range(8)]  # the plain circular shift by C / G
    m = MicroNetShiftMax(8, groups=2, pieces=2, init=((1.0, 0.0), (1.0, 0.0))).eval()
    assert m.fc[0].out_features == 4  # max(4, make_divisible(8 // 8, 4))
    with torch.no_grad():
        m.fc[2].weight.zero_()
        m.fc[2].bias.zero_()  # h_sigmoid(0) = 1/2: theta = 0, the coefficients are the initial values
        x = torch.randn(2, 8, 3, 3, generator=_seeded(2))
        torch.testing.assert_close(m(x), x)  # MicroNet's K = 2 start (INIT_A 1, 1; INIT_B 0, 0) is the identity
        assert torch.equal(m.shift(x, 1), x[:, [5, 6, 7, 4, 1, 2, 3, 0]])


def test_generic_shift_max_with_inner_shift_and_init_matches_loop_reference():
    torch.manual_seed(0)
    init = ((1.0, 0.25, 0.0), (0.0, 0.5, 0.5))
    m = DynamicShiftMax(12, groups=3, shifts=3, pieces=2, reduction=4, lambda_a=1.5, inner_shift=1, init=init).eval()
    x = torch.randn(2, 12, 3, 3, generator=_seeded(3)) * 2
    c, per = 12, 4
    w1, b1 = m.hyper.fc1.weight.tolist(), m.hyper.fc1.bias.tolist()
    w2, b2 = m.hyper.fc2.weight.tolist(), m.hyper.fc2.bias.tolist()
    ref = torch.empty_like(x, dtype=torch.float64)
    for s in range(2):
        gap = [float(x[s, ch].double().mean()) for ch in range(c)]
        h = [max(0.0, sum(w * v for w, v in zip(row, gap)) + b) for row, b in zip(w1, b1)]
        theta = [2.0 / (1.0 + math.exp(-(sum(w * v for w, v in zip(row, h)) + b))) - 1.0 for row, b in zip(w2, b2)]
        for i in range(c):
            p, q = divmod(i, per)
            mixtures = []
            for k in range(2):
                z = torch.zeros(3, 3, dtype=torch.float64)
                for j in range(3):
                    src = ((p + j) % 3) * per + (q + j) % per
                    z = z + (init[k][j] + 1.5 * theta[(k * 3 + j) * c + i]) * x[s, src].double()
                mixtures.append(z)
            ref[s, i] = torch.stack(mixtures).amax(dim=0)
    with torch.no_grad():
        torch.testing.assert_close(m(x).double(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="init needs 2 rows of 3"):
        DynamicShiftMax(12, groups=3, shifts=3, init=((1.0, 0.0),))


def test_channel_shuffle_matches_loop_reference():
    x = torch.randn(1, 12, 2, 2, generator=_seeded(4))
    y = ChannelShuffle(3)(x)
    for p in range(3):
        for q in range(4):
            assert torch.equal(y[:, q * 3 + p], x[:, p * 4 + q])


# ------------------------------------------------------------------------------------------- reparameterization


@pytest.mark.parametrize("name", NAMES)
def test_reparameterize_folds_every_batchnorm_and_keeps_outputs(name):
    torch.manual_seed(0)
    model = create_model(name)
    calibrate_bn(model, SMALL, steps=2, batch=4)
    with torch.no_grad():  # non-trivial BatchNorm1d affine parameters, so that their folding is tested
        for bn in (model.classifier[0].linear[1], model.classifier[2].linear[1]):
            bn.weight.uniform_(0.5, 1.5, generator=_seeded(5))
            bn.bias.normal_(0.0, 0.2, generator=_seeded(6))
    n_bn2d = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    result = reparameterize_model(model, input_shape=SMALL)
    assert (result.bn_folded, result.bn_remaining, result.note) == (n_bn2d, 0, "")
    assert result.blocks_reparameterized == 2  # the two SwishLinears fold their BatchNorm1d themselves
    assert n_bn2d == {"micronet-m1": 24, "micronet-m2": 32, "micronet-m3": 44}[name]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in result.model.modules())
    check = verify_reparam(model, result.model, SMALL)
    assert check.passed and check.ref_max_abs < 1e4


def test_swish_linear_folds_batchnorm1d():
    torch.manual_seed(0)
    layer = SwishLinear(6, 5)
    layer.linear[1].running_mean.normal_()
    layer.linear[1].running_var.uniform_(0.5, 2.0)
    layer.eval()
    x = torch.randn(3, 6, generator=_seeded(7))
    with torch.no_grad():
        ref = layer(x)
        layer.reparameterize()
        assert isinstance(layer.linear[1], nn.Identity)
        torch.testing.assert_close(layer(x), ref)


# ----------------------------------------------------------------------------------------------------- ONNX


def test_onnx_export_matches_onnxruntime(tmp_path):
    import onnx

    from mobileone_bench import pipeline
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import EXPORTED, ExportOptions, export_one

    prepared = pipeline.prepare("micronet-m1", input_size=(64, 64))
    result = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions())
    assert result.status == EXPORTED, result.error
    assert result.manifest["parity"]["passed"] and result.manifest["parity"]["max_rel_err"] < 1e-4
    ops = {n.op_type for n in onnx.load(str(tmp_path / "micronet-m1" / "onnx-fp32-64x64" / "model.onnx")).graph.node}
    # Shift-Max: hyper-function (ReduceMean, Gemm, HardSigmoid), shifted copy (Gather), max of the two pieces (Max)
    assert {"Conv", "Gemm", "ReduceMean", "HardSigmoid", "Gather", "Max", "Clip", "HardSwish"} <= ops
    assert "BatchNormalization" not in ops


# ------------------------------------------------------------------------------------------ checkpoint layout

# A few keys of the authors' released state dicts, with their shapes, and how many keys each holds.
AUTHORS_KEYS = {
    "micronet-m1": (218, {
        "features.0.stem.0.conv.0.weight": (3, 3, 3, 1),
        "features.0.stem.0.conv.2.weight": (6, 1, 1, 3),
        "features.1.layers.0.conv.2.weight": (24, 1, 1, 3),
        "features.1.layers.5.fc.0.weight": (4, 8),
        "features.1.layers.5.fc.2.weight": (16, 4),
        "features.4.layers.1.fc.2.weight": (384, 12),
        "features.4.layers.5.fc.2.weight": (384, 12),
        "features.4.layers.8.fc.2.weight": (64, 8),
        "features.6.layers.7.conv.0.weight": (96, 48, 1, 1),
        "features.7.layers.0.conv.1.running_var": (576,),
        "features.7.layers.1.fc.0.weight": (36, 576),
        "classifier.0.linear.0.weight": (960, 576),
        "classifier.2.linear.1.running_mean": (1000,),
        "classifier.2.linear.1.num_batches_tracked": (),
    }),
    "micronet-m2": (290, {
        "features.1.layers.5.fc.0.weight": (4, 12),
        "features.4.layers.5.fc.2.weight": (576, 20),
        "features.8.layers.7.conv.0.weight": (128, 72, 1, 1),
        "features.9.layers.1.fc.2.weight": (1536, 48),
        "classifier.0.linear.0.weight": (1024, 768),
    }),
    "micronet-m3": (322, {
        "features.0.stem.0.conv.0.weight": (4, 3, 3, 1),
        "features.1.layers.1.fc.0.weight": (8, 48),
        "features.1.layers.1.fc.2.weight": (192, 8),
        "features.11.layers.3.conv.2.weight": (720, 1, 1, 3),
        "features.11.layers.5.fc.0.weight": (44, 720),
        "features.12.layers.0.conv.0.weight": (864, 12, 1, 1),
        "classifier.0.linear.0.weight": (1024, 864),
    }),
}


@pytest.mark.parametrize("name", NAMES)
def test_authors_key_names_and_shapes(name, models):
    n_keys, sample = AUTHORS_KEYS[name]
    own = {k: tuple(v.shape) for k, v in models[name].state_dict().items()}
    assert len(own) == n_keys
    assert {k: own.get(k) for k in sample} == sample


def test_authors_checkpoint_file_loads(tmp_path):
    from mobileone_bench.models.checkpoints import load_weights

    torch.manual_seed(1)
    # as the authors' training script saves it: DataParallel's "module." prefix, nested under "state_dict"
    shapes = {k: v.shape for k, v in create_model("micronet-m1").state_dict().items()}
    state = {}
    for k, shape in shapes.items():
        state["module." + k] = (torch.tensor(7) if k.endswith("num_batches_tracked")
                                else torch.rand(shape) + 0.5 if k.endswith("running_var") else torch.randn(shape))
    path = tmp_path / "micronet-m1.pth.tar"
    torch.save({"state_dict": state, "epoch": 600}, path)
    model = load_weights(create_model("micronet-m1"), path)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], state["module." + k]) for k in shapes)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(SMALL, generator=_seeded(8)))).all()
