"""MobileOne (Vasu et al.): S0-S4 from the paper's Table 7 and the micro variants μ0-μ2 from Table 17.

A MobileOne block is a MobileNet-V1 block (3x3 depthwise conv, then 1x1 pointwise conv) in which each of the two
convolutions is a :class:`MobileOneBlock`: at train time ``k`` over-parameterized conv-BN branches, a 1x1 conv-BN
"scale" branch (only when the kernel is larger than 1x1) and a BN-only skip branch (only when input and output shapes
match), summed, then SE (where Table 7 says) and ReLU. :meth:`MobileOneBlock.reparameterize` folds all branches into
one convolution (Section 3.3).

The tables are data below, readable row by row. Two readings of the tables are ours, both forced by the paper's own
figures and by Apple's released checkpoints:

* stage 1's width is ``min(64, 64 * alpha)``: with the uncapped ``64 * alpha`` of Table 7, S1-S4 would not have the
  FLOPs of Table 9 (S1: 846M instead of 825M) and Apple's checkpoints would not load;
* Table 7's stages 4 and 5 (256 x alpha channels, 5 + 5 blocks) are one module, ``stage3``, as in the released
  checkpoints, whose key layout (``stage0``...``stage4``, ``rbr_conv``, ``rbr_scale``, ``rbr_skip``, ``se``,
  ``reparam_conv``, ``linear``) this module uses so that they load without renaming.

The number of over-parameterized branches ``k`` is a training choice that re-parameterization erases; Apple's
checkpoints use a single branch in the stem where Table 7 lists S0 with ``k = 4``. :meth:`MobileOneBlock.set_num_branches`
lets the checkpoint loader build whatever a checkpoint holds.

Checkpoints: this module registers MobileOne's layouts with the loader (:mod:`mobileone_bench.models.checkpoints`):
timm's key names, renamed by :func:`timm_to_apple_mobileone` (the table :data:`TIMM_RENAMES`), and the branch
counts of a file, applied by :func:`fit_branch_counts`. The squeeze-excite layer is the shared
:class:`~mobileone_bench.models.archs._layers.SqueezeExcite`, re-exported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from mobileone_bench.models.archs._layers import SqueezeExcite
from mobileone_bench.models.checkpoints import register_layout_adapter
from mobileone_bench.models.registry import register_model

__all__ = [
    "ConvBN",
    "SqueezeExcite",
    "MobileOneBlock",
    "MobileOne",
    "StageCfg",
    "MobileOneCfg",
    "TABLE7",
    "TABLE17",
    "mobileone_cfg",
    "TIMM_RENAMES",
    "timm_to_apple_mobileone",
    "fit_branch_counts",
]


class ConvBN(nn.Sequential):
    """Convolution without bias followed by BatchNorm (the unit of every train-time branch)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups,
                                          bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_ch))


