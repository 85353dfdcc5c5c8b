"""The 30-layer network of the paper's Section 3.2 ("Key Bottlenecks"), for its Tables 2 and 3.

The paper benchmarks "a 30 layer convolutional neural network" with seven activations (Table 2) and with
Squeeze-Excite blocks or skip connections added (Table 3), but gives neither its widths nor its strides. The network
here is our reconstruction: a plain depthwise-separable CNN in the style of MobileNet-V1, which is also the
inference-time structure of MobileOne itself (a 3x3 depthwise conv, then a 1x1 pointwise conv), sized like the
plain networks that take about 1.5 ms on an iPhone 12 in the paper's Table 9 (MobileOne-S2: 1.3 GMACs, 1.18 ms;
MobileOne-S3: 1.9 GMACs, 1.53 ms): 1.34 GMACs and 13.4 M parameters at 224x224 with ReLU. Exactly 30
conv-BN-activation layers, then global average pooling and a linear classifier (not counted; counting it, as
"ResNet-18" does, would make 31 weight layers):

=======  ==================  ==================  ======  ==========  ========  ============
module   layers              kernel              stride  out width   out size  conv layers
=======  ==================  ==================  ======  ==========  ========  ============
stem     1 conv              3x3 dense           2       64          112       1
stage1   2 dw-pw pairs       3x3 dw + 1x1 pw     2       128         56        4
stage2   3 dw-pw pairs       3x3 dw + 1x1 pw     2       320         28        6
stage3   6 dw-pw pairs       3x3 dw + 1x1 pw     2       768         14        12
stage4   3 dw-pw pairs       3x3 dw + 1x1 pw     2       1536        7         6
head     1 conv              1x1 dense           1       1536        7         1
=======  ==================  ==================  ======  ==========  ========  ============

(stride: of the first layer of the module, carried by the depthwise conv of its first pair; out size: at a 224x224
input). Every layer is ``conv (no bias) -> BatchNorm -> [Squeeze-Excite] -> activation``; the table is
:data:`LAYOUT` in code.

Block options of :class:`Ablation30` (Table 3):

* ``se``: a :class:`~mobileone_bench.models.archs.mobileone.SqueezeExcite` (reduction 1/16, as MobileOne) between the
  BatchNorm and the activation of every one of the 30 layers. With ReLU this *is* SE-ReLU, the activation of
  Table 2 and of MobileOne's Figure 3, so ``ablation30-se`` (Table 3, "+ Squeeze-Excite") and
  ``ablation30-se-relu`` (Table 2, "SE-ReLU") are the same network: the paper gives both rows the same latency
  (2.10 ms), which it would not for two different networks.
* ``skip``: an identity residual around every dw-pw pair whose input and output shapes match, i.e. every pair but
  the first of each stage (stage1: pair 2; stage2: pairs 2-3; stage3: pairs 2-6; stage4: pairs 2-3; 10 residuals
  in all; the stem, the head and each stage's first, stride-2 and widening, pair have none). The input of the pair
  is added after the pointwise layer's BatchNorm (and SE), before its activation, as in ResNet:
  ``y = act(se(bn(pw(dw(x)))) + x)``.

Table 3's "+ Skip Connections" row (2.62 ms) is ambiguous: it may add skip connections to the baseline, or to the
"+ Squeeze-Excite" network of the previous column (the table reads left to right, and 2.62 > 2.10). Both readings
are registered: ``ablation30-skip`` (ReLU + skip, the row the paper's reference data maps to) and
``ablation30-se-skip`` (SE-ReLU + skip, the cumulative reading).

The activations (Table 2), one :class:`torch.nn.Module` each, written from their own papers:

* ReLU, GELU, SiLU: torch's.
* SE-ReLU: ``SqueezeExcite`` then ReLU (the ``se`` option with ``relu``).
* :class:`DynamicReLU` (Chen et al., ECCV 2020), ``K = 2`` pieces, ``y_c = max_k(a_c^k(x) x_c + b_c^k(x))``;
  DyReLU-A shares the coefficients across space and channels, DyReLU-B across space only.
* :class:`DynamicShiftMax` (MicroNet, Li et al., ICCV 2021),
  ``y_i = max_k sum_j a_{i,j}^k(x) x_{(i + j C/G) mod C}`` with ``J = 2``, ``K = 2``, ``G = 4``.

The coefficients of both dynamic activations come from a :class:`HyperFunction` (global average pool, FC, ReLU, FC,
``2 sigmoid - 1``). Both start from ReLU: with a neutral hyper-function output (0) they compute ``max(x, 0)``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from mobileone_bench.models.archs.activations import DynamicReLU, DynamicShiftMax, HyperFunction
from mobileone_bench.models.archs._layers import SqueezeExcite
from mobileone_bench.models.registry import register_model

__all__ = [
    "LayerRow",
    "LAYOUT",
    "ACTIVATIONS",
    "HyperFunction",
    "DynamicReLU",
    "DynamicShiftMax",
    "make_activation",
    "ConvBNAct",
    "SeparablePair",
    "Ablation30",
    "Variant",
    "VARIANTS",
]


_DENSE_KERNELS = {"conv3x3": 3, "conv1x1": 1}


@dataclass(frozen=True)
class LayerRow:
    """One row of the layout table.

    Attributes:
        module: Module name in the network (``stem``, ``stage1``... ``head``).
        kind: ``conv3x3`` (dense 3x3 conv), ``conv1x1`` (dense 1x1 conv) or ``dw-pw`` (depthwise-separable pairs).
        repeats: Number of convs (dense rows) or of dw-pw pairs.
        stride: Stride of the first layer of the row.
        width: Output channels.
    """

    module: str
    kind: str
    repeats: int
    stride: int
    width: int

    def __post_init__(self) -> None:
        if self.kind != "dw-pw" and self.kind not in _DENSE_KERNELS:
            raise ValueError(f"unknown layer kind {self.kind!r}")

    @property
    def conv_layers(self) -> int:
        """How many conv-BN-activation layers the row holds."""
        return self.repeats * (2 if self.kind == "dw-pw" else 1)


#                  module    kind       repeats stride width
LAYOUT: tuple[LayerRow, ...] = (
    LayerRow("stem", "conv3x3", 1, 2, 64),
    LayerRow("stage1", "dw-pw", 2, 2, 128),
    LayerRow("stage2", "dw-pw", 3, 2, 320),
    LayerRow("stage3", "dw-pw", 6, 2, 768),
    LayerRow("stage4", "dw-pw", 3, 2, 1536),
    LayerRow("head", "conv1x1", 1, 1, 1536),
)


_ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "relu": lambda c: nn.ReLU(),
    "gelu": lambda c: nn.GELU(),
    "silu": lambda c: nn.SiLU(),
    "dyshiftmax": lambda c: DynamicShiftMax(c),
    "dyrelu-a": lambda c: DynamicReLU(c, channel_wise=False),
    "dyrelu-b": lambda c: DynamicReLU(c, channel_wise=True),
}
#: Activation kinds of :func:`make_activation` (SE-ReLU is ``relu`` with the ``se`` option).
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)


def make_activation(kind: str, channels: int) -> nn.Module:
    """A fresh activation module of one of :data:`ACTIVATIONS` for ``channels`` channels."""
    if kind not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; known: {', '.join(ACTIVATIONS)}")
    return _ACTIVATIONS[kind](channels)


class ConvBNAct(nn.Module):
    """One of the 30 layers: conv (no bias), BatchNorm, optional Squeeze-Excite, activation.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        kernel_size: Square kernel size (padding keeps the size at stride 1).
        stride: Convolution stride.
        groups: ``in_ch`` for a depthwise conv, 1 for a dense one.
        activation: One of :data:`ACTIVATIONS`.
        se: Squeeze-Excite before the activation.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 activation: str = "relu", se: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.se = SqueezeExcite(out_ch) if se else nn.Identity()
        self.act = make_activation(activation, out_ch)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``act(se(bn(conv(x))) [+ residual])``."""
        y = self.se(self.bn(self.conv(x)))
        if residual is not None:
            y = y + residual
        return self.act(y)


class SeparablePair(nn.Module):
    """A 3x3 depthwise layer then a 1x1 pointwise layer, with an identity residual around both if asked and possible.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        stride: Stride of the depthwise conv.
        activation: One of :data:`ACTIVATIONS`.
        se: Squeeze-Excite in both layers.
        skip: Add the pair's input before the pointwise layer's activation, when ``stride == 1`` and
            ``in_ch == out_ch`` (ignored otherwise).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str = "relu", se: bool = False,
                 skip: bool = False):
        super().__init__()
        self.dw = ConvBNAct(in_ch, in_ch, 3, stride, in_ch, activation, se)
        self.pw = ConvBNAct(in_ch, out_ch, 1, 1, 1, activation, se)
        self.has_skip = skip and stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x), x if self.has_skip else None)


