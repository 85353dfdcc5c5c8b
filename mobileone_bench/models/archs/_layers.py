"""The layers and helpers that more than one family of :mod:`mobileone_bench.models.archs` uses, written once.

* :func:`make_divisible`: MobileNetV2's rounding of a width to a multiple of a divisor (MobileNeXt's widths, the
  squeeze width of MicroNet's Dynamic Shift-Max);
* :func:`conv_bn_layers` and :func:`conv_bn`: a convolution without bias, padded to keep the size ("same" for odd
  kernels), followed by BatchNorm, as a list to splice into a family's ``nn.Sequential`` (the authors' key layouts
  number every layer) or as an ``nn.Sequential`` of its own (keys ``0.weight``, ``1.*``);
* :class:`SqueezeExcite`: MobileOne's Squeeze-and-Excitation, used by the 30-layer ablation network too;
* :func:`fold_linear_bn`: the BatchNorm1d that follows a classifier's Linear (MicroNet, Mobile-Former), folded into
  the Linear with the tool's one folding helper, :func:`mobileone_bench.reparameterization.fold_conv_bn`.

Parameter names and the order in which layers are created (hence the random initial weights for a seed) are those
each family had before these helpers were shared.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["make_divisible", "conv_bn_layers", "conv_bn", "SqueezeExcite", "fold_linear_bn"]

Size = int | tuple[int, int]


def make_divisible(value: float, divisor: int) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never more than 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_layers(in_ch: int, out_ch: int, kernel_size: Size = 1, stride: Size = 1,
                   groups: int = 1) -> list[nn.Module]:
    """``[Conv2d (no bias, padding kernel // 2 on each axis), BatchNorm2d]``.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        kernel_size: Kernel, square (an int) or ``(height, width)``.
        stride: Stride, an int or ``(height, width)``.
        groups: Convolution groups (``in_ch`` for a depthwise convolution).
    """
    padding = (kernel_size[0] // 2, kernel_size[1] // 2) if isinstance(kernel_size, tuple) else kernel_size // 2
    return [nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(out_ch)]


def conv_bn(in_ch: int, out_ch: int, kernel_size: Size = 1, stride: Size = 1, groups: int = 1) -> nn.Sequential:
    """:func:`conv_bn_layers` as one ``nn.Sequential`` (keys ``0.weight``, then the BN's ``1.*``)."""
    return nn.Sequential(*conv_bn_layers(in_ch, out_ch, kernel_size, stride, groups))


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al.): global average pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid gate.

    Args:
        channels: Input (and output) channels.
        rd_ratio: Reduction ratio; MobileOne uses 1/16.
    """

    def __init__(self, channels: int, rd_ratio: float = 0.0625):
        super().__init__()
        hidden = max(1, int(channels * rd_ratio))
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s


@torch.no_grad()
def fold_linear_bn(fc: nn.Linear, bn: nn.BatchNorm1d) -> None:
    """Fold an eval-mode ``BatchNorm1d`` into the ``Linear`` that feeds it, in place (the caller then drops the BN).

    ``W' = W gamma / sigma``, ``b' = (b - mu) gamma / sigma + beta``, with the BN's running statistics.
    """
    from mobileone_bench.reparameterization import fold_conv_bn

    weight, bias = fold_conv_bn(fc.weight, fc.bias, bn)
    fc.weight.copy_(weight)
    if fc.bias is None:
        fc.bias = nn.Parameter(bias.to(fc.weight.dtype))
    else:
        fc.bias.copy_(bias)
