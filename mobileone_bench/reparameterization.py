"""Re-parameterization: turn a train-time model into its inference-time form, and prove it computes the same thing.

* :func:`fold_conv_bn` is the one conv-BN folding helper of the tool (Section 3.3:
  ``W' = W * gamma / sigma``, ``b' = (b - mu) * gamma / sigma + beta``); every block that fuses branches uses it.
* :func:`reparameterize` walks a model: blocks that own a ``reparameterize()`` (ours, timm's MobileOne / RepVGG /
  FastViT...), ``switch_to_deploy()`` or ``fuse()`` are converted (timm's conventions, through timm's own walker), then
  every BatchNorm that directly follows a convolution is folded into it (plain CNNs such as MobileNets, and the
  convolutions inside containers such as timm's ``MixedConv2d``), found on the data flow of one recorded forward pass
  so that only true conv -> BN edges are folded, in models FX cannot trace too.
* :func:`verify_reparam` compares the two models on the same random input and raises
  :class:`~mobileone_bench.errors.ReparamMismatchError` above tolerance. The tolerance follows the numerics: beyond
  a fixed allowance it grants a multiple of the train-time model's own fp32 rounding error on that input, measured
  against a float64 evaluation (:func:`rounding_error`), so that a correct fusion passes at every input size and
  depth, and a wrong one (a BatchNorm folded with the wrong epsilon, a branch left out) still fails by orders of
  magnitude.
* :func:`check_save_path` and :func:`save_state_dict` write the inference-time weights, the path checked before any
  work (one clear line for a read-only folder or a parent that is a file).
* :func:`calibrate_bn` gives a randomly initialised model realistic BatchNorm statistics first: with the default
  running statistics (mean 0, variance 1) activations of a deep random network grow to 1e15 and any comparison is
  meaningless.

Calling this module, ``mobileone_bench.reparameterization(...)``, is :func:`mobileone_bench.api.reparam`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mobileone_bench.errors import ReparamMismatchError, UsageError

__all__ = [
    "fold_conv_bn",
    "calibrate_bn",
    "reparameterize",
    "reparameterize_model",
    "ReparamResult",
    "verify_reparam",
    "VerifyResult",
    "compare_outputs",
    "rounding_error",
    "ROUNDING_FACTOR",
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "count_branchy_modules",
    "check_save_path",
    "save_state_dict",
]

_HOOKS = ("reparameterize", "switch_to_deploy", "fuse")


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
        bn_remaining: BatchNorm layers left in the inference-time model.
        note: How many BN layers were left and why (e.g. ``"1 BN not folded: 1 does not follow a convolution (bn)"``).
        bn_unfolded: For every BN left, its qualified name and the reason.
    """

    model: nn.Module
    blocks_reparameterized: int
    bn_folded: int
    bn_remaining: int
    note: str = ""
    bn_unfolded: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The counts and the note, for a record (the per-layer reasons stay in ``bn_unfolded``)."""
        return {"blocks_reparameterized": self.blocks_reparameterized, "bn_folded": self.bn_folded,
                "bn_remaining": self.bn_remaining, "note": self.note}


DEFAULT_INPUT_SHAPE = (1, 3, 224, 224)


def reparameterize(model: nn.Module, *, inplace: bool = False, fold_bn: bool = True,
                   input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE) -> nn.Module:
    """The inference-time form of ``model`` (see :func:`reparameterize_model` for the details)."""
    return reparameterize_model(model, inplace=inplace, fold_bn=fold_bn, input_shape=input_shape).model


def reparameterize_model(model: nn.Module, *, inplace: bool = False, fold_bn: bool = True,
                         input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE) -> ReparamResult:
    """Re-parameterize every branchy block, then fold BatchNorm into preceding convolutions.

    Args:
        model: A train-time model (BN statistics should be realistic, see :func:`calibrate_bn`).
        inplace: Modify ``model`` itself instead of a deep copy.
        fold_bn: Also fold conv -> BN pairs of plain CNNs.
        input_shape: NCHW shape of the input of the forward pass that finds the conv -> BN edges.

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
    if fold_bn:
        folded, unfolded = _fold_batchnorms(model, tuple(input_shape))
        note = _describe_unfolded(unfolded)
    else:
        folded, unfolded, note = 0, {}, "BN folding not requested"
    remaining = sum(1 for m in model.modules() if isinstance(m, _BatchNorm))
    model.eval()
    return ReparamResult(model, n_blocks, folded, remaining, note, unfolded)


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


