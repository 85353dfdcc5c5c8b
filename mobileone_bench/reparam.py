"""Re-parameterization: turn a train-time model into its inference-time form, and prove it computes the same thing.

* :func:`fold_conv_bn` is the one conv-BN folding helper of the tool (Section 3.3:
  ``W' = W * gamma / sigma``, ``b' = (b - mu) * gamma / sigma + beta``); every block that fuses branches uses it.
* :func:`reparameterize` walks a model: blocks that own a ``reparameterize()`` (ours, timm's MobileOne / RepVGG /
  FastViT...), ``switch_to_deploy()`` or ``fuse()`` are converted (timm's conventions, through timm's own walker), then
  every BatchNorm that directly follows a convolution is folded into it (plain CNNs such as MobileNets), found on the
  traced graph so that only true conv -> BN edges are folded.
* :func:`verify_reparam` compares the two models on the same random input and raises
  :class:`~mobileone_bench.errors.ReparamMismatchError` above tolerance.
* :func:`calibrate_bn` gives a randomly initialised model realistic BatchNorm statistics first: with the default
  running statistics (mean 0, variance 1) activations of a deep random network grow to 1e15 and any comparison is
  meaningless.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

from mobileone_bench.errors import ReparamMismatchError

__all__ = [
    "fold_conv_bn",
    "calibrate_bn",
    "reparameterize",
    "reparameterize_model",
    "ReparamResult",
    "verify_reparam",
    "VerifyResult",
    "count_branchy_modules",
]

_HOOKS = ("reparameterize", "switch_to_deploy", "fuse")


def fold_conv_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm into the convolution (or identity kernel) that feeds it.

    Args:
        weight: Conv kernel ``(C_out, C_in / groups, K, K)``.
        bias: Conv bias or ``None``.
        bn: The BatchNorm that follows; its running statistics are used.

    Returns:
        ``(kernel, bias)`` of the equivalent single convolution (plain tensors, not parameters).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    w, b = fuse_conv_bn_weights(weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
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


def count_branchy_modules(model: nn.Module) -> int:
    """How many sub-modules own a re-parameterization hook (``reparameterize``/``switch_to_deploy``/``fuse``)."""
    return sum(1 for name, m in model.named_modules() if name and any(callable(getattr(m, h, None)) for h in _HOOKS))


@dataclass(frozen=True)
class ReparamResult:
    """What :func:`reparameterize_model` did.

    Attributes:
        model: The inference-time model.
        blocks_reparameterized: Sub-modules that owned a re-parameterization hook.
        bn_folded: BatchNorm layers folded into the preceding convolution.
        bn_remaining: BatchNorm layers left (no preceding conv, shared, or the graph could not be traced).
        note: Why folding was skipped, if it was.
    """

    model: nn.Module
    blocks_reparameterized: int
    bn_folded: int
    bn_remaining: int
    note: str = ""

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("model")
        return d


def reparameterize(model: nn.Module, *, inplace: bool = False, fold_bn: bool = True) -> nn.Module:
    """The inference-time form of ``model`` (see :func:`reparameterize_model` for the details)."""
    return reparameterize_model(model, inplace=inplace, fold_bn=fold_bn).model


def reparameterize_model(model: nn.Module, *, inplace: bool = False, fold_bn: bool = True) -> ReparamResult:
    """Re-parameterize every branchy block, then fold BatchNorm into preceding convolutions.

    Args:
        model: A train-time model (BN statistics should be realistic, see :func:`calibrate_bn`).
        inplace: Modify ``model`` itself instead of a deep copy.
        fold_bn: Also fold conv -> BN pairs of plain CNNs.

    Returns:
        A :class:`ReparamResult` whose ``model`` is in eval mode.
    """
    from timm.utils.model import reparameterize_model as timm_reparameterize

    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    n_blocks = count_branchy_modules(model)
    if n_blocks:
        with torch.no_grad():
            model = timm_reparameterize(model, inplace=True)
    folded, note = (_fold_batchnorms(model) if fold_bn else (0, "BN folding not requested"))
    remaining = sum(1 for m in model.modules() if isinstance(m, _BatchNorm))
    model.eval()
    return ReparamResult(model, n_blocks, folded, remaining, note)


class _LeafBNTracer(fx.Tracer):
    """Traces a model keeping every BatchNorm (and timm's untraceable layers) as a leaf call."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _BatchNorm):
            return True
        try:
            from timm.layers import is_notrace_module

            if is_notrace_module(m):
                return True
        except ImportError:  # pragma: no cover - timm is a dependency
            pass
        return super().is_leaf_module(m, qualname)


def _bn_replacement(bn: _BatchNorm) -> nn.Module | None:
    """What replaces a folded BN: nothing for a plain BN, its drop + act for timm's BatchNormAct2d."""
    if type(bn) in (nn.BatchNorm2d, nn.SyncBatchNorm):
        return nn.Identity()
    act, drop = getattr(bn, "act", None), getattr(bn, "drop", None)
    if type(bn).__name__ == "BatchNormAct2d" and isinstance(act, nn.Module):
        return nn.Sequential(drop if isinstance(drop, nn.Module) else nn.Identity(), act)
    return None  # an unknown BN subclass may do more than normalise: leave it


def _set_submodule(root: nn.Module, qualname: str, new: nn.Module) -> None:
    parent_name, _, child = qualname.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


@torch.no_grad()
def _fold_batchnorms(model: nn.Module) -> tuple[int, str]:
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not bns:
        return 0, ""
    try:
        graph = _LeafBNTracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: do not fold, say why
        return 0, f"BN not folded (graph not traceable: {type(exc).__name__})"
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    folded = 0
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BatchNorm):
            continue
        bn = modules[node.target]
        src = node.args[0] if node.args else None
        if not isinstance(src, fx.Node) or src.op != "call_module":
            continue
        conv = modules.get(src.target)
        if type(conv) is not nn.Conv2d or len(src.users) != 1:
            continue
        if calls.get(src.target) != 1 or calls.get(node.target) != 1 or not bn.track_running_stats:
            continue
        replacement = _bn_replacement(bn)
        if replacement is None or bn.num_features != conv.out_channels:
            continue
        w, b = fold_conv_bn(conv.weight, conv.bias, bn)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
        fused = fused.to(w.device, w.dtype)
        fused.weight.copy_(w)
        fused.bias.copy_(b)
        _set_submodule(model, src.target, fused)
        _set_submodule(model, node.target, replacement)
        folded += 1
    return folded, ""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of comparing two models on the same input.

    Attributes:
        max_abs_err: Largest absolute difference of the outputs.
        max_rel_err: ``max_abs_err`` divided by the largest absolute reference output.
        ref_max_abs: Largest absolute reference output (a sanity figure: it should not be 1e15).
        atol: Absolute tolerance used.
        rtol: Relative tolerance used.
        passed: ``max_abs_err <= atol + rtol * ref_max_abs``.
    """

    max_abs_err: float
    max_rel_err: float
    ref_max_abs: float
    atol: float
    rtol: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_outputs(ref: torch.Tensor, out: torch.Tensor, *, atol: float, rtol: float) -> VerifyResult:
    """Compare two output tensors with the tool's single criterion (used for reparam and export parity)."""
    ref = ref.detach().double().cpu()
    out = out.detach().double().cpu().reshape(ref.shape)
    diff = (ref - out).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    finite = bool(torch.isfinite(out).all() and torch.isfinite(ref).all())
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    return VerifyResult(max_abs, rel, scale, atol, rtol, finite and max_abs <= atol + rtol * scale)


@torch.no_grad()
def verify_reparam(
    train_model: nn.Module,
    infer_model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
    raise_on_mismatch: bool = True,
) -> VerifyResult:
    """Check that the re-parameterized model computes what the train-time model computes.

    Args:
        train_model: Train-time model (eval mode is used).
        infer_model: Its re-parameterized form.
        input_shape: NCHW input shape.
        atol: Absolute tolerance.
        rtol: Tolerance relative to the largest absolute output.
        seed: Seed of the random input.
        raise_on_mismatch: Raise instead of returning a failed result.

    Raises:
        ReparamMismatchError: When the outputs differ beyond tolerance (and ``raise_on_mismatch``).
    """
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(seed))
    train_model.eval()
    infer_model.eval()
    result = compare_outputs(train_model(x), infer_model(x), atol=atol, rtol=rtol)
    if not result.passed and raise_on_mismatch:
        raise ReparamMismatchError(
            f"re-parameterized model differs from the train-time model: max abs error {result.max_abs_err:.3g}, "
            f"relative {result.max_rel_err:.3g} (tolerance {atol:g} + {rtol:g} x {result.ref_max_abs:.3g})",
            result.max_abs_err, result.max_rel_err)
    return result
