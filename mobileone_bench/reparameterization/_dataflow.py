"""The data flow of one forward pass, recorded at the level of ATen ops and of modules (for BatchNorm folding)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["Dataflow"]


class Dataflow:
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
