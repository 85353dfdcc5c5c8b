"""Mobile-Former-52M and -96M (Chen et al., CVPR 2022): tables, complexity, the bridge and dynamic-ReLU maths, reparam,
ONNX parity and the authors' checkpoint layout.

The attention and activation maths are checked against references written here with explicit loops over samples,
heads, tokens and pixels (python floats / float64), not against the modules' own vectorised code.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mobileone_bench.models import registry
from mobileone_bench.models.factory import create_model
from mobileone_bench.models.archs.activations import DynamicReLU
from mobileone_bench.models.archs.mobileformer import (
    TABLES,
    Former,
    FormerToMobile,
    LiteBottleneck,
    MobileFormer,
    MobileFormerBlock,
    MobileFormerDownBlock,
    MobileToFormer,
    TokenDynamicReLU,
    TokenHyperFunction,
)
from mobileone_bench.complexity import profile_model
from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model

NAMES = {"52m": "mobileformer-52", "96m": "mobileformer-96"}
SMALL = (1, 3, 64, 64)
FULL = (1, 3, 224, 224)

# The paper's appendix tables as rows: (kind, hidden 1, hidden 2, out channels, stride, out size at 224).
EXPECTED_BLOCKS = {
    "52m": [("lite", 24, 0, 12, 2, 56), ("mf", 36, 0, 12, 1, 56), ("down", 72, 96, 24, 2, 28),
            ("mf", 72, 0, 24, 1, 28), ("down", 144, 192, 48, 2, 14), ("mf", 192, 0, 48, 1, 14),
            ("mf", 288, 0, 64, 1, 14), ("down", 384, 384, 96, 2, 7), ("mf", 576, 0, 96, 1, 7)],
    "96m": [("lite", 24, 0, 12, 1, 112), ("down", 72, 64, 16, 2, 56), ("down", 96, 128, 32, 2, 28),
            ("mf", 96, 0, 32, 1, 28), ("down", 192, 256, 64, 2, 14), ("mf", 256, 0, 64, 1, 14),
            ("mf", 384, 0, 88, 1, 14), ("down", 528, 512, 128, 2, 7), ("mf", 768, 0, 128, 1, 7)],
}
# (stem, tokens, token width, head 1x1 width, first FC in -> out)
EXPECTED_HEAD = {"52m": (8, 3, 128, 576, 704, 1024), "96m": (12, 4, 128, 768, 896, 1280)}

# Complexity. Authors (paper / released README): 52M FLOPs, 3.5M params; 96M FLOPs, 4.6M params.
# MobileOne's Table 9 prints 52 / 3.6 and 96 / 4.6. The tests use the authors' figures.
AUTHORS = {"52m": (52e6, 3.5e6), "96m": (96e6, 4.6e6)}
MOBILEONE_TABLE9 = {"52m": (52e6, 3.6e6), "96m": (96e6, 4.6e6)}
# What the tool counts (multiply-adds of convs, linears and attention matmuls, plus the dynamic ReLU's two multiplies
# per element; inference form, BN folded). The dynamic-ReLU part alone: DYRELU.
OURS = {"52m": (50_927_488, 3_462_244), "96m": (94_452_144, 4_576_228)}
DYRELU = {"52m": 1_636_992, "96m": 2_435_104}


@pytest.fixture(scope="module")
def models() -> dict[str, MobileFormer]:
    torch.manual_seed(0)
    return {v: create_model(n).eval() for v, n in NAMES.items()}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------ registry, tables


@pytest.mark.parametrize("variant", sorted(NAMES))
def test_registered_with_paper_names(variant):
    spec = registry.resolve(NAMES[variant])
    assert spec.source == "own" and spec.input_size == (224, 224)
    assert spec.paper_name == {"52m": "Mobileformer-52", "96m": "Mobileformer-96"}[variant]
    assert create_model(NAMES[variant], num_classes=10).classifier.classifier[1].out_features == 10


@pytest.mark.parametrize("variant", sorted(NAMES))
def test_structure_follows_the_table(models, variant):
    model = models[variant]
    stem, n_tok, dim, head, fc_in, fc_out = EXPECTED_HEAD[variant]
    assert model.stem[0].out_channels == stem and model.stem[0].stride == (2, 2)
    assert tuple(model.tokens.weight.shape) == (n_tok, dim)
    assert model.classifier.conv[1].out_channels == head
    assert (model.classifier.fc[0].in_features, model.classifier.fc[0].out_features) == (fc_in, fc_out)
    sizes: list[tuple[int, int]] = []
    hooks = [b.register_forward_hook(lambda m, a, o: sizes.append(tuple(o[0].shape[1:3]))) for b in model.features]
    with torch.no_grad():
        model(torch.zeros(FULL))
    for h in hooks:
        h.remove()
    kinds = {"lite": LiteBottleneck, "mf": MobileFormerBlock, "down": MobileFormerDownBlock}
    for i, (block, row, exp, size) in enumerate(zip(model.features, TABLES[variant].blocks,
                                                     EXPECTED_BLOCKS[variant], sizes)):
        kind, h1, h2, out, stride, spatial = exp
        assert (row.kind, row.out, row.stride) == (kind, out, stride), i
        assert type(block) is kinds[kind], i
        assert size == (out, spatial), i
        if kind == "lite":
            assert (block.conv[0].out_channels, block.conv[0].stride[0]) == (h1, stride)
            assert block.conv[0].groups == block.conv[0].in_channels  # depthwise with channel multiplier
        elif kind == "mf":
            assert block.conv1[0].out_channels == h1 and block.conv2[0].groups == h1
            assert block.act1.channels == block.act2.channels == h1
            assert block.hyper1.hyper[2].out_features == 2 * h1  # 2 pieces x C slopes
        else:
            assert (block.conv1[0].out_channels, block.conv1[0].stride[0]) == (h1, 2)
            assert block.conv3[0].out_channels == h2 and block.conv3[0].groups == out
            assert block.hyper3.hyper[2].out_features == 2 * h2
        if kind != "lite":
            assert block.local_global.q.out_features == block.local_global.channels  # block input width
            assert block.global_local.channels == out
            assert block.global_block.heads == 4 and block.local_global.heads == block.global_local.heads == 2
            assert block.global_block.ffn[0].out_features == 2 * dim
            assert block.hyper1.hyper[0].out_features == dim // 4
    assert model.features[0].identity is (variant == "96m")  # 96M's bneck-lite keeps 112x112 and 12 channels


# ------------------------------------------------------------------------------------------------------ complexity


@pytest.mark.parametrize("variant", sorted(NAMES))
def test_flops_and_params_against_the_authors(models, variant):
    c = profile_model(models[variant], FULL)
    flops, params = OURS[variant]
    assert (c.flops, c.params) == (flops, params)
    a_flops, a_params = AUTHORS[variant]
    assert abs(c.params / a_params - 1) < 0.03  # 52M: -1.1 %, 96M: -0.5 %
    t9_params = MOBILEONE_TABLE9[variant][1]
    assert abs(c.params / t9_params - 1) < (0.04 if variant == "52m" else 0.01)  # 52M: -3.8 % of Table 9's 3.6M
    # FLOPs: 52M is -2.1 % of 52M, 96M -1.6 % of 96M (the authors' figures are rounded, see below)
    assert abs(c.flops / a_flops - 1) < 0.05
    assert c.flops_by_op["dynamic_activation"] == DYRELU[variant]


@pytest.mark.parametrize("variant", sorted(NAMES))
def test_dynamic_relu_work_is_counted_and_the_rest_of_the_gap_is_batchnorm(models, variant):
    """The tool counts the dynamic ReLU's two multiplies per element (2 x 0.82M / 2 x 1.22M, checked here by an
    independent hook on its outputs). What remains between the tool (50.93M / 94.45M) and the authors' 52M / 96M is
    about one operation per conv output, the train-time BatchNorm the inference-time model no longer has (1.21M /
    2.11M): with it both land within 2 % of the authors (their figures are rounded)."""
    model = models[variant]
    counts = {"bn": 0, "dyrelu": 0}

    def hook(key):
        def f(m, a, o):
            counts[key] += o.numel()
        return f

    hooks = [m.register_forward_hook(hook("bn" if isinstance(m, nn.BatchNorm2d) else "dyrelu"))
             for m in model.modules() if isinstance(m, (nn.BatchNorm2d, TokenDynamicReLU))]
    with torch.no_grad():
        model(torch.zeros(FULL))
    for h in hooks:
        h.remove()
    expected = {"52m": (1_208_928, 818_496), "96m": (2_106_608, 1_217_552)}[variant]
    assert (counts["bn"], counts["dyrelu"]) == expected
    assert 2 * counts["dyrelu"] == DYRELU[variant]
    total = OURS[variant][0] + counts["bn"]
    assert abs(total / AUTHORS[variant][0] - 1) < 0.02


# ------------------------------------------------------------------------------------------------ maths vs loops


def _hardsigmoid(v: float) -> float:
    return min(max(v / 6.0 + 0.5, 0.0), 1.0)


def _linear(layer: nn.Linear, v: torch.Tensor) -> torch.Tensor:
    return layer.weight.detach().double() @ v + layer.bias.detach().double()


def _layer_norm(ln: nn.LayerNorm, v: torch.Tensor) -> torch.Tensor:
    mean = sum(float(e) for e in v) / len(v)
    var = sum((float(e) - mean) ** 2 for e in v) / len(v)
    return (v - mean) / math.sqrt(var + ln.eps) * ln.weight.detach().double() + ln.bias.detach().double()


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    return [v / sum(e) for v in e]


def _m2f_ref(m: MobileToFormer, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    n_, c_, h_, w_ = x.shape
    ch = c_ // m.heads
    xd, zd = x.double().reshape(n_, c_, h_ * w_), z.double()
    out = torch.empty_like(zd)
    for n in range(n_):
        for t in range(z.shape[1]):
            q = _linear(m.q, zd[n, t])
            att = torch.zeros(c_, dtype=torch.float64)
            for h in range(m.heads):
                cs = slice(h * ch, (h + 1) * ch)
                w = _softmax([float(q[cs] @ xd[n, cs, p]) / math.sqrt(ch) for p in range(h_ * w_)])
                for p in range(h_ * w_):
                    att[cs] += w[p] * xd[n, cs, p]
            gate = torch.tensor([2.0 * _hardsigmoid(float(v)) for v in _linear(m.alpha[0], zd[n, t])],
                                dtype=torch.float64)
            out[n, t] = _layer_norm(m.layer_norm, zd[n, t] + _linear(m.proj, att * gate))
    return out


def _former_ref(m: Former, z: torch.Tensor) -> torch.Tensor:
    n_, t_, d = z.shape
    dh = d // m.heads
    zd = z.double()
    out = torch.empty_like(zd)
    for n in range(n_):
        mid = []
        for t in range(t_):
            q = _linear(m.q, zd[n, t])
            att = torch.zeros(d, dtype=torch.float64)
            for h in range(m.heads):
                hs = slice(h * dh, (h + 1) * dh)
                w = _softmax([float(q[hs] @ zd[n, s, hs]) / math.sqrt(dh) for s in range(t_)])
                for s in range(t_):
                    att[hs] += w[s] * zd[n, s, hs]
            mid.append(_layer_norm(m.layer_norm, zd[n, t] + _linear(m.channel_mlp, att)))
        for t in range(t_):
            hidden = torch.tensor([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in
                                   _linear(m.ffn[0], mid[t]).tolist()], dtype=torch.float64)
            out[n, t] = _layer_norm(m.ffn_norm, mid[t] + _linear(m.ffn[2], hidden))
    return out


def _f2m_ref(m: FormerToMobile, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    n_, c_, h_, w_ = x.shape
    ch = c_ // m.heads
    xd = x.double().reshape(n_, c_, h_ * w_)
    y = xd.clone()
    for n in range(n_):
        keys = [_linear(m.k, z[n, t].double()) for t in range(z.shape[1])]
        values = [_linear(m.proj, z[n, t].double()) for t in range(z.shape[1])]
        for h in range(m.heads):
            cs = slice(h * ch, (h + 1) * ch)
            for p in range(h_ * w_):
                w = _softmax([float(xd[n, cs, p] @ k[cs]) / math.sqrt(ch) for k in keys])
                for t, v in enumerate(values):
                    y[n, cs, p] += w[t] * v[cs]
    return y.reshape(n_, c_, h_, w_)


def test_mobile_to_former_matches_loop_reference():
    torch.manual_seed(0)
    m = MobileToFormer(8, 16, heads=2).eval()
    x, z = torch.randn(2, 8, 3, 4, generator=_gen(1)) * 2, torch.randn(2, 3, 16, generator=_gen(2))
    with torch.no_grad():
        torch.testing.assert_close(m(x, z).double(), _m2f_ref(m, x, z), rtol=1e-5, atol=1e-5)


def test_former_matches_loop_reference():
    torch.manual_seed(0)
    m = Former(16, heads=4, ffn_exp=2).eval()
    z = torch.randn(2, 3, 16, generator=_gen(3)) * 2
    with torch.no_grad():
        torch.testing.assert_close(m(z).double(), _former_ref(m, z), rtol=1e-5, atol=1e-5)


def test_former_to_mobile_matches_loop_reference():
    torch.manual_seed(0)
    m = FormerToMobile(8, 16, heads=2).eval()
    x, z = torch.randn(2, 8, 3, 4, generator=_gen(4)) * 2, torch.randn(2, 3, 16, generator=_gen(5))
    with torch.no_grad():
        torch.testing.assert_close(m(x, z).double(), _f2m_ref(m, x, z), rtol=1e-5, atol=1e-5)


def test_token_dynamic_relu_matches_loop_reference_and_shared_dynamic_relu():
    torch.manual_seed(0)
    c, d = 6, 16
    hyper, act = TokenHyperFunction(d, 2 * c, reduction=4).eval(), TokenDynamicReLU(c)
    with torch.no_grad():
        hyper.hyper[2].weight.mul_(20)  # coefficients spread over the whole [-1, 1]
    x, z = torch.randn(2, c, 3, 3, generator=_gen(6)) * 2, torch.randn(2, 3, d, generator=_gen(7))
    with torch.no_grad():
        theta = hyper(z)
        y = act(x, theta)
    expected = torch.empty_like(x, dtype=torch.float64)
    for n in range(2):
        first = z[n, 0].double()  # only the first token drives the coefficients
        hidden = [max(0.0, float(v)) for v in _linear(hyper.hyper[0], first)]
        th = [2.0 * _hardsigmoid(float(v)) - 1.0 for v in _linear(hyper.hyper[2], torch.tensor(hidden).double())]
        assert max(abs(a - float(b)) for a, b in zip(th, theta[n])) < 1e-5
        for ch in range(c):
            a1, a2 = 1.0 + th[ch], th[c + ch]
            for i in range(3):
                for j in range(3):
                    v = float(x[n, ch, i, j])
                    expected[n, ch, i, j] = max(a1 * v, a2 * v)
    torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-5)
    assert theta.abs().max() > 0.9  # both pieces were exercised
    # the same function as the shared DynamicReLU (K = 2, lambda_a = 1) fed with zero intercepts
    shared = DynamicReLU(c, channel_wise=True, pieces=2, lambda_a=1.0, own_hyper=False)
    with torch.no_grad():
        torch.testing.assert_close(y, shared(x, torch.cat([theta, torch.zeros_like(theta)], dim=1)))
        torch.testing.assert_close(act(x, torch.zeros(2, 2 * c)), torch.relu(x))  # theta = 0 is ReLU
    with torch.no_grad():  # other tokens do not change the coefficients
        z2 = z.clone()
        z2[:, 1:] += 5
        assert torch.equal(hyper(z2), theta)


def test_block_feeds_updated_tokens_to_mobile_and_back():
    torch.manual_seed(0)
    block = TABLES["52m"]
    m = MobileFormerBlock(12, block.blocks[1], block).eval()
    x, z = torch.randn(2, 12, 8, 8, generator=_gen(8)), torch.randn(2, 3, 128, generator=_gen(9))
    with torch.no_grad():
        y, z_out = m(x, z)
        z_ref = m.global_block(m.local_global(x, z))
        torch.testing.assert_close(z_out, z_ref)
        mobile = m.conv3(m.act2(m.conv2(m.act1(m.conv1(x), m.hyper1(z_ref))), m.hyper2(z_ref))) + x
        torch.testing.assert_close(y, m.global_local(mobile, z_ref))


# ----------------------------------------------------------------------------------------------------- reparam


@pytest.mark.parametrize("variant", sorted(NAMES))
def test_reparameterize_folds_every_bn_and_keeps_outputs(models, variant):
    model = models[variant]
    calibrate_bn(model, SMALL, steps=2, batch=4)
    result = reparameterize_model(model, input_shape=SMALL)
    n_bn = sum(isinstance(m, _BatchNorm) for m in model.modules())
    assert result.blocks_reparameterized == 1  # the head folds its BatchNorm1d into its FC
    assert result.bn_folded == n_bn - 1 and result.bn_remaining == 0 and result.note == ""
    assert not any(isinstance(m, _BatchNorm) for m in result.model.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in result.model.modules())  # LayerNorms stay
    x = torch.randn((2, *SMALL[1:]), generator=_gen(10))
    with torch.no_grad():
        ref, out = model(x), result.model(x)
    assert float(ref.abs().max()) < 1e3
    assert float((ref - out).abs().max()) <= 1e-4 * float(ref.abs().max())


# ------------------------------------------------------------------------------------------------------ export


def test_onnx_export_parity(tmp_path):
    from mobileone_bench import pipeline
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import EXPORTED, ExportOptions, export_one

    prepared = pipeline.prepare("mobileformer-52", input_size=(64, 64))
    result = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions())
    assert result.status == EXPORTED, result.error
    parity = result.manifest["parity"]
    assert parity["passed"] and parity["max_rel_err"] < 1e-4
    assert result.manifest["reparam_check"]["passed"]


# ------------------------------------------------------------------------------------------------- checkpoints

# A few keys of the authors' released checkpoint (github.com/AAboys/MobileFormer, mobile_former_52m) and their
# shapes, as data: tokens, the bneck-lite, a pw-dw-pw block's bridge / Former / hyper-function, a stride-2 block,
# the final Mobile -> Former and the classifier (with its BatchNorm1d).
AUTHORS_KEYS_52M = {
    "tokens.weight": (3, 128),
    "stem.0.weight": (8, 3, 3, 3),
    "features.0.conv.0.weight": (24, 1, 3, 3),
    "features.0.conv.4.weight": (12, 24, 1, 1),
    "features.1.local_global.q.weight": (12, 128),
    "features.1.local_global.alpha.0.weight": (12, 128),
    "features.1.global_block.ffn.0.weight": (256, 128),
    "features.1.global_block.channel_mlp.weight": (128, 128),
    "features.1.global_local.k.weight": (12, 128),
    "features.1.hyper1.hyper.2.weight": (72, 32),
    "features.1.conv2.1.running_var": (36,),
    "features.2.conv3.0.weight": (96, 1, 3, 3),
    "features.2.hyper3.hyper.2.weight": (192, 32),
    "features.2.conv4.0.weight": (24, 96, 1, 1),
    "local_global.proj.weight": (128, 96),
    "classifier.conv.1.weight": (576, 96, 1, 1),
    "classifier.fc.0.weight": (1024, 704),
    "classifier.fc.1.running_mean": (1024,),
    "classifier.classifier.1.weight": (1000, 1024),
}


def test_authors_checkpoint_layout_loads(tmp_path, models):
    from mobileone_bench.models.checkpoints import load_weights
    from mobileone_bench.errors import CheckpointError

    own = models["52m"].state_dict()
    for key, shape in AUTHORS_KEYS_52M.items():
        assert tuple(own[key].shape) == shape, key
    gen = _gen(11)
    state = {k: (torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone()) for k, v in own.items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = state[k].abs() + 0.5
    path = tmp_path / "mobile_former_52m.pth.tar"
    torch.save({"epoch": 449, "arch": "mobile_former_52m", "state_dict": state}, path)  # timm train.py's layout
    model = load_weights(create_model("mobileformer-52"), path)
    assert torch.equal(model.features[2].hyper3.hyper[2].weight, state["features.2.hyper3.hyper.2.weight"])
    assert torch.equal(model.tokens.weight, state["tokens.weight"])
    with pytest.raises(CheckpointError, match="wrong shape|missing"):
        load_weights(create_model("mobileformer-96"), path)