class MobileOneBlock(nn.Module):
    """One re-parameterizable convolution of MobileOne (Figure 3 of the paper).

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        kernel_size: 3 for the depthwise (and stem) convolution, 1 for the pointwise one.
        stride: Convolution stride.
        groups: ``in_ch`` for depthwise, 1 otherwise.
        num_branches: Trivial over-parameterization factor ``k``.
        use_se: Squeeze-Excite before the activation (SE-ReLU).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 num_branches: int = 1, use_se: bool = False):
        super().__init__()
        if num_branches < 1:
            raise ValueError("a MobileOne block needs at least one conv branch")
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.stride, self.groups = stride, groups
        self.se = SqueezeExcite(out_ch) if use_se else nn.Identity()
        self.activation = nn.ReLU()
        self.reparam_conv: nn.Conv2d | None = None
        self.rbr_skip = nn.BatchNorm2d(in_ch) if in_ch == out_ch and stride == 1 else None
        self.rbr_scale = ConvBN(in_ch, out_ch, 1, stride, groups) if kernel_size > 1 else None
        self.rbr_conv = nn.ModuleList()
        self.set_num_branches(num_branches)

    @property
    def num_branches(self) -> int:
        return len(self.rbr_conv) if self.rbr_conv is not None else 0

    def set_num_branches(self, k: int) -> None:
        """Rebuild the list of over-parameterized branches with ``k`` fresh conv-BN branches."""
        if self.reparam_conv is not None:
            raise RuntimeError("block is already re-parameterized")
        self.rbr_conv = nn.ModuleList(
            ConvBN(self.in_ch, self.out_ch, self.kernel_size, self.stride, self.groups) for _ in range(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.activation(self.se(self.reparam_conv(x)))
        out = self.rbr_conv[0](x)
        for branch in self.rbr_conv[1:]:
            out = out + branch(x)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        if self.rbr_skip is not None:
            out = out + self.rbr_skip(x)
        return self.activation(self.se(out))

    def _branches(self) -> Iterator[tuple[torch.Tensor, nn.BatchNorm2d]]:
        """(kernel, BN) of every branch, kernels padded to ``kernel_size`` (Section 3.3)."""
        k = self.kernel_size
        for branch in self.rbr_conv:
            yield branch.conv.weight, branch.bn
        if self.rbr_scale is not None:
            pad = k // 2
            yield nn.functional.pad(self.rbr_scale.conv.weight, [pad, pad, pad, pad]), self.rbr_scale.bn
        if self.rbr_skip is not None:
            # identity as a 1x1 kernel padded with zeros to k x k
            per_group = self.in_ch // self.groups
            ident = torch.zeros(self.in_ch, per_group, k, k, dtype=self.rbr_conv[0].conv.weight.dtype,
                                device=self.rbr_conv[0].conv.weight.device)
            idx = torch.arange(self.in_ch)
            ident[idx, idx % per_group, k // 2, k // 2] = 1.0
            yield ident, self.rbr_skip

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single kernel and bias equivalent to the sum of all branches (BN in eval mode)."""
        from mobileone_bench.reparameterization import fold_conv_bn

        kernel, bias = None, None
        for w, bn in self._branches():
            fw, fb = fold_conv_bn(w, None, bn)
            kernel = fw if kernel is None else kernel + fw
            bias = fb if bias is None else bias + fb
        assert kernel is not None and bias is not None
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches by one convolution with bias (idempotent)."""
        if self.reparam_conv is not None:
            return
        kernel, bias = self.fused_kernel_bias()
        conv = nn.Conv2d(self.in_ch, self.out_ch, self.kernel_size, self.stride, self.kernel_size // 2,
                         groups=self.groups, bias=True).to(kernel.device, kernel.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        self.reparam_conv = conv
        self.rbr_conv = None  # type: ignore[assignment]
        self.rbr_scale = None
        self.rbr_skip = None


@dataclass(frozen=True)
class StageCfg:
    """One row of Table 7 / Table 17 for one variant.

    Attributes:
        blocks: Number of MobileOne blocks (each = depthwise + pointwise MobileOneBlock; the stem is one block).
        stride: Stride of the first block.
        channels: Base channel count, multiplied by ``alpha``.
        alpha: Width multiplier.
        k: Trivial over-parameterization factor.
        se: SE-ReLU instead of ReLU.
    """

    blocks: int
    stride: int
    channels: int
    alpha: float
    k: int
    se: bool = False

    @property
    def width(self) -> int:
        return int(self.channels * self.alpha)


@dataclass(frozen=True)
class MobileOneCfg:
    """A MobileOne variant: the stem row, then the block rows, then the classifier.

    Attributes:
        name: Variant name.
        stages: Table rows; the first is the stem.
        stem_cap: Upper bound of the stem width (the released models use 64).
    """

    name: str
    stages: tuple[StageCfg, ...]
    stem_cap: int | None = 64


# Table 7 layout: (# blocks, stride, base channels) of stages 1-6 (stage 7 = AvgPool, stage 8 = Linear 512 x alpha).
_TABLE7_LAYOUT = ((1, 2, 64), (2, 2, 64), (8, 2, 128), (5, 2, 256), (5, 1, 256), (1, 2, 512))
# Table 7 columns: (alpha, k[, "se"]) of stages 1-6.
TABLE7: dict[str, tuple[tuple, ...]] = {
    "s0": ((0.75, 4), (0.75, 4), (1.0, 4), (1.0, 4), (1.0, 4), (2.0, 4)),
    "s1": ((1.5, 1), (1.5, 1), (1.5, 1), (2.0, 1), (2.0, 1), (2.5, 1)),
    "s2": ((1.5, 1), (1.5, 1), (2.0, 1), (2.5, 1), (2.5, 1), (4.0, 1)),
    "s3": ((2.0, 1), (2.0, 1), (2.5, 1), (3.0, 1), (3.0, 1), (4.0, 1)),
    "s4": ((3.0, 1), (3.0, 1), (3.5, 1), (3.5, 1), (3.5, 1, "se"), (4.0, 1, "se")),
}
# Table 17 layout: (stride, base channels) of stages 1-6.
_TABLE17_LAYOUT = ((2, 64), (2, 64), (2, 128), (2, 256), (1, 256), (2, 512))
# Table 17 columns: (# blocks, alpha, k) of stages 1-6.
TABLE17: dict[str, tuple[tuple, ...]] = {
    "mu0": ((1, 0.75, 3), (2, 0.75, 3), (4, 0.5, 3), (3, 0.5, 3), (3, 0.5, 3), (1, 0.75, 3)),
    "mu1": ((1, 0.75, 2), (2, 0.75, 2), (6, 0.75, 2), (4, 0.75, 2), (4, 0.75, 2), (1, 1.0, 2)),
    "mu2": ((1, 0.75, 2), (2, 0.75, 2), (6, 1.0, 2), (4, 1.0, 2), (4, 1.0, 2), (1, 1.0, 2)),
}
# Which released module (stage0..stage4) each table row belongs to: rows 4 and 5 share ``stage3``.
_ROW_TO_MODULE = (0, 1, 2, 3, 3, 4)


# Not from the paper: the smallest network that still has every kind of block (k > 1, scale and skip branches, SE),
# so that tests and smoke runs of the whole pipeline take seconds.
_TINY = (StageCfg(1, 2, 16, 1.0, 2), StageCfg(1, 2, 16, 1.0, 2), StageCfg(2, 2, 32, 1.0, 2),
         StageCfg(1, 2, 48, 1.0, 2), StageCfg(1, 1, 48, 1.0, 2, True), StageCfg(1, 2, 64, 1.0, 2, True))


def mobileone_cfg(variant: str) -> MobileOneCfg:
    """The configuration of ``s0``..``s4`` (Table 7), ``mu0``..``mu2`` (Table 17) or ``tiny`` (tests)."""
    if variant == "tiny":
        return MobileOneCfg("tiny", _TINY)
    if variant in TABLE7:
        rows = tuple(
            StageCfg(n, s, c, col[0], col[1], len(col) > 2 and col[2] == "se")
            for (n, s, c), col in zip(_TABLE7_LAYOUT, TABLE7[variant]))
    elif variant in TABLE17:
        rows = tuple(StageCfg(n, s, c, a, k) for (s, c), (n, a, k) in zip(_TABLE17_LAYOUT, TABLE17[variant]))
    else:
        raise KeyError(f"unknown MobileOne variant {variant!r}")
    return MobileOneCfg(variant, rows)


class MobileOne(nn.Module):
    """The MobileOne network: stem block, four stages of MobileOne blocks, global average pool, linear classifier.

    Args:
        cfg: The variant (see :func:`mobileone_cfg`).
        num_classes: Classifier outputs.
    """

    def __init__(self, cfg: MobileOneCfg, num_classes: int = 1000):
        super().__init__()
        self.cfg = cfg
        stem = cfg.stages[0]
        in_ch = min(stem.width, cfg.stem_cap) if cfg.stem_cap else stem.width
        self.stage0 = MobileOneBlock(3, in_ch, 3, stem.stride, 1, stem.k, stem.se)
        modules: list[list[nn.Module]] = [[], [], [], []]
        for row, target in zip(cfg.stages[1:], _ROW_TO_MODULE[1:]):
            for i in range(row.blocks):
                stride = row.stride if i == 0 else 1
                out_ch = row.width
                modules[target - 1].append(MobileOneBlock(in_ch, in_ch, 3, stride, in_ch, row.k, row.se))
                modules[target - 1].append(MobileOneBlock(in_ch, out_ch, 1, 1, 1, row.k, row.se))
                in_ch = out_ch
        self.stage1, self.stage2, self.stage3, self.stage4 = (nn.Sequential(*m) for m in modules)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_ch
        self.linear = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage0(x)
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        return self.linear(torch.flatten(self.gap(x), 1))

    def reparameterize(self) -> None:
        """Re-parameterize every block (model-level convenience; :func:`mobileone_bench.reparameterize` walks it)."""
        for m in self.modules():
            if isinstance(m, MobileOneBlock):
                m.reparameterize()


def _build(variant: str, num_classes: int = 1000) -> MobileOne:
    return MobileOne(mobileone_cfg(variant), num_classes=num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-S0")
def mobileone_s0(num_classes: int = 1000) -> MobileOne:
    """MobileOne-S0 (Table 7): widths x0.75/1/1/2, k = 4."""
    return _build("s0", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-S1")
def mobileone_s1(num_classes: int = 1000) -> MobileOne:
    """MobileOne-S1 (Table 7): widths x1.5/1.5/2/2.5, k = 1."""
    return _build("s1", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-S2")
def mobileone_s2(num_classes: int = 1000) -> MobileOne:
    """MobileOne-S2 (Table 7): widths x1.5/2/2.5/4, k = 1."""
    return _build("s2", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-S3")
def mobileone_s3(num_classes: int = 1000) -> MobileOne:
    """MobileOne-S3 (Table 7): widths x2/2.5/3/4, k = 1."""
    return _build("s3", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-S4")
def mobileone_s4(num_classes: int = 1000) -> MobileOne:
    """MobileOne-S4 (Table 7): widths x3/3.5/3.5/4, k = 1, SE-ReLU in the last 6 blocks."""
    return _build("s4", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-μ0")
def mobileone_mu0(num_classes: int = 1000) -> MobileOne:
    """MobileOne-μ0 (Table 17): micro variant, k = 3."""
    return _build("mu0", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-μ1")
def mobileone_mu1(num_classes: int = 1000) -> MobileOne:
    """MobileOne-μ1 (Table 17): micro variant, k = 2."""
    return _build("mu1", num_classes)


@register_model(reparameterizable=True, paper_name="MobileOne-μ2")
def mobileone_mu2(num_classes: int = 1000) -> MobileOne:
    """MobileOne-μ2 (Table 17): micro variant, k = 2."""
    return _build("mu2", num_classes)


@register_model(reparameterizable=True, input_size=64)
def mobileone_tiny(num_classes: int = 1000) -> MobileOne:
    """A tiny MobileOne (not from the paper) with every block type, for smoke tests of the whole pipeline."""
    return _build("tiny", num_classes)


# ------------------------------------------------------------------------------------------------- checkpoints

#: timm's MobileOne key names -> Apple's released layout (the one this module builds), applied in order.
TIMM_RENAMES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^stem\."), "stage0."),
    (re.compile(r"^stages\.(\d+)\."), lambda m: f"stage{int(m.group(1)) + 1}."),
    (re.compile(r"\.conv_kxk\."), ".rbr_conv."),
    (re.compile(r"\.conv_scale\."), ".rbr_scale."),
    (re.compile(r"\.identity\."), ".rbr_skip."),
    (re.compile(r"\.attn\.fc1\."), ".se.reduce."),
    (re.compile(r"\.attn\.fc2\."), ".se.expand."),
    (re.compile(r"^head\.fc\."), "linear."),
)


def timm_to_apple_mobileone(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename timm's MobileOne keys to Apple's released layout (one-to-one)."""
    out = {}
    for k, v in state.items():
        for pattern, repl in TIMM_RENAMES:
            k = pattern.sub(repl, k)
        out[k] = v
    return out


def fit_branch_counts(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Give every (unfused) MobileOne block of ``model`` the number of over-parameterized branches ``state`` holds."""
    for name, block in model.named_modules():
        if not isinstance(block, MobileOneBlock) or block.reparam_conv is not None:
            continue
        prefix = f"{name}.rbr_conv." if name else "rbr_conv."
        idx = {int(k[len(prefix):].split(".", 1)[0]) for k in state if k.startswith(prefix)}
        if idx and len(idx) != block.num_branches:
            block.set_num_branches(len(idx))


register_layout_adapter(MobileOne, from_timm=timm_to_apple_mobileone, fit=fit_branch_counts)
