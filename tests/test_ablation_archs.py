"""The 30-layer ablation network of Section 3.2 (Tables 2 and 3) and its activations.

Each activation is checked against a reference written here with explicit loops over samples, channels and pieces
(the hyper-function included), not against the module's own vectorised code.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from importlib import resources

import pytest
import torch
from torch import nn

from mobileone_bench.models import registry
from mobileone_bench.models.factory import create_model
from mobileone_bench.models.archs.ablation import (
    ACTIVATIONS,
    LAYOUT,
    VARIANTS,
    LayerRow,
    Ablation30,
    ConvBNAct,
    DynamicReLU,
    DynamicShiftMax,
    HyperFunction,
    SeparablePair,
    make_activation,
)
from mobileone_bench.models.archs.mobileone import SqueezeExcite
from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model

SHAPE = (1, 3, 64, 64)
NAMES = sorted(VARIANTS)
# ablation30-se and ablation30-se-relu are one network (test_se_row_is_se_relu): re-parameterize and export each
# network once.
UNIQUE = sorted({(v.activation, v.se, v.skip): n for n, v in sorted(VARIANTS.items())}.values())


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _theta_ref(hyper: HyperFunction, x: torch.Tensor) -> list[list[float]]:
    """The hyper-function by hand: per sample, GAP, FC, ReLU, FC, 2 sigmoid - 1 (python floats)."""
    w1, b1 = hyper.fc1.weight.tolist(), hyper.fc1.bias.tolist()
    w2, b2 = hyper.fc2.weight.tolist(), hyper.fc2.bias.tolist()
    out = []
    for s in range(x.shape[0]):
        g = [float(x[s, c].double().mean()) for c in range(x.shape[1])]
        h = [max(0.0, sum(w * v for w, v in zip(row, g)) + b) for row, b in zip(w1, b1)]
        z = [sum(w * v for w, v in zip(row, h)) + b for row, b in zip(w2, b2)]
        out.append([2.0 / (1.0 + math.exp(-v)) - 1.0 for v in z])
    return out


def _dyrelu_ref(m: DynamicReLU, x: torch.Tensor) -> torch.Tensor:
    """y_c = max_k(a_c^k x_c + b_c^k), theta = [Δa^1_1..Δa^1_C, .., Δa^K_C, Δb^1_1.., Δb^K_C] (C -> 1 for A)."""
    n_coef = m.channels if m.channel_wise else 1
    k_pieces = m.pieces
    y = torch.empty_like(x, dtype=torch.float64)
    for s, theta in enumerate(_theta_ref(m.hyper, x)):
        for c in range(x.shape[1]):
            idx = c if m.channel_wise else 0
            pieces = []
            for k in range(k_pieces):
                alpha = 1.0 if k == 0 else 0.0
                a = alpha + 1.0 * theta[k * n_coef + idx]
                b = 0.0 + 0.5 * theta[k_pieces * n_coef + k * n_coef + idx]
                pieces.append(a * x[s, c].double() + b)
            y[s, c] = torch.stack(pieces).amax(dim=0)
    return y


def _shiftmax_ref(m: DynamicShiftMax, x: torch.Tensor) -> torch.Tensor:
    """y_i = max_k sum_j a^k_{i,j} x_{(i + j C/G) mod C}, a^k_{i,j} = alpha^k_j + theta[(k J + j) C + i]."""
    c_all, step = m.channels, m.channels // m.groups
    y = torch.empty_like(x, dtype=torch.float64)
    for s, theta in enumerate(_theta_ref(m.hyper, x)):
        for i in range(c_all):
            mixtures = []
            for k in range(m.pieces):
                z = torch.zeros_like(x[s, i], dtype=torch.float64)
                for j in range(m.shifts):
                    alpha = 1.0 if (k, j) == (0, 0) else 0.0
                    a = alpha + 1.0 * theta[(k * m.shifts + j) * c_all + i]
                    z = z + a * x[s, (i + j * step) % c_all].double()
                mixtures.append(z)
            y[s, i] = torch.stack(mixtures).amax(dim=0)
    return y


# ------------------------------------------------------------------------------------------------ activations


def test_static_activations_are_torch_modules_with_their_formulas():
    x = torch.randn(2, 8, 3, 3, generator=_seeded(0))
    relu, gelu, silu = (make_activation(k, 8) for k in ("relu", "gelu", "silu"))
    assert (type(relu), type(gelu), type(silu)) == (nn.ReLU, nn.GELU, nn.SiLU)
    assert torch.equal(relu(x), torch.where(x > 0, x, torch.zeros_like(x)))
    torch.testing.assert_close(gelu(x), 0.5 * x * (1 + torch.erf(x / math.sqrt(2))))
    torch.testing.assert_close(silu(x), x / (1 + torch.exp(-x)))
    with pytest.raises(ValueError, match="unknown activation"):
        make_activation("prelu", 8)


def test_se_relu_is_squeeze_excite_then_relu():
    torch.manual_seed(0)
    layer = ConvBNAct(4, 8, 3, activation="relu", se=True).eval()
    assert isinstance(layer.se, SqueezeExcite) and isinstance(layer.act, nn.ReLU)
    x = torch.randn(2, 4, 5, 5, generator=_seeded(1))
    with torch.no_grad():
        pre = layer.bn(layer.conv(x)).double()
        w1, b1 = layer.se.reduce.weight.double().flatten(1), layer.se.reduce.bias.double()
        w2, b2 = layer.se.expand.weight.double().flatten(1), layer.se.expand.bias.double()
        expected = torch.empty_like(pre)
        for s in range(2):
            g = torch.stack([pre[s, c].mean() for c in range(8)])
            gate = torch.sigmoid(w2 @ torch.relu(w1 @ g + b1) + b2)
            for c in range(8):
                expected[s, c] = torch.clamp(pre[s, c] * gate[c], min=0)
        torch.testing.assert_close(layer(x).double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channel_wise", [False, True], ids=["A", "B"])
def test_dynamic_relu_matches_loop_reference(channel_wise):
    torch.manual_seed(0)
    m = DynamicReLU(8, channel_wise=channel_wise, reduction=4).eval()
    assert m.hyper.fc2.out_features == (2 * 2 * 8 if channel_wise else 2 * 2)  # 2KC (B) vs 2K (A)
    x = torch.randn(2, 8, 3, 3, generator=_seeded(2)) * 2
    with torch.no_grad():
        torch.testing.assert_close(m(x).double(), _dyrelu_ref(m, x), rtol=1e-5, atol=1e-5)


def test_dynamic_shift_max_matches_index_arithmetic_reference():
    torch.manual_seed(0)
    m = DynamicShiftMax(8, groups=4, shifts=2, pieces=2, reduction=4).eval()
    assert m.hyper.fc2.out_features == 2 * 2 * 8  # K J C
    x = torch.randn(2, 8, 3, 3, generator=_seeded(3)) * 2
    with torch.no_grad():
        torch.testing.assert_close(m(x).double(), _shiftmax_ref(m, x), rtol=1e-5, atol=1e-5)
        shifted = m.shift(x, 1)
        for i in range(8):
            assert torch.equal(shifted[:, i], x[:, (i + 2) % 8])


def test_dynamic_shift_max_needs_whole_groups():
    with pytest.raises(ValueError, match="divisible"):
        DynamicShiftMax(10, groups=4)


@pytest.mark.parametrize("kind", ["dyrelu-a", "dyrelu-b", "dyshiftmax"])
def test_dynamic_activations_start_from_relu(kind):
    m = make_activation(kind, 8).eval()
    with torch.no_grad():
        m.hyper.fc2.weight.zero_()
        m.hyper.fc2.bias.zero_()  # theta = 2 sigmoid(0) - 1 = 0: the neutral point
        x = torch.randn(2, 8, 3, 3, generator=_seeded(4))
        torch.testing.assert_close(m(x), torch.relu(x))


def test_dyrelu_a_shares_coefficients_across_channels_and_b_does_not():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4, generator=_seeded(5)) * 2
    x[:, 1] = x[:, 0]  # two channels holding the same values
    a_mod, b_mod = DynamicReLU(8, channel_wise=False).eval(), DynamicReLU(8, channel_wise=True).eval()
    with torch.no_grad():
        slope_a, _ = a_mod.coefficients(x)
        slope_b, _ = b_mod.coefficients(x)
        assert slope_a.shape == (2, 2, 1, 1) and slope_b.shape == (2, 2 * 8, 1, 1)
        assert slope_b[:, :8].flatten(1).std(dim=1).min() > 0  # B: one slope per channel, not all equal
        ya, yb = a_mod(x), b_mod(x)
    assert torch.equal(ya[:, 0], ya[:, 1])  # A: the same function on every channel
    assert not torch.allclose(yb[:, 0], yb[:, 1])


# ----------------------------------------------------------------------------------------------- architecture


def test_layout_has_thirty_conv_bn_act_layers():
    assert sum(r.conv_layers for r in LAYOUT) == 30
    model = Ablation30()
    layers = [m for m in model.modules() if isinstance(m, ConvBNAct)]
    assert len(layers) == 30
    kinds = [(m.conv.kernel_size[0], m.conv.groups == m.conv.in_channels and m.conv.groups > 1) for m in layers]
    assert kinds.count((3, True)) == 14 and kinds.count((1, False)) == 15 and kinds.count((3, False)) == 1
    assert [m.conv.stride[0] for m in layers].count(2) == 5  # stem + one stride-2 transition per stage
    with torch.no_grad():
        assert model.features(torch.randn(SHAPE)).shape == (1, 1536, 2, 2)  # 64 / 32
    with pytest.raises(ValueError, match="unknown layer kind"):
        LayerRow("stem", "conv5x5", 1, 2, 64)


def test_activation_kinds_apply_to_all_thirty_layers():
    for kind in ACTIVATIONS:
        acts = [m.act for m in Ablation30(kind).modules() if isinstance(m, ConvBNAct)]
        assert len(acts) == 30 and len({type(a) for a in acts}) == 1


@pytest.mark.parametrize("name", NAMES)
def test_registered_variant_resolves_builds_and_runs(name):
    spec = registry.resolve(name)
    assert spec.source == "own" and spec.input_size == (224, 224) and spec.reparameterizable is False
    model = create_model(name)
    v = VARIANTS[name]
    assert isinstance(model, Ablation30) and (model.activation, model.se, model.skip) == (v.activation, v.se, v.skip)
    with torch.no_grad():
        assert model(torch.randn(SHAPE)).shape == (1, 1000)


def test_paper_reference_rows_are_registered_with_their_names():
    data = json.loads(resources.files("mobileone_bench").joinpath("data/paper_reference.json").read_text())
    rows = data["tables"]["table2"]["rows"] + data["tables"]["table3"]["rows"]
    names_by_model: dict[str, set[str]] = {}
    for row in rows:
        names_by_model.setdefault(row["model"], set()).add(row["paper_name"])
    assert set(names_by_model) | {"ablation30-se-skip"} == set(VARIANTS)
    for model, paper_names in names_by_model.items():
        assert registry.resolve(model).paper_name in paper_names
    assert create_model("ablation30-relu", num_classes=10).classifier.out_features == 10


def test_se_row_is_se_relu():
    a, b = VARIANTS["ablation30-se"], VARIANTS["ablation30-se-relu"]
    assert (a.activation, a.se, a.skip) == (b.activation, b.se, b.skip) == ("relu", True, False)
    sa = create_model("ablation30-se").state_dict()
    sb = create_model("ablation30-se-relu").state_dict()
    assert {k: v.shape for k, v in sa.items()} == {k: v.shape for k, v in sb.items()}


def test_skip_connections_sit_on_every_pair_but_each_stage_first():
    for skip in (False, True):
        model = Ablation30(skip=skip)
        flags = {row.module: [p.has_skip for p in getattr(model.features, row.module)]
                 for row in LAYOUT if row.kind == "dw-pw"}
        expected = {r.module: [skip and i > 0 for i in range(r.repeats)] for r in LAYOUT if r.kind == "dw-pw"}
        assert flags == expected
    assert sum(isinstance(m, SeparablePair) and m.has_skip for m in Ablation30(skip=True).modules()) == 10


@pytest.mark.parametrize("name", ["ablation30-skip", "ablation30-se-skip"])
def test_skip_pair_adds_its_input_before_the_activation(name):
    torch.manual_seed(0)
    pair = create_model(name).features.stage3[1]
    x = torch.randn(1, 768, 4, 4, generator=_seeded(6))
    with torch.no_grad():
        branch = pair.pw.se(pair.pw.bn(pair.pw.conv(pair.dw(x))))
        torch.testing.assert_close(pair(x), torch.relu(branch + x))
        pair.pw.conv.weight.zero_()  # branch = BN(0) = 0 with default statistics (and SE(0) = 0)
        torch.testing.assert_close(pair(x), torch.relu(x))
    plain = create_model("ablation30-relu").features.stage3[1]
    with torch.no_grad():
        plain.pw.conv.weight.zero_()
        assert torch.count_nonzero(plain(x)) == 0


@pytest.mark.parametrize("name", UNIQUE)
def test_reparameterize_folds_every_bn_and_keeps_outputs(name):
    torch.manual_seed(0)
    model = create_model(name)
    calibrate_bn(model, SHAPE)
    result = reparameterize_model(model)
    assert (result.bn_folded, result.bn_remaining) == (30, 0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in result.model.modules())
    x = torch.randn(SHAPE, generator=_seeded(7))
    with torch.no_grad():
        ref, out = model(x), result.model(x)
    assert float((ref - out).abs().max()) <= 1e-4 * float(ref.abs().max())


# ------------------------------------------------------------------------------------------------------ export


@pytest.mark.slow
@pytest.mark.parametrize("name", UNIQUE)
def test_exports_to_onnx_and_core_ml(name, tmp_path):
    import coremltools as ct
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model(name)
    calibrate_bn(model, SHAPE)
    deploy = reparameterize_model(model).model
    x = torch.randn(SHAPE, generator=_seeded(8))
    with torch.no_grad():
        ref = deploy(x).numpy()

    # The TorchScript-based exporter writes opset 17; torch 2.14's dynamo exporter cannot go below opset 18.
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(deploy, (x,), buf, opset_version=17, dynamo=False, input_names=["x"], output_names=["y"])
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": x.numpy()})[0]
    assert abs(out - ref).max() <= 1e-4 * abs(ref).max()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(deploy, x, check_trace=False)
        mlmodel = ct.convert(traced, inputs=[ct.TensorType(shape=x.shape)], convert_to="mlprogram",
                             minimum_deployment_target=ct.target.iOS16)
    mlmodel.save(str(tmp_path / f"{name}.mlpackage"))
    assert (tmp_path / f"{name}.mlpackage" / "Manifest.json").is_file()
