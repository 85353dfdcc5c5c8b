"""The model-level walk: re-parameterize every branchy block, then fold each BatchNorm into the convolution before it.

Blocks that own a ``reparameterize()`` (ours, timm's MobileOne / RepVGG / FastViT...), ``switch_to_deploy()`` or
``fuse()`` are converted (timm's conventions, through timm's own walker); then every BatchNorm that directly follows a
convolution is folded into it (plain CNNs such as MobileNets, and the convolutions inside containers such as timm's
``MixedConv2d``), found on the data flow of one recorded forward pass (:class:`Dataflow`) so that only true
conv -> BN edges are folded, in models FX cannot trace too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mobileone_bench.reparameterization._batchnorm import fold_conv_bn
from mobileone_bench.reparameterization._dataflow import Dataflow

__all__ = ["reparameterize", "reparameterize_model", "ReparamResult", "count_branchy_modules", "DEFAULT_INPUT_SHAPE"]

_HOOKS = ("reparameterize", "switch_to_deploy", "fuse")


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


@torch.no_grad()
def _fold_batchnorms(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, str]]:
    """Fold every BatchNorm whose input is the output of convolutions and of nothing else.

    Two patterns are folded: ``conv -> BN`` and ``cat([conv_1, ..., conv_k], dim=1) -> BN`` (timm's
    ``MixedConv2d`` and any other container that concatenates convolutions along channels); each conv must run once
    and its output feed nothing but the BN (or the concatenation). The data flow comes from one recorded forward
    pass (:class:`Dataflow`), so models that FX cannot trace are folded too.

    Returns:
        ``(folded, unfolded)``: the number of BN layers folded, and for each BN left, why.
    """
    bns = {name: m for name, m in model.named_modules() if isinstance(m, _BatchNorm)}
    if not bns:
        return 0, {}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    flow = Dataflow(model)
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