class Ablation30(nn.Module):
    """The 30-layer network of Section 3.2 (see the module docstring for the layout).

    Args:
        activation: One of :data:`ACTIVATIONS`, used by all 30 layers.
        se: Squeeze-Excite before every activation (with ``relu``: SE-ReLU).
        skip: Identity residuals around the dw-pw pairs whose shapes match.
        num_classes: Classifier outputs.
        layout: The layer table (:data:`LAYOUT`).
    """

    def __init__(self, activation: str = "relu", se: bool = False, skip: bool = False, num_classes: int = 1000,
                 layout: tuple[LayerRow, ...] = LAYOUT):
        super().__init__()
        self.activation, self.se, self.skip = activation, se, skip
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        in_ch = 3
        for row in layout:
            units: list[nn.Module] = []
            for i in range(row.repeats):
                stride = row.stride if i == 0 else 1
                if row.kind == "dw-pw":
                    units.append(SeparablePair(in_ch, row.width, stride, activation, se, skip))
                else:
                    units.append(ConvBNAct(in_ch, row.width, _DENSE_KERNELS[row.kind], stride, 1, activation, se))
                in_ch = row.width
            modules[row.module] = nn.Sequential(*units)
        self.features = nn.Sequential(modules)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_ch
        self.classifier = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.gap(self.features(x)), 1))


