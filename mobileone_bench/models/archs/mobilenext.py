"""MobileNeXt (Zhou et al., "Rethinking Bottleneck Structure for Efficient Mobile Network Design", ECCV 2020).

The sandglass block flips MobileNetV2's inverted residual: the shortcut and both depthwise convolutions sit at the
*wide* ends of the block, and the two pointwise convolutions squeeze the features through a bottleneck of ``C / t``
channels in the middle::

    x -> dw3x3-BN-ReLU6 -> pw1x1-BN (linear, C_in -> C_in / t) -> pw1x1-BN-ReLU6 (-> C_out) -> dw3x3/s-BN (linear)
      -> + the first ``alpha * C`` channels of x (the identity tensor) -> y

The paper's architecture table, here as :data:`TABLE` (``t`` = reduction ratio, ``c`` = output channels, ``n`` =
repeats, ``s`` = stride of the first block of the row), after a 3x3 stride-2 conv of 32 channels (BN, ReLU6),
followed by global average pooling and the classifier (the paper's "conv2d 1x1, k" on a 1x1 map, a linear layer):

    ====  ====  ===  ===  ======================================================================
     t     c     n    s   input of the row (width 1.0, 224x224)
    ====  ====  ===  ===  ======================================================================
     2     96    1    2   112 x 112 x 32
     6    144    1    1   56 x 56 x 96
     6    192    3    2   56 x 56 x 144
     6    288    3    2   28 x 28 x 192
     6    384    4    1   14 x 14 x 288
     6    576    4    2   14 x 14 x 384
     6    960    3    1   7 x 7 x 576
     6   1280    1    1   7 x 7 x 960 (-> 7 x 7 x 1280, avgpool, linear 1280 -> 1000)
    ====  ====  ===  ===  ======================================================================

Width rules (:func:`scaled_width`, :func:`hidden_width`), as the authors' code applies them and as the authors'
figures need them:

* every width of the table (the stem's 32 included) is ``c * width_mult`` rounded to the nearest multiple of 8, never
  more than 10% below ``c * width_mult`` (MobileNetV2's ``make_divisible``). At 1.4: stem 48, then 136, 200, 272, 400,
  536, 808, 1344 and 1792 -- the last stage scales too (1280 is kept only for multipliers below 1, as in
  MobileNetV2), so the classifier of x1.4 reads 1792 features;
* the bottleneck of a block is ``C_in // t``, but never narrower than ``C_out / 6``: if it is, it becomes
  ``ceil(C_out / 6)`` rounded to a multiple of 16 (x1.0: 16, 32, 32, 32, 32, 48 ... 160, 208).

Block forms (:func:`block_table`). The paper's block (above) is used where the shape is kept (the repeated blocks,
with the shortcut), in the ``t = 2`` first row, and in the two single-block rows of stride 1 (``144`` and ``1280``,
no shortcut). The other first blocks of a row change the width, have no shortcut and drop the first depthwise conv
(it would run on the input width); of them, the stride-1 ones (rows 384 and 960) drop the last one too and are two
pointwise convs only. This is what the authors' released code builds and what gives the authors' figures; the block
of the paper's Table 1 everywhere (d-li14's reading, :func:`mobilenext_dli14`) has 274.6M FLOPs / 3.28M params at x1.0,
8.5% and 6.4% short of the authors' 300M / 3.5M.

Identity tensor multiplier ``alpha`` (the paper's ablation): the shortcut adds only the first ``alpha * C_out``
channels of the input. The authors' ImageNet figures (74.0% at x1.0, their checkpoint ``74_02_full_id_tensor``) use
``alpha = 1``, the default here; ``alpha = 1/2`` (74.09% in their ablation) saves element-wise additions, which the
FLOP count ignores anyway. A partial shortcut is a channel slice, an add and a concatenation (no in-place writes,
so it exports).

Weights: the submodule names are those of the authors' code (``yitu-opensource/MobileNeXt``,
``mobilenext/codebase/models/mnext.py``, printed module by module in their training log of ``mnext_mbv2_cfg``):
``features.0.{0,1}`` (stem conv, BN), ``features.<i>.conv.<j>`` with ``j`` the position in the block's sequence
(ReLU6 layers count: ``0``/``3``/``5``/``8`` are the dw/pw/pw/dw convs of a full block, ``0``/``2``/``5`` those of a
block without its first dw), and ``classifier.1`` (after ``classifier.0``, a dropout of 0.2). Their released x1.0
checkpoint therefore loads with ``strict=True`` and without renaming; the train-time x1.0 model has exactly the
3,535,416 parameters that log prints. ``d-li14/mobilenext.pytorch`` uses the same ``features.<i>.conv.<j>`` names
but another network (every block the full one, bottleneck ``C_in // t``) and a bare ``classifier`` linear: that
layout is built by ``MobileNeXt(mobilenext_cfg(w, layout="d-li14"))`` (:func:`mobilenext_dli14`), into which a
d-li14 state dict loads with ``strict=True``; its tensors cannot fit the authors' network (other shapes), so no
converter between the two exists.

Inference form: every BatchNorm directly follows a conv and is folded by :func:`mobileone_bench.reparameterize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mobileone_bench.models.archs._layers import conv_bn_layers, make_divisible
from mobileone_bench.models.registry import register_model

__all__ = [
    "StageRow",
    "BlockCfg",
    "MobileNeXtCfg",
    "TABLE",
    "STEM_CHANNELS",
    "LAYOUTS",
    "make_divisible",
    "scaled_width",
    "hidden_width",
    "block_table",
    "mobilenext_cfg",
    "SandglassBlock",
    "MobileNeXt",
    "mobilenext_dli14",
]


@dataclass(frozen=True)
class StageRow:
    """One row of the paper's architecture table.

    Attributes:
        t: Reduction ratio of the bottleneck (the paper's ``t``: the middle width is ``C_in / t``).
        c: Output channels at width 1.0.
        n: Number of sandglass blocks.
        s: Stride of the first block (the others have stride 1).
    """

    t: int
    c: int
    n: int
    s: int


TABLE: tuple[StageRow, ...] = (
    StageRow(2, 96, 1, 2),
    StageRow(6, 144, 1, 1),
    StageRow(6, 192, 3, 2),
    StageRow(6, 288, 3, 2),
    StageRow(6, 384, 4, 1),
    StageRow(6, 576, 4, 2),
    StageRow(6, 960, 3, 1),
    StageRow(6, 1280, 1, 1),
)
STEM_CHANNELS = 32
WIDTH_DIVISOR = 8  # every scaled width is a multiple of 8
HIDDEN_DIVISOR = 16  # a bottleneck widened to C_out / 6 is a multiple of 16
HIDDEN_MIN_RATIO = 6  # the bottleneck is never narrower than C_out / 6
LAST_STAGE_FLOOR = 1280  # the last stage keeps 1280 channels below width 1.0
DROPOUT = 0.2  # before the classifier (train time only)
LAYOUTS = ("authors", "d-li14")


def scaled_width(channels: int, width_mult: float, *, last: bool = False) -> int:
    """A width of the table at ``width_mult`` (the last stage keeps :data:`LAST_STAGE_FLOOR` below 1.0)."""
    if last and width_mult < 1.0:
        return channels
    return make_divisible(channels * width_mult, WIDTH_DIVISOR)


def hidden_width(in_ch: int, out_ch: int, t: int, layout: str = "authors") -> int:
    """Bottleneck width of a block: ``in_ch // t``, widened to ``ceil(out_ch / 6)`` rounded to 16 if narrower
    (the ``authors`` layout; ``d-li14`` keeps ``in_ch // t``)."""
    hidden = in_ch // t
    if layout == "authors" and hidden < out_ch / HIDDEN_MIN_RATIO:
        hidden = make_divisible(math.ceil(out_ch / HIDDEN_MIN_RATIO), HIDDEN_DIVISOR)
    return hidden


@dataclass(frozen=True)
class BlockCfg:
    """One sandglass block, as built.

    Attributes:
        in_ch: Input channels.
        hidden: Bottleneck channels (output of the first pointwise conv).
        out_ch: Output channels.
        stride: Stride (of the last depthwise conv).
        first_dw: Has the leading 3x3 depthwise conv (BN, ReLU6) at the input width.
        last_dw: Has the trailing 3x3 depthwise conv (BN, linear) at the output width.
        residual: Adds (part of) the input to the output.
        row: Index of its row in :data:`TABLE`.
    """

    in_ch: int
    hidden: int
    out_ch: int
    stride: int
    first_dw: bool
    last_dw: bool
    residual: bool
    row: int


def block_table(width_mult: float = 1.0, layout: str = "authors") -> tuple[int, tuple[BlockCfg, ...]]:
    """The stem width and every block of MobileNeXt at ``width_mult`` (see the module docstring for the rules).

    Args:
        width_mult: Width multiplier.
        layout: ``"authors"`` (the authors' network) or ``"d-li14"`` (the paper's Table 1 block everywhere).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown MobileNeXt layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    stem = make_divisible(STEM_CHANNELS * width_mult, WIDTH_DIVISOR)
    in_ch = stem
    blocks: list[BlockCfg] = []
    for r, row in enumerate(TABLE):
        out_ch = scaled_width(row.c, width_mult, last=layout == "authors" and r == len(TABLE) - 1)
        for i in range(row.n):
            stride = row.s if i == 0 else 1
            residual = in_ch == out_ch and stride == 1
            if layout == "d-li14":
                first_dw = last_dw = True
            else:
                # the paper's full block where the shape is kept, in the t = 2 row and in single-block stride-1 rows
                full = residual or row.t == 2 or (row.n == 1 and row.s == 1)
                first_dw, last_dw = full, full or stride == 2
            blocks.append(BlockCfg(in_ch, hidden_width(in_ch, out_ch, row.t, layout), out_ch, stride, first_dw,
                                   last_dw, residual, r))
            in_ch = out_ch
    return stem, tuple(blocks)


@dataclass(frozen=True)
class MobileNeXtCfg:
    """A MobileNeXt variant.

    Attributes:
        name: Variant name.
        width_mult: Width multiplier.
        identity_multiplier: Fraction ``alpha`` of the channels the shortcut adds (the paper's identity tensor
            multiplier; 1.0 for the authors' ImageNet results).
        layout: ``"authors"`` or ``"d-li14"`` (see the module docstring).
    """

    name: str
    width_mult: float
    identity_multiplier: float = 1.0
    layout: str = "authors"

    @property
    def stem(self) -> int:
        return block_table(self.width_mult, self.layout)[0]

    @property
    def blocks(self) -> tuple[BlockCfg, ...]:
        return block_table(self.width_mult, self.layout)[1]


def mobilenext_cfg(width_mult: float, identity_multiplier: float = 1.0, layout: str = "authors") -> MobileNeXtCfg:
    """The configuration of MobileNeXt at ``width_mult``."""
    if not 0.0 <= identity_multiplier <= 1.0:
        raise ValueError(f"identity multiplier must lie in [0, 1], got {identity_multiplier}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown MobileNeXt layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    return MobileNeXtCfg(f"mobilenext-x{width_mult:g}" + ("" if layout == "authors" else f"-{layout}"), width_mult,
                         identity_multiplier, layout)


class SandglassBlock(nn.Module):
    """One sandglass block: [dw3x3-BN-ReLU6] pw-BN pw-BN-ReLU6 [dw3x3/s-BN] (+ identity tensor).

    The layers are one ``nn.Sequential`` named ``conv``, in the authors' order (so that their keys load).

    Args:
        cfg: The block.
        identity_multiplier: Fraction of the output channels the shortcut adds (if ``cfg.residual``).
    """

    def __init__(self, cfg: BlockCfg, identity_multiplier: float = 1.0):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        if cfg.first_dw:
            layers += [*conv_bn_layers(cfg.in_ch, cfg.in_ch, 3, 1, cfg.in_ch), nn.ReLU6(inplace=True)]
        layers += [*conv_bn_layers(cfg.in_ch, cfg.hidden, 1),  # linear bottleneck
                   *conv_bn_layers(cfg.hidden, cfg.out_ch, 1), nn.ReLU6(inplace=True)]
        if cfg.last_dw:
            layers += conv_bn_layers(cfg.out_ch, cfg.out_ch, 3, cfg.stride, cfg.out_ch)
        elif cfg.stride != 1:
            raise ValueError("a sandglass block without its last depthwise conv cannot have a stride")
        self.conv = nn.Sequential(*layers)
        # channels of the identity tensor (int(C / k) for alpha = 1 / k, as the authors' C // k)
        self.identity_channels = int(cfg.out_ch * identity_multiplier + 1e-6) if cfg.residual else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        k = self.identity_channels
        if k == 0:
            return out
        if k == self.cfg.out_ch:
            return out + x
        return torch.cat([out[:, :k] + x[:, :k], out[:, k:]], dim=1)

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"{c.in_ch} -> {c.hidden} -> {c.out_ch}, stride={c.stride}, identity={self.identity_channels}"
                + ("" if c.first_dw else ", no first dw") + ("" if c.last_dw else ", no last dw"))


class MobileNeXt(nn.Module):
    """MobileNeXt: 3x3 stride-2 stem conv, the sandglass blocks of :data:`TABLE`, global average pool, linear.

    Args:
        cfg: The variant (see :func:`mobilenext_cfg`).
        num_classes: Classifier outputs.
    """

    def __init__(self, cfg: MobileNeXtCfg, num_classes: int = 1000):
        super().__init__()
        self.cfg = cfg
        stem, blocks = block_table(cfg.width_mult, cfg.layout)
        layers: list[nn.Module] = [nn.Sequential(*conv_bn_layers(3, stem, 3, 2), nn.ReLU6(inplace=True))]
        layers += [SandglassBlock(b, cfg.identity_multiplier) for b in blocks]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = blocks[-1].out_ch
        if cfg.layout == "authors":
            self.classifier: nn.Module = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(self.num_features, num_classes))
        else:
            self.classifier = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def _build(width_mult: float, num_classes: int, identity_multiplier: float) -> MobileNeXt:
    return MobileNeXt(mobilenext_cfg(width_mult, identity_multiplier), num_classes=num_classes)


@register_model(name="mobilenext-x1.0", paper_name="MobileNeXt-x1.0", input_size=224)
def mobilenext_x1_0(num_classes: int = 1000, identity_multiplier: float = 1.0) -> MobileNeXt:
    """MobileNeXt-1.0 (Zhou et al., ECCV 2020): sandglass blocks, 300M FLOPs / 3.5M params (authors)."""
    return _build(1.0, num_classes, identity_multiplier)


@register_model(name="mobilenext-x1.4", paper_name="MobileNeXt-x1.4", input_size=224)
def mobilenext_x1_4(num_classes: int = 1000, identity_multiplier: float = 1.0) -> MobileNeXt:
    """MobileNeXt-1.4 (Zhou et al., ECCV 2020): sandglass blocks, 590M FLOPs / 6.1M params (authors)."""
    return _build(1.4, num_classes, identity_multiplier)


def mobilenext_dli14(width_mult: float = 1.0, num_classes: int = 1000) -> MobileNeXt:
    """The network of ``d-li14/mobilenext.pytorch`` (not registered: it is not the authors' network, see above)."""
    return MobileNeXt(mobilenext_cfg(width_mult, layout="d-li14"), num_classes=num_classes)
