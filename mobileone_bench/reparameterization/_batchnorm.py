"""The one conv-BN folding helper of the tool, and the calibration that gives random BatchNorms realistic statistics.

* :func:`fold_conv_bn` (Section 3.3: ``W' = W * gamma / sigma``, ``b' = (b - mu) * gamma / sigma + beta``): every
  block that fuses branches uses it (MobileOne's, the classifier heads of MicroNet and Mobile-Former through
  :func:`mobileone_bench.models.archs._layers.fold_linear_bn`), and so does the model-level walk.
* :func:`calibrate_bn`: with the default running statistics (mean 0, variance 1) activations of a deep random network
  grow to 1e15 and any comparison is meaningless; a few train-mode passes over random data fix that.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["fold_conv_bn", "calibrate_bn"]


def fold_conv_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: _BatchNorm,
                 channels: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm into the convolution (or identity kernel) that feeds it.

    Args:
        weight: Conv kernel ``(C_out, C_in / groups, K, K)``.
        bias: Conv bias or ``None``.
        bn: The BatchNorm that follows; its running statistics are used.
        channels: The BN channels this convolution produces, when it produces only some of them (one of the
            convolutions whose outputs are concatenated before the BN); all of them by default.

    Returns:
        ``(kernel, bias)`` of the equivalent single convolution (plain tensors, not parameters).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    sl = channels if channels is not None else slice(None)
    gamma = bn.weight[sl] if bn.weight is not None else None
    beta = bn.bias[sl] if bn.bias is not None else None
    w, b = fuse_conv_bn_weights(weight, bias, bn.running_mean[sl], bn.running_var[sl], bn.eps, gamma, beta)
    return w.detach(), b.detach()


@torch.no_grad()
def calibrate_bn(model: nn.Module, input_shape: tuple[int, ...], steps: int = 4, batch: int = 8,
                 seed: int = 0) -> int:
    """Give every BatchNorm realistic running statistics by a few train-mode passes over random data.

    Only BatchNorm layers switch to train mode (dropout and the like stay off); running statistics become the exact
    average over the passes. The model is left in eval mode.

    Args:
        model: The model (modified in place).
        input_shape: NCHW shape of one input; the batch dimension is replaced by ``batch``.
        steps: Number of forward passes.
        batch: Batch size of each pass (BatchNorm needs more than one value per channel).
        seed: Seed of the random inputs.

    Returns:
        The number of BatchNorm layers calibrated.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    model.eval()
    saved = []
    for bn in bns:
        saved.append(bn.momentum)
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: exact mean over the passes
        bn.train()
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, *tuple(input_shape)[1:])
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        for _ in range(steps):
            model(torch.randn(shape, generator=gen).to(device))
    finally:
        for bn, mom in zip(bns, saved):
            bn.momentum = mom
        model.eval()
    return len(bns)
