"""Building a model: the registry's factory, the paper's benchmarking patches, local weights.

:func:`create_model` is the one place a model is built from a name. It never downloads anything: weights come from a
local file (:mod:`mobileone_bench.models.checkpoints`), otherwise they are random (the caller seeds them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench.errors import ModelUnavailableError
from mobileone_bench.models.registry import ModelSpec, resolve

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["create_model", "PATCHES"]


def _hardswish_to_relu(model: "nn.Module") -> int:
    from torch import nn

    return _swap_modules(model, (nn.Hardswish,), lambda m: nn.ReLU(inplace=True))


def _silu_to_relu(model: "nn.Module") -> int:
    from torch import nn

    return _swap_modules(model, (nn.SiLU,), lambda m: nn.ReLU(inplace=True))


def _swap_modules(model: "nn.Module", types: tuple[type, ...], make: Callable[[Any], Any]) -> int:
    n = 0
    for parent in list(model.modules()):
        for cname, child in list(parent.named_children()):
            if isinstance(child, types):
                setattr(parent, cname, make(child))
                n += 1
    return n


# Patches are the paper's benchmarking protocol for some rows: Appendix B replaces MobileNetV3's hard-swish with
# ReLU; Table 13 replaces TinyNet's swish with ReLU.
PATCHES: dict[str, Callable[["nn.Module"], int]] = {
    "hardswish->relu": _hardswish_to_relu,
    "silu->relu": _silu_to_relu,
}


def create_model(
    name: str | ModelSpec,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> "nn.Module":
    """Build the train-time model of a name, in eval mode, random weights unless ``weights`` names a local file.

    Never downloads anything.

    Args:
        name: A registry name or spec.
        weights: Path of a local checkpoint (see :mod:`mobileone_bench.models.checkpoints` for the layouts accepted).
        num_classes: Classifier size, if not the default 1000.
        **kwargs: Passed to the factory.

    Raises:
        UnknownModelError, ModelUnavailableError, CheckpointError.
    """
    spec = name if isinstance(name, ModelSpec) else resolve(name)
    if not spec.available or spec.factory is None:
        raise ModelUnavailableError(f"{spec.name} cannot be built: {spec.reason}")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = spec.factory(**kwargs)
    for p in spec.patches:
        PATCHES[p](model)
    model.eval()
    if weights is not None:
        from mobileone_bench.models.checkpoints import load_weights

        model = load_weights(model, weights)
    return model
