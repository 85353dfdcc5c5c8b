"""Cost proxies besides FLOPs and parameters: activations, memory traffic and depth, of the inference-time model.

The paper argues that FLOPs "do not account for memory access cost and degree of parallelism"; these are the
proxies for those two, counted in one forward pass at the model's input size, on every *compute operator*: a
convolution, a linear layer or matrix product (``addmm``, ``mm``, ``bmm``), or attention (``scaled_dot_product``)
-- the operators FLOPs are counted on (:mod:`mobileone_bench.complexity`). Element-wise operators (activations,
additions, normalisation) are assumed fused into their producer, as inference runtimes do, and count nothing.

* **activations**: elements written by every compute operator (the sum of their output sizes), as fvcore's
  ``ActivationCountAnalysis`` counts them;
* **memory traffic**: bytes moved by the compute operators if nothing stays in cache: every weight read once, every
  activation input read and every output written (``weights + inputs + outputs``, x 4 bytes in fp32, x 2 in fp16).
  A lower bound on no real runtime (caches, tiling and fusions change it) but a count of what a layer must touch;
* **depth**: the longest chain of compute operators from the input to any output, following the data flow (a
  residual block's skip path does not add depth; its longest branch does). A proxy for how sequential the network
  is, i.e. how little parallelism there is between layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Proxies", "count_proxies", "COMPUTE_OPS"]

#: ATen operators counted as compute (the ones FLOPs are counted on).
COMPUTE_OPS = ("convolution", "addmm", "mm", "bmm", "baddbmm", "linear", "scaled_dot_product")


@dataclass(frozen=True)
class Proxies:
    """The proxies of one model at one input shape (see the module docstring).

    Attributes:
        activations: Elements written by compute operators.
        weight_elements: Elements of the weights (and biases) the compute operators read.
        input_elements: Activation elements the compute operators read.
        depth: Longest chain of compute operators.
        compute_ops: Number of compute operator calls.
    """

    activations: int
    weight_elements: int
    input_elements: int
    depth: int
    compute_ops: int

    def memory_bytes(self, bytes_per_element: int) -> int:
        """Memory traffic in bytes at ``bytes_per_element`` (4: fp32, 2: fp16)."""
        return (self.activations + self.weight_elements + self.input_elements) * bytes_per_element

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(activations_m=round(self.activations / 1e6, 4),
                 memory_mb_fp32=round(self.memory_bytes(4) / 1e6, 3),
                 memory_mb_fp16=round(self.memory_bytes(2) / 1e6, 3))
        return d


def _is_compute(func: Any) -> bool:
    name = str(getattr(func, "__name__", func)).split(".")[0]
    return any(name == op or name.startswith(op) or name.startswith(f"_{op}") for op in COMPUTE_OPS)


@torch.no_grad()
def count_proxies(model: nn.Module, input_shape: tuple[int, ...]) -> Proxies:
    """Count :class:`Proxies` of ``model`` (in eval mode, as it is) in one forward pass on zeros of ``input_shape``."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.weak import WeakTensorKeyDictionary

    weights = {t.data_ptr() for t in [*model.parameters(), *model.buffers()] if t.numel()}
    depth_of = WeakTensorKeyDictionary()
    totals = {"activations": 0, "weights": 0, "inputs": 0, "depth": 0, "ops": 0}

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            inputs = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
            depth = max((depth_of.get(t, 0) for t in inputs), default=0)
            if _is_compute(func.overloadpacket):
                totals["ops"] += 1
                depth += 1
                for t in inputs:
                    if t.numel() and t.data_ptr() in weights:
                        totals["weights"] += t.numel()
                    else:
                        totals["inputs"] += t.numel()
                outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
                # attention kernels return (output, log-sum-exp, ...): only the first is an activation
                totals["activations"] += outs[0].numel() if outs else 0
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    depth_of[t] = depth
            totals["depth"] = max(totals["depth"], depth)
            return out

    model.eval()
    x = torch.zeros(tuple(input_shape))
    with Counter():
        model(x)
    return Proxies(totals["activations"], totals["weights"], totals["inputs"], totals["depth"], totals["ops"])