# Convolution classes whose forward is linear in ``weight`` and ``bias`` as stored (timm's Conv2dSame pads, then
# convolves with them); a conv that transforms its weights at run time (weight standardisation, CondConv's experts)
# cannot absorb a BatchNorm.
_LINEAR_CONV_FORWARDS = {"Conv2dSame"}


def _is_foldable_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and (
        type(m).forward is nn.Conv2d.forward or type(m).__name__ in _LINEAR_CONV_FORWARDS)


class _Dataflow:
    """One forward pass recorded at the level of ATen ops and of modules: who produced and who consumed each tensor.

    Tensors are identified by Python identity; every tensor seen is kept alive for the pass, so an identity is never
    reused. This works for any model that runs, whether FX can trace it or not.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.uses: dict[int, list[int]] = {}       # tensor id -> indices of the ATen ops that read it
        self.producer: dict[int, int] = {}         # tensor id -> index of the ATen op that wrote it last
        self.ops: list[tuple[Any, tuple[Any, ...]]] = []
        self.module_out: dict[int, list[str]] = {}  # tensor id -> names of the modules that returned it
        self.calls: dict[str, int] = {}
        self.bn_call: dict[str, tuple[int, int, int]] = {}  # bn name -> (input id, first op, end op)
        self._keep: list[Any] = []

    def run(self, example: torch.Tensor) -> Any:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        flow = self

        class _Recorder(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                index = len(flow.ops)
                flow.ops.append((func, args))
                for t in tree_leaves((args, kwargs)):
                    if isinstance(t, torch.Tensor):
                        flow._keep.append(t)
                        flow.uses.setdefault(id(t), []).append(index)
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        flow._keep.append(t)
                        flow.producer[id(t)] = index
                return out

        handles = []
        for name, m in self.model.named_modules():
            if not name:
                continue
            if isinstance(m, _BatchNorm):
                handles.append(m.register_forward_pre_hook(self._bn_pre(name)))
            handles.append(m.register_forward_hook(self._post(name, isinstance(m, _BatchNorm))))
        try:
            with torch.no_grad(), _Recorder():
                out = self.model(example)
        finally:
            for h in handles:
                h.remove()
        return out

    def _bn_pre(self, name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0] if args else None
            self._keep.append(x)
            self.bn_call[name] = (id(x), len(self.ops), -1)
        return hook

    def _post(self, name: str, is_bn: bool):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            if isinstance(out, torch.Tensor):
                self._keep.append(out)
                self.module_out.setdefault(id(out), []).append(name)
            if is_bn and name in self.bn_call:
                x, first, _ = self.bn_call[name]
                self.bn_call[name] = (x, first, len(self.ops))
        return hook


@torch.no_grad()
def _fold_batchnorms(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, str]]:
    """Fold every BatchNorm whose input is the output of convolutions and of nothing else.

    Two patterns are folded: ``conv -> BN`` and ``cat([conv_1, ..., conv_k], dim=1) -> BN`` (timm's
    ``MixedConv2d`` and any other container that concatenates convolutions along channels); each conv must run once
    and its output feed nothing but the BN (or the concatenation). The data flow comes from one recorded forward
    pass (:class:`_Dataflow`), so models that FX cannot trace are folded too.

    Returns:
        ``(folded, unfolded)``: the number of BN layers folded, and for each BN left, why.
    """
    bns = {name: m for name, m in model.named_modules() if isinstance(m, _BatchNorm)}
    if not bns:
        return 0, {}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    flow = _Dataflow(model)
    try:
        out = flow.run(torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0)).to(device))
    except Exception as exc:  # noqa: BLE001 - a model that cannot run here is reported, not folded
        reason = f"model did not run on {tuple(input_shape)}: {type(exc).__name__}"
        return 0, {name: reason for name in bns}
    from torch.utils._pytree import tree_leaves

    outputs = {id(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor)}
    modules = dict(model.named_modules())

    def only_read_by(tensor_id: int, allowed: range) -> bool:
        return tensor_id not in outputs and all(i in allowed for i in flow.uses.get(tensor_id, []))

    def single_conv(tensor_id: int, allowed: range) -> tuple[str | None, str]:
        names = [n for n in flow.module_out.get(tensor_id, []) if _is_foldable_conv(modules[n])]
        if not names:
            convs = [n for n in flow.module_out.get(tensor_id, []) if isinstance(modules[n], nn.Conv2d)]
            return None, (f"follows a {type(modules[convs[0]]).__name__}, which transforms its weights at run time"
                          if convs else "does not follow a convolution")
        name = names[0]
        if flow.calls.get(name, 0) != 1:
            return None, f"its convolution {name} runs {flow.calls.get(name, 0)} times"
        if not only_read_by(tensor_id, allowed):
            return None, f"the output of {name} is used elsewhere too"
        return name, ""

    plan: list[tuple[str, list[tuple[str, slice]]]] = []
    unfolded: dict[str, str] = {}
    for name, bn in bns.items():
        if name not in flow.bn_call or flow.calls.get(name, 0) == 0:
            unfolded[name] = "not used in the forward pass"
            continue
        if flow.calls[name] != 1:
            unfolded[name] = f"runs {flow.calls[name]} times"
            continue
        if _bn_replacement(bn) is None or not bn.track_running_stats or bn.running_mean is None:
            unfolded[name] = f"{type(bn).__name__} is not a plain BatchNorm"
            continue
        x, first, end = flow.bn_call[name]
        inside = range(first, end)
        conv, why = single_conv(x, inside)
        if conv is not None:
            if modules[conv].out_channels != bn.num_features:
                unfolded[name] = "channel count differs from its convolution"
                continue
            plan.append((name, [(conv, slice(0, bn.num_features))]))
            continue
        cat = flow.producer.get(x)
        op = flow.ops[cat] if cat is not None else None
        if op is None or op[0] is not torch.ops.aten.cat.default or not only_read_by(x, inside):
            unfolded[name] = why
            continue
        parts, dim = op[1][0], (op[1][1] if len(op[1]) > 1 else 0)
        if dim not in (1, -3) or any(t.dim() != 4 for t in parts):
            unfolded[name] = "follows a concatenation that is not along channels"
            continue
        pieces, start = [], 0
        for t in parts:
            conv, why = single_conv(id(t), range(cat, cat + 1))
            if conv is None:
                break
            pieces.append((conv, slice(start, start + modules[conv].out_channels)))
            start += modules[conv].out_channels
        if len(pieces) != len(parts) or start != bn.num_features:
            unfolded[name] = f"follows a concatenation of which one input {why}" if why else "channels do not add up"
            continue
        plan.append((name, pieces))

    for name, pieces in plan:
        bn = bns[name]
        for conv_name, channels in pieces:
            conv = modules[conv_name]
            w, b = fold_conv_bn(conv.weight, conv.bias, bn, channels)
            conv.weight = nn.Parameter(w.to(conv.weight.dtype))
            conv.bias = nn.Parameter(b.to(conv.weight.dtype))
        _set_submodule(model, name, _bn_replacement(bn))
    return len(plan), unfolded


def _describe_unfolded(unfolded: dict[str, str]) -> str:
    """``"2 BN left: 1 does not follow a convolution (head.bn); ..."`` or ``""``."""
    if not unfolded:
        return ""
    by_reason: dict[str, list[str]] = {}
    for name, reason in unfolded.items():
        by_reason.setdefault(reason, []).append(name)
    parts = []
    for reason, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        parts.append(f"{len(names)} {reason} ({shown})")
    return f"{len(unfolded)} BN not folded: " + "; ".join(parts)


#: Fixed part of the check's tolerance: absolute, and relative to the largest absolute output of the train-time model.
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
#: The multiple of the train-time model's measured fp32 rounding error (:func:`rounding_error`) that the check
#: allows on top of the fixed part; :func:`verify_reparam` says where 10 comes from.
ROUNDING_FACTOR = 10.0


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of comparing two models on the same input.

    Attributes:
        max_abs_err: Largest absolute difference of the outputs.
        max_rel_err: ``max_abs_err`` divided by the largest absolute reference output.
        ref_max_abs: Largest absolute reference output (a sanity figure: it should not be 1e15).
        atol: Absolute tolerance used.
        rtol: Relative tolerance used.
        passed: ``max_abs_err <= tolerance`` (and both outputs finite).
        rounding: The floating-point rounding error the comparison allows for (for a re-parameterization check: the
            train-time model's own fp32 rounding error on the input, measured against a float64 evaluation);
            ``None`` when it was not needed (the fixed part sufficed), not asked for, or could not be measured.
        rounding_factor: The multiple of ``rounding`` allowed.
        tolerance: The bound applied: ``atol + rtol * ref_max_abs + rounding_factor * rounding``.
    """

    max_abs_err: float
    max_rel_err: float
    ref_max_abs: float
    atol: float
    rtol: float
    passed: bool
    rounding: float | None = None
    rounding_factor: float = 0.0
    tolerance: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe_tolerance(self) -> str:
        """The bound as a sum, e.g. ``"1e-05 + 0.0001 x 1.34 + 10 x 8.15e-05 fp32 rounding = 0.00096"``."""
        text = f"{self.atol:g} + {self.rtol:g} x {self.ref_max_abs:.3g}"
        if self.rounding is not None and self.rounding_factor:
            text += f" + {self.rounding_factor:g} x {self.rounding:.3g} fp32 rounding"
        return f"{text} = {self.tolerance:.3g}"


