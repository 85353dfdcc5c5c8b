"""Parameters and FLOPs, always of the inference-time (re-parameterized) model.

Convention (the paper's, which reports fvcore counts): one multiply-add is one FLOP, i.e. the figure is MACs.
BatchNorm is folded into the convolutions before counting, so it costs nothing; element-wise operations
(activations, additions) are not counted, as in fvcore. Counting uses :class:`torch.utils.flop_counter.FlopCounterMode`,
which reports ``2 x MACs`` for convolutions and matrix products (and attention); we halve it.

One exception, because it is real work that grows with the feature map: the *dynamic* activations (Dynamic ReLU,
Dynamic Shift-Max, Mobile-Former's token dynamic ReLU) multiply every element by input-dependent coefficients, one
multiply(-add) per element per linear piece and mixed copy. Their hyper-functions (linear layers) are counted as
matrix products anyway; their per-element multiplies are counted by the modules themselves: a module with a method
``elementwise_macs(x) -> int`` (``x`` its first input) adds that many to the total, reported as the operator
``dynamic_activation``. This is how MicroNet's and Mobile-Former's authors count them; no static model is affected.

Counting a train-time model is wrong twice over (timm lists MobileOne-S0 at 1.09 GMACs, four times its real cost):
:func:`profile_model` re-parameterizes first unless told the model already is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Complexity", "count_params", "count_flops", "profile_model"]


@dataclass(frozen=True)
class Complexity:
    """Size and cost of a model at one input shape.

    Attributes:
        params: Number of parameters (shared ones once), classifier included.
        flops: Multiply-adds (the paper's "FLOPs").
        input_shape: NCHW shape counted at.
        flops_by_op: Multiply-adds per aten operator (``convolution``, ``addmm``, ...).
    """

    params: int
    flops: int
    input_shape: tuple[int, ...]
    flops_by_op: dict[str, int] = field(default_factory=dict)

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def flops_m(self) -> float:
        return self.flops / 1e6

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["params_m"] = round(self.params_m, 4)
        d["flops_m"] = round(self.flops_m, 2)
        return d


_CPU_SDPA_REGISTERED = False


def _register_cpu_attention() -> None:
    """Teach FlopCounterMode the CPU flash-attention kernel (it knows the CUDA ones), so ViTs count on a CPU too."""
    global _CPU_SDPA_REGISTERED
    if _CPU_SDPA_REGISTERED:
        return
    from torch.utils import flop_counter

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None and op not in flop_counter.flop_registry:

        @flop_counter.register_flop_formula(op, get_raw=True)
        def _cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
            return flop_counter.sdpa_flop_count(query.shape, key.shape, value.shape)

    _CPU_SDPA_REGISTERED = True


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model`` (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, int]]:
    """Multiply-adds of one forward pass at ``input_shape`` (total, and per operator)."""
    from torch.utils.flop_counter import FlopCounterMode

    _register_cpu_attention()
    model.eval()
    x = torch.zeros(tuple(input_shape))
    # FlopCounterMode's module tracker hooks tensors that require grad, which fails under no_grad for models that
    # pass parameters between modules (PiT's class token): count with gradients off, then restore the flags.
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    dynamic = [0]

    def _elementwise(module: nn.Module, args: tuple[Any, ...]) -> None:
        dynamic[0] += int(module.elementwise_macs(args[0]))  # type: ignore[operator]

    hooks = [m.register_forward_pre_hook(_elementwise) for m in model.modules()
             if callable(getattr(m, "elementwise_macs", None))]
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        for p, flag in flags:
            p.requires_grad_(flag)
    by_op: dict[str, int] = {}
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        name = str(op).split(".")[-1] if "." in str(op) else str(op)
        by_op[name] = by_op.get(name, 0) + int(n) // 2
    if dynamic[0]:
        by_op["dynamic_activation"] = dynamic[0]
    return int(counter.get_total_flops()) // 2 + dynamic[0], by_op


def profile_model(model: nn.Module, input_shape: tuple[int, ...], *, reparameterized: bool = False) -> Complexity:
    """Params and FLOPs of the inference-time form of ``model``.

    Args:
        model: A model; re-parameterized (a copy) first unless ``reparameterized`` is true.
        input_shape: NCHW input shape.
        reparameterized: The model is already in inference form.
    """
    if not reparameterized:
        from mobileone_bench.reparameterization import reparameterize

        model = reparameterize(model, input_shape=tuple(input_shape))
    flops, by_op = count_flops(model, input_shape)
    return Complexity(count_params(model), flops, tuple(int(d) for d in input_shape), by_op)