@dataclass(frozen=True)
class Variant:
    """A registered configuration of :class:`Ablation30`.

    Attributes:
        paper_name: The row of Table 2 or 3 it reproduces (``None``: not a row of the paper).
        activation: One of :data:`ACTIVATIONS`.
        se: Squeeze-Excite option.
        skip: Skip-connection option.
        description: One line for ``list``.
    """

    paper_name: str | None
    activation: str
    se: bool
    skip: bool
    description: str


#: Registry name -> configuration. ``ablation30-relu`` is both Table 2's "ReLU" row and Table 3's "Baseline";
#: ``ablation30-se`` and ``ablation30-se-relu`` are the same network (see the module docstring).
VARIANTS: dict[str, Variant] = {
    "ablation30-relu": Variant("ReLU", "relu", False, False,
                               "30-layer ablation net (Sec. 3.2), ReLU: Table 2 ReLU / Table 3 baseline"),
    "ablation30-gelu": Variant("GELU", "gelu", False, False, "30-layer ablation net (Sec. 3.2), GELU"),
    "ablation30-se-relu": Variant("SE-ReLU", "relu", True, False,
                                  "30-layer ablation net (Sec. 3.2), SE-ReLU (= ablation30-se)"),
    "ablation30-silu": Variant("SiLU", "silu", False, False, "30-layer ablation net (Sec. 3.2), SiLU"),
    "ablation30-dyshiftmax": Variant("Dynamic Shift-Max", "dyshiftmax", False, False,
                                     "30-layer ablation net (Sec. 3.2), Dynamic Shift-Max (J=2, K=2, G=4)"),
    "ablation30-dyrelu-a": Variant("DynamicReLU-A", "dyrelu-a", False, False,
                                   "30-layer ablation net (Sec. 3.2), DY-ReLU-A (K=2, channel-shared)"),
    "ablation30-dyrelu-b": Variant("DynamicReLU-B", "dyrelu-b", False, False,
                                   "30-layer ablation net (Sec. 3.2), DY-ReLU-B (K=2, channel-wise)"),
    "ablation30-se": Variant("+ Squeeze-Excite", "relu", True, False,
                             "30-layer ablation net (Sec. 3.2), + Squeeze-Excite (= ablation30-se-relu)"),
    "ablation30-skip": Variant("+ Skip Connections", "relu", False, True,
                               "30-layer ablation net (Sec. 3.2), ReLU + skip connections"),
    "ablation30-se-skip": Variant(None, "relu", True, True,
                                  "30-layer ablation net (Sec. 3.2), SE-ReLU + skip (cumulative reading of Table 3)"),
}


def _factory(variant: Variant) -> Callable[..., Ablation30]:
    def build(num_classes: int = 1000) -> Ablation30:
        return Ablation30(variant.activation, variant.se, variant.skip, num_classes)

    return build


for _name, _variant in VARIANTS.items():
    register_model(_factory(_variant), name=_name, input_size=224, reparameterizable=False,
                   description=_variant.description, paper_name=_variant.paper_name)
del _name, _variant