def compare_outputs(ref: torch.Tensor, out: torch.Tensor, *, atol: float, rtol: float, rounding: float | None = None,
                    rounding_factor: float = 0.0) -> VerifyResult:
    """Compare two output tensors with the tool's single criterion (used for reparam and export parity).

    Passes when both outputs are finite and ``max |ref - out| <= atol + rtol * max |ref| + rounding_factor *
    rounding`` (``rounding`` counts as 0 when ``None``).
    """
    ref = ref.detach().double().cpu()
    out = out.detach().double().cpu().reshape(ref.shape)
    diff = (ref - out).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    finite = bool(torch.isfinite(out).all() and torch.isfinite(ref).all())
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    tolerance = atol + rtol * scale + (rounding_factor * rounding if rounding is not None else 0.0)
    return VerifyResult(max_abs, rel, scale, atol, rtol, finite and max_abs <= tolerance, rounding,
                        rounding_factor if rounding is not None else 0.0, tolerance)


@torch.no_grad()
def rounding_error(model: nn.Module, x: torch.Tensor, out: torch.Tensor | None = None) -> float | None:
    """A model's own floating-point rounding error on ``x``: ``max |model(x) - model_float64(x)|``.

    The model is evaluated as it is (fp32, usually) and as a float64 copy on the same input; in float64 the rounding
    of fp32 is some 1e-9 of itself, so the difference is the error that fp32 accumulation makes in this model at this
    input size: it grows with the depth, the fan-in of every sum and the scale of the activations, which is why no
    fixed tolerance fits every model and input size.

    Args:
        model: The model (not modified: a float64 copy is evaluated; eval mode is assumed).
        x: The input.
        out: ``model(x)`` when already computed.

    Returns:
        The largest absolute difference, or ``None`` when the model cannot run in float64 (an operator without a
        float64 kernel, a forward that fixes its own dtype) or its output is not a single finite tensor.
    """
    if out is None:
        out = model(x)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return None
    try:
        ref = copy.deepcopy(model).double()(x.double())
    except Exception:  # noqa: BLE001 - any model that cannot run in float64 simply has no measured rounding
        return None
    if not isinstance(ref, torch.Tensor) or ref.shape != out.shape:
        return None
    error = float((out.double() - ref).abs().max()) if out.numel() else 0.0
    return error if math.isfinite(error) else None


