"""MicroNet (Li et al., "MicroNet: Improving Image Recognition with Extremely Low FLOPs", ICCV 2021): M1, M2, M3.

MicroNet is built from Micro-Factorized convolutions (a pointwise conv as two group convs around a channel shuffle,
a ``k x k`` depthwise conv as a ``k x 1`` then a ``1 x k`` depthwise conv) and Dynamic Shift-Max
(:class:`~mobileone_bench.models.archs.activations.MicroNetShiftMax`). The per-block configs are the authors'
(``backbone/microconfig.py`` of github.com/liyunsheng13/micronet, with the settings of their ``scripts/*_m{1,2,3}.sh``)
and are data below, one :class:`BlockRow` per row. Columns: stride ``s``, repeats ``n``, output channels ``c``,
kernel ``k``, expansions ``e1, e2`` (hidden width ``in e1 e2``), first pointwise conv groups ``g1`` (0: a
Micro-Block-A, which starts with the depthwise conv) and its shuffle / Shift-Max groups ``g2``, the authors'
informational reduced width ``c3``, second pointwise conv groups ``g3`` and its shuffle / Shift-Max groups ``g4``
(both 0: the final 1x1 expansion), the activation after each of the three layers ``y1 y2 y3`` (0: ReLU6, or
nothing after the last layer; 1: Dynamic Shift-Max with ``K = 1``; 2: with ``K = 2``) and the hyper-function
reduction multiplier ``r`` (reduction ``8 r``). Widths at 224x224 (``in -> hidden -> out @ size``):

=======  ====================================  ====================================  ===================================
row      M1 (stem 6 @112, groups 3x2)          M2 (stem 8 @112, groups 4x2)          M3 (stem 12 @112, groups 4x3)
=======  ====================================  ====================================  ===================================
1        A  6 -> 24 -> 8 @56                   A  8 -> 32 -> 12 @56                  A 12 -> 48 -> 16 @56
2        A  8 -> 32 -> 16 @28                  A 12 -> 48 -> 16 @28                  A 16 -> 64 -> 24 @28
3        A 16 -> 64 -> 16 @14                  A 16 -> 64 -> 24 @28                  A 24 -> 96 -> 24 @28
4        B 16 -> 96 -> 32 @14                  B 24 -> 144 -> 32 @14                 B 24 -> 144 -> 32 @14
5        C 32 -> 192 -> 64 @7                  C 32 -> 192 -> 32 @14                 C 32 -> 192 -> 32 @14
6        C 64 -> 384 -> 96 @7                  C 32 -> 192 -> 64 @14                 C 32 -> 192 -> 64 @14
7        1x1 96 -> 576 @7                      C 64 -> 384 -> 96 @7                  C 64 -> 384 -> 80 @14
8                                              C 96 -> 576 -> 128 @7                 C 80 -> 480 -> 80 @14
9                                              1x1 128 -> 768 @7                     C 80 -> 480 -> 120 @7
10                                                                                   C 120 -> 720 -> 120 @7
11                                                                                   C 120 -> 720 -> 144 @7
12                                                                                   1x1 144 -> 864 @7
head     ReLU6, GAP, h-swish, FC 576-960, FC   ReLU6, GAP, h-swish, FC 768-1024, FC  ReLU6, GAP, h-swish, FC 864-1024, FC
=======  ====================================  ====================================  ===================================

(A: Micro-Block-A, micro-factorized depthwise conv then one group conv; B/C: group conv, depthwise, group conv, the
authors' code builds B and C alike; 1x1: a group conv expansion. The head FCs are each ``Linear -> BatchNorm1d ->
h-swish``, the logits included, with dropout between them.)

Module and parameter names follow the authors' code (``features.N.layers.M...``, ``fc.0`` / ``fc.2`` in each
Shift-Max, ``classifier.0.linear.0``...), including the positions of their parameter-free placeholder layers, so
their released state dicts load with ``load_state_dict(strict=True)``. Our readings and deviations:

* Dynamic Shift-Max follows the authors' code, not the paper's formula: its shifted copy moves one group *and* one
  channel within the group (``x[:, index]`` in their ``DYShiftMax``), coefficients ``init + 4 (h_sigmoid - 1/2)``.
* The two BatchNorm1d of the classifier follow Linears, which the tool's conv-BN folding does not handle:
  :meth:`SwishLinear.reparameterize` folds them into their Linear, so the inference-time model has no BatchNorm.
* ``MaxGroupPooling`` (the authors' stem option when ``g1 g2 = 2 c``) is used by none of M1-M3 and is left out.

Complexity at 224x224 as the tool counts it (convs and Linears, the Shift-Max hyper-function FCs included, plus
Dynamic Shift-Max's ``J K`` coefficient multiplies per element, 4 with ``K = 2`` and 2 with ``K = 1``, which the tool
counts for every dynamic activation; BatchNorm folded): M1 6.12M MAdds / 1.77M params, M2 12.74M / 2.38M, M3 20.81M /
2.61M, against the authors' 6M / 1.8M, 12M / 2.4M, 21M / 2.6M (their config names say 6M / 12M / 20M: the figures are
the counts truncated). The parameters agree (their model has exactly our train-time count). The element-wise part is
0.81M / 2.41M / 2.57M: without it the counts would be 11-14% below the authors'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mobileone_bench.models.archs._layers import conv_bn_layers, fold_linear_bn
from mobileone_bench.models.archs.activations import MicroNetShiftMax
from mobileone_bench.models.registry import register_model

__all__ = [
    "BlockRow",
    "MicroNetCfg",
    "MICRONET_CFGS",
    "ChannelShuffle",
    "SwishLinear",
    "MicroStem",
    "MicroBlock",
    "MicroNet",
    "micronet_cfg",
]


@dataclass(frozen=True)
class BlockRow:
    """One row of the authors' per-block config (``s, n, c, ks, c1, c2, g1, g2, c3, g3, g4, y1, y2, y3, r``).

    Attributes:
        stride: Stride of the first block of the row (on its depthwise conv).
        repeats: Number of blocks.
        out: Output channels.
        kernel: Depthwise kernel size ``k`` (a ``k x 1`` then a ``1 x k`` conv).
        exp1: First expansion ratio (of the ``k x 1`` depthwise conv in a Micro-Block-A).
        exp2: Second expansion ratio; the hidden width is ``in exp1 exp2``.
        g1: Groups of the first pointwise (group) conv; 0 for a Micro-Block-A, which has none.
        g2: Channel groups of the shuffle and of the Shift-Max after the first layer.
        reduced: The authors' reduced width (informational: their code does not use it).
        g3: Groups of the second pointwise (group) conv; 0 for the final 1x1 expansion.
        g4: Channel groups of the shuffle and of the Shift-Max after the second pointwise conv.
        act1: Activation after the first pointwise conv (0: ReLU6; 1, 2: Dynamic Shift-Max, ``K = 1, 2``).
        act2: Activation after the depthwise conv (same code).
        act3: Activation after the last pointwise conv (0: none; otherwise Dynamic Shift-Max, ``K = 1``).
        ratio: Reduction multiplier of the Shift-Max hyper-functions (reduction ``8 ratio``).
    """

    stride: int
    repeats: int
    out: int
    kernel: int
    exp1: int
    exp2: int
    g1: int
    g2: int
    reduced: int
    g3: int
    g4: int
    act1: int
    act2: int
    act3: int
    ratio: int

    @property
    def kind(self) -> str:
        """``A`` (Micro-Block-A), ``1x1`` (final expansion) or ``BC`` (Micro-Block-B/C)."""
        return "A" if self.g1 == 0 else ("1x1" if self.g4 == 0 else "BC")


@dataclass(frozen=True)
class MicroNetCfg:
    """One MicroNet variant: the authors' config name, stem, blocks, head and activation settings.

    Attributes:
        name: The authors' ``NET_CONFIG``.
        stem_channels: ``STEM_CH``.
        stem_groups: ``STEM_GROUPS``: the stem's ``3 x 1`` conv has ``g1`` outputs, its ``1 x 3`` depthwise conv
            multiplies them by ``g2``; their product is ``stem_channels``.
        blocks: The rows.
        head_channels: ``OUT_CH``, the hidden width of the classifier.
        dropout: ``DROPOUT``, between the two classifier layers.
        init_a: ``INIT_A``, initial first coefficients of the two pieces of the first two Shift-Max of a block.
        init_b: ``INIT_B``, initial second (shifted-copy) coefficients of those pieces.
        init_ab3: ``INIT_A_BLOCK3``, initial ``(a, b)`` of the (one-piece) Shift-Max after a block's last conv.
        reduction: ``REDUCTION`` of the Shift-Max hyper-functions (times the row's ``ratio``).
    """

    name: str
    stem_channels: int
    stem_groups: tuple[int, int]
    blocks: tuple[BlockRow, ...]
    head_channels: int
    dropout: float
    init_a: tuple[float, float] = (1.0, 1.0)
    init_b: tuple[float, float] = (0.0, 0.0)
    init_ab3: tuple[float, float] = (1.0, 0.0)
    reduction: int = 8


def _rows(*rows: tuple[int, ...]) -> tuple[BlockRow, ...]:
    return tuple(BlockRow(*r) for r in rows)


MICRONET_CFGS: dict[str, MicroNetCfg] = {
    "m1": MicroNetCfg("msnx_dy6_exp6_6M_221", 6, (3, 2), _rows(
        # s  n    c  k e1 e2  g1  g2   c3  g3  g4 y1 y2 y3 r
        (2, 1,   8, 3, 2, 2,  0,  6,   8,  2,  2, 2, 0, 1, 1),
        (2, 1,  16, 3, 2, 2,  0,  8,  16,  4,  4, 2, 2, 1, 1),
        (2, 1,  16, 5, 2, 2,  0, 16,  16,  4,  4, 2, 2, 1, 1),
        (1, 1,  32, 5, 1, 6,  4,  4,  32,  4,  4, 2, 2, 1, 1),
        (2, 1,  64, 5, 1, 6,  8,  8,  64,  8,  8, 2, 2, 1, 1),
        (1, 1,  96, 3, 1, 6,  8,  8,  96,  8,  8, 2, 2, 1, 2),
        (1, 1, 576, 3, 1, 6, 12, 12,   0,  0,  0, 2, 2, 1, 2),
    ), head_channels=960, dropout=0.05),
    "m2": MicroNetCfg("msnx_dy9_exp6_12M_221", 8, (4, 2), _rows(
        # s  n    c  k e1 e2  g1  g2   c3  g3  g4 y1 y2 y3 r
        (2, 1,  12, 3, 2, 2,  0,  8,  12,  4,  4, 2, 0, 1, 1),
        (2, 1,  16, 3, 2, 2,  0, 12,  16,  4,  4, 2, 2, 1, 1),
        (1, 1,  24, 3, 2, 2,  0, 16,  24,  4,  4, 2, 2, 1, 1),
        (2, 1,  32, 5, 1, 6,  6,  6,  32,  4,  4, 2, 2, 1, 1),
        (1, 1,  32, 5, 1, 6,  8,  8,  32,  4,  4, 2, 2, 1, 2),
        (1, 1,  64, 5, 1, 6,  8,  8,  64,  8,  8, 2, 2, 1, 2),
        (2, 1,  96, 5, 1, 6,  8,  8,  96,  8,  8, 2, 2, 1, 2),
        (1, 1, 128, 3, 1, 6, 12, 12, 128,  8,  8, 2, 2, 1, 2),
        (1, 1, 768, 3, 1, 6, 16, 16,   0,  0,  0, 2, 2, 1, 2),
    ), head_channels=1024, dropout=0.1),
    "m3": MicroNetCfg("msnx_dy12_exp6_20M_020", 12, (4, 3), _rows(
        # s  n    c  k e1 e2  g1  g2   c3  g3  g4 y1 y2 y3 r
        (2, 1,  16, 3, 2, 2,  0, 12,  16,  4,  4, 0, 2, 0, 1),
        (2, 1,  24, 3, 2, 2,  0, 16,  24,  4,  4, 0, 2, 0, 1),
        (1, 1,  24, 3, 2, 2,  0, 24,  24,  4,  4, 0, 2, 0, 1),
        (2, 1,  32, 5, 1, 6,  6,  6,  32,  4,  4, 0, 2, 0, 1),
        (1, 1,  32, 5, 1, 6,  8,  8,  32,  4,  4, 0, 2, 0, 2),
        (1, 1,  64, 5, 1, 6,  8,  8,  48,  8,  8, 0, 2, 0, 2),
        (1, 1,  80, 5, 1, 6,  8,  8,  80,  8,  8, 0, 2, 0, 2),
        (1, 1,  80, 5, 1, 6, 10, 10,  80,  8,  8, 0, 2, 0, 2),
        (2, 1, 120, 5, 1, 6, 10, 10, 120, 10, 10, 0, 2, 0, 2),
        (1, 1, 120, 5, 1, 6, 12, 12, 120, 10, 10, 0, 2, 0, 2),
        (1, 1, 144, 3, 1, 6, 12, 12, 144, 12, 12, 0, 2, 0, 2),
        (1, 1, 864, 3, 1, 6, 12, 12,   0,  0,  0, 0, 2, 0, 2),
    ), head_channels=1024, dropout=0.1, init_a=(1.0, 0.5), init_b=(0.0, 0.5)),
}


def micronet_cfg(variant: str) -> MicroNetCfg:
    """The config of ``m1``, ``m2`` or ``m3``."""
    try:
        return MICRONET_CFGS[variant.lower()]
    except KeyError:
        raise ValueError(f"unknown MicroNet variant {variant!r} (known: {', '.join(MICRONET_CFGS)})") from None


# ------------------------------------------------------------------------------------------------------- layers


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: ``(N, G, C/G, H, W)`` transposed to ``(N, C/G, G, H, W)``.

    Output channel ``q G + p`` is input channel ``p C/G + q``.
    """

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class _ConvStack(nn.Module):
    """A container whose layers sit in ``conv`` (the authors' ``GroupConv``, ``DepthSpatialSepConv``...)."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def group_conv(in_ch: int, out_ch: int, groups: int) -> _ConvStack:
    """Group-adaptive 1x1 convolution (half of a micro-factorized pointwise conv) with BatchNorm."""
    return _ConvStack(*conv_bn_layers(in_ch, out_ch, (1, 1), (1, 1), groups))


def depth_spatial_sep_conv(in_ch: int, exp1: int, exp2: int, kernel: int, stride: int) -> _ConvStack:
    """Micro-factorized depthwise conv: ``k x 1`` depthwise (x ``exp1`` channels), BN, ``1 x k`` depthwise
    (x ``exp2``), BN; the stride is split over the two."""
    hidden = in_ch * exp1
    return _ConvStack(*conv_bn_layers(in_ch, hidden, (kernel, 1), (stride, 1), in_ch),
                      *conv_bn_layers(hidden, hidden * exp2, (1, kernel), (1, stride), hidden))


class MicroStem(nn.Module):
    """The stem (the authors' ``spatialsepsf`` mode): ``3 x 1`` conv 3 -> ``g1`` (stride 2 vertically), BN,
    ``1 x 3`` depthwise conv ``g1 -> g1 g2`` (stride 2 horizontally), BN, shuffle of ``g1`` groups, ReLU6."""

    def __init__(self, out_ch: int, groups: tuple[int, int], in_ch: int = 3):
        super().__init__()
        g1, g2 = groups
        if g1 * g2 != out_ch:
            raise ValueError(f"stem groups {groups} must multiply to its {out_ch} channels")
        self.stem = nn.Sequential(
            _ConvStack(*conv_bn_layers(in_ch, g1, (3, 1), (2, 1), 1),
                       *conv_bn_layers(g1, g1 * g2, (1, 3), (1, 2), g1), ChannelShuffle(g1)),
            nn.ReLU6(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)


class MicroBlock(nn.Module):
    """One MicroNet block (the authors' ``DYMicroBlock``), a residual when stride is 1 and widths match.

    ``layers`` holds, in the authors' positions (``nn.Identity`` where their code puts an empty placeholder):

    * Micro-Block-A (``g1 = 0``): 0 micro-factorized depthwise conv ``in -> in e1 e2``, 1 act2, 2 shuffle ``g2``,
      3 shuffle ``hidden / 2`` (if act2), 4 group conv ``hidden -> out`` (``g3`` groups), 5 act3, 6 shuffle ``g4``,
      7 shuffle ``out / 2`` (if act3 and ``out`` is even).
    * final 1x1 (``g4 = 0``): 0 group conv ``in -> in e1 e2`` (``g1`` groups), 1 act3.
    * Micro-Block-B/C: 0 group conv ``in -> hidden`` (``g1``), 1 act1, 2 shuffle ``g2``, 3 ``k x 1``, ``1 x k``
      depthwise conv, 4 placeholder, 5 act2 (Shift-Max groups ``hidden / g2``), 6 shuffle ``hidden / 4`` (act1 and
      act2 dynamic) or ``hidden / 2`` (one of them), 7 group conv ``hidden -> out`` (``g3``), 8 act3, 9 shuffle
      ``g4``, 10 shuffle ``out / 2`` (if act3).

    Args:
        in_ch: Input channels.
        row: The config row.
        stride: This block's stride.
        cfg: The variant (activation settings).
    """

    def __init__(self, in_ch: int, row: BlockRow, stride: int, cfg: MicroNetCfg):
        super().__init__()
        out = row.out
        hidden = in_ch * row.exp1 * row.exp2
        reduction = cfg.reduction * row.ratio
        pieces_init = ((cfg.init_a[0], cfg.init_b[0]), (cfg.init_a[1], cfg.init_b[1]))
        last_init = ((cfg.init_ab3[0], cfg.init_ab3[1]),)
        self.in_ch, self.out_ch, self.hidden, self.stride, self.kind = in_ch, out, hidden, stride, row.kind
        self.identity = stride == 1 and in_ch == out

        def act(code: int, channels: int, groups: int, red: int) -> nn.Module:
            if code == 0:
                return nn.ReLU6()
            k = 2 if code == 2 else 1
            return MicroNetShiftMax(channels, groups, k, pieces_init[:k], red)

        def act3(channels: int, groups: int, red: int) -> nn.Module:
            return MicroNetShiftMax(channels, groups, 1, last_init, red) if row.act3 > 0 else nn.Identity()

        if row.kind == "A":
            layers = [
                depth_spatial_sep_conv(in_ch, row.exp1, row.exp2, row.kernel, stride),
                act(row.act2, hidden, row.g2, reduction),
                ChannelShuffle(row.g2),
                ChannelShuffle(hidden // 2) if row.act2 else nn.Identity(),
                group_conv(hidden, out, row.g3),
                act3(out, row.g4, reduction // 2),
                ChannelShuffle(row.g4),
                ChannelShuffle(out // 2) if out % 2 == 0 and row.act3 else nn.Identity(),
            ]
        elif row.kind == "1x1":
            if out != hidden:
                raise ValueError(f"the final 1x1 row must have out = in e1 e2 ({hidden}), not {out}")
            layers = [group_conv(in_ch, hidden, row.g1), act3(hidden, row.g2, reduction)]
        else:
            if row.act1 and row.act2:
                mid_shuffle: nn.Module = ChannelShuffle(hidden // 4)
            elif row.act1 or row.act2:
                mid_shuffle = ChannelShuffle(hidden // 2)
            else:
                mid_shuffle = nn.Identity()
            layers = [
                group_conv(in_ch, hidden, row.g1),
                act(row.act1, hidden, row.g2, reduction),
                ChannelShuffle(row.g2),
                depth_spatial_sep_conv(hidden, 1, 1, row.kernel, stride),
                nn.Identity(),
                act(row.act2, hidden, hidden // row.g2 if row.g2 != 1 else 1, reduction),
                mid_shuffle,
                group_conv(hidden, out, row.g3),
                act3(out, row.g4, reduction // 2 if out < hidden else reduction),
                ChannelShuffle(row.g4),
                ChannelShuffle(out // 2) if row.act3 else nn.Identity(),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return out + x if self.identity else out

    def extra_repr(self) -> str:
        return (f"{self.kind}, {self.in_ch} -> {self.hidden} -> {self.out_ch}, stride={self.stride}"
                + (", residual" if self.identity else ""))


class SwishLinear(nn.Module):
    """``Linear -> BatchNorm1d -> h-swish`` (the authors' ``SwishLinear``, layers in ``linear``).

    :meth:`reparameterize` folds the BatchNorm into the Linear (eval-mode statistics) for the inference-time model.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Sequential(nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features),
                                    nn.Hardswish())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold ``BatchNorm1d`` into the Linear: ``W' = W gamma / sigma``, ``b' = (b - mu) gamma / sigma + beta``."""
        fc, bn = self.linear[0], self.linear[1]
        if not isinstance(bn, nn.BatchNorm1d):
            return
        fold_linear_bn(fc, bn)
        self.linear[1] = nn.Identity()


class MicroNet(nn.Module):
    """MicroNet: stem, blocks (``features``), ReLU6 + GAP + h-swish (``avgpool``), two :class:`SwishLinear`.

    Args:
        cfg: The variant.
        num_classes: Classifier outputs.
    """

    def __init__(self, cfg: MicroNetCfg, num_classes: int = 1000):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [MicroStem(cfg.stem_channels, cfg.stem_groups)]
        ch = cfg.stem_channels
        for row in cfg.blocks:
            for i in range(row.repeats):
                layers.append(MicroBlock(ch, row, row.stride if i == 0 else 1, cfg))
                ch = row.out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.Sequential(nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Hardswish())
        self.classifier = nn.Sequential(SwishLinear(ch, cfg.head_channels), nn.Dropout(cfg.dropout),
                                        SwishLinear(cfg.head_channels, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        """The authors' initialisation: convs ``N(0, 2 / (k_h k_w out))``, Linears ``N(0, 0.01)``, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / n) ** 0.5)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _build(variant: str, num_classes: int) -> MicroNet:
    return MicroNet(micronet_cfg(variant), num_classes)


@register_model(name="micronet-m1", paper_name="MicroNet-M1", input_size=224)
def micronet_m1(num_classes: int = 1000) -> MicroNet:
    """MicroNet-M1 (Li et al., ICCV 2021): 6M MAdds, 1.8M params (authors' figures)."""
    return _build("m1", num_classes)


@register_model(name="micronet-m2", paper_name="MicroNet-M2", input_size=224)
def micronet_m2(num_classes: int = 1000) -> MicroNet:
    """MicroNet-M2 (Li et al., ICCV 2021): 12M MAdds, 2.4M params (authors' figures)."""
    return _build("m2", num_classes)


@register_model(name="micronet-m3", paper_name="MicroNet-M3", input_size=224)
def micronet_m3(num_classes: int = 1000) -> MicroNet:
    """MicroNet-M3 (Li et al., ICCV 2021): 21M MAdds, 2.6M params (authors' figures)."""
    return _build("m3", num_classes)