@torch.no_grad()
def verify_reparam(
    train_model: nn.Module,
    infer_model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    rounding_factor: float = ROUNDING_FACTOR,
    seed: int = 0,
    raise_on_mismatch: bool = True,
) -> VerifyResult:
    """Check that the re-parameterized model computes what the train-time model computes.

    Re-parameterization is exact algebra: what separates the fp32 outputs of a correct fusion is rounding. Writing
    ``t``, ``f`` for the fp32 outputs of the train-time and the fused model and ``T``, ``F`` for the same models
    evaluated in float64, the triangle inequality gives::

        |f - t|  <=  |f - F|  +  |F - T|  +  |T - t|
                     r_infer    fusion     r_train

    For a correct fusion the middle term is only the storage of the fused kernels in fp32 (one rounding per weight).
    All three terms are fp32 roundings of the same function carried through the same network, so they grow together:
    with the depth, the fan-in of every sum, the scale of the activations, and as fewer output positions are
    averaged by the final pooling (which is why MobileOne-S0 failed a fixed tolerance at 64x64 and passed it at 128).
    The check therefore measures ``r_train``, the reference's own rounding error on this very input
    (:func:`rounding_error`), and allows a multiple of it on top of the fixed part::

        max |f - t|  <=  atol + rtol * max|t| + rounding_factor * r_train

    Only the reference is measured: the model under test does not vouch for itself (a wrong fusion can make its own
    activations, and so its own rounding, as large as it likes). ``ROUNDING_FACTOR = 10``: over MobileOne S0-S4,
    mu0-mu2 and tiny, at 8 to 224 pixels and three input seeds, ``|f - t| / r_train`` reached 1.9 at 64 pixels and
    above, 3.4 at 16 and 32 pixels and 6.7 at 8 (a 1x1 last feature map): no correct fusion used more than 0.6 of
    the whole bound. A BatchNorm folded with the wrong epsilon (0, 2e-5 or 1e-3 instead of 1e-5) or a branch left
    out (skip, scale) was 55 times over it at the least (an epsilon of 2e-5 in mobileone_tiny) and mostly thousands.

    The rounding is measured only when the fixed part is exceeded (one float64 forward pass of the train-time
    model); when it cannot be measured (a model without float64 kernels) the fixed part alone decides.

    Args:
        train_model: Train-time model (eval mode is used).
        infer_model: Its re-parameterized form.
        input_shape: NCHW input shape.
        atol: Fixed absolute tolerance.
        rtol: Fixed tolerance relative to the largest absolute output.
        rounding_factor: Multiple of the train-time model's measured rounding error allowed; ``0`` for the fixed
            tolerance alone.
        seed: Seed of the random input.
        raise_on_mismatch: Raise instead of returning a failed result.

    Raises:
        ReparamMismatchError: When the outputs differ beyond tolerance (and ``raise_on_mismatch``).
    """
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(seed))
    train_model.eval()
    infer_model.eval()
    ref, out = train_model(x), infer_model(x)
    result = compare_outputs(ref, out, atol=atol, rtol=rtol)
    if not result.passed and rounding_factor > 0 and math.isfinite(result.max_abs_err):
        rounding = rounding_error(train_model, x, ref)
        if rounding is not None:
            result = compare_outputs(ref, out, atol=atol, rtol=rtol, rounding=rounding,
                                     rounding_factor=rounding_factor)
    if not result.passed and raise_on_mismatch:
        raise ReparamMismatchError(
            f"re-parameterized model differs from the train-time model: max abs error {result.max_abs_err:.3g}, "
            f"relative {result.max_rel_err:.3g} (tolerance {result.describe_tolerance()})",
            result.max_abs_err, result.max_rel_err)
    return result


def check_save_path(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a state dict can be written to ``path``: a real write and remove in the folder
    that will hold it (or in its nearest existing ancestor, the missing folders being created at save time).

    Args:
        path: The file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UsageError: ``path`` is a folder, one of its parents is a file, or the folder cannot be written (read-only
            file system, no permission), in one line that says which.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise UsageError(f"save: expected a file path, got {path!r}")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder; name a file such as {target / 'fused.pth'}")
    folder = target.parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {target}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"cannot write {target}: the file is read-only")
    return target


class _RecordedWrites:
    """A file whose ``write`` remembers the :class:`OSError` it raised: torch's zip writer reports a failed write
    (a full disk) as ``enforce fail at inline_container.cc ... unexpected pos``, without the reason."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def save_state_dict(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model.state_dict()`` to ``path`` with :func:`torch.save`, whole or not at all.

    The path is checked first (:func:`check_save_path`), missing folders are created, and the file is written under
    a temporary name in the same folder and renamed into place, so a failure (a full disk) leaves neither a partial
    file nor the temporary one.

    Raises:
        UsageError: The file cannot be written, in one line that gives the system's reason (never torch's
            ``enforce fail at inline_container.cc``).
    """
    target = check_save_path(path)
    tmp: Path | None = None
    writer: _RecordedWrites | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        with open(tmp, "wb") as handle:
            writer = _RecordedWrites(handle)
            torch.save(model.state_dict(), writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
    except (OSError, RuntimeError) as exc:
        cause: BaseException = writer.error if writer is not None and writer.error is not None else exc
        reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror
                  else " ".join(str(cause).split())[:200])
        raise UsageError(f"cannot write {target}: {reason}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return target
