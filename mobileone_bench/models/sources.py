"""The outside zoos: ``timm:<name>`` and ``torchvision:<name>`` (or ``tv:<name>``), classification models only.

Each zoo is a source of the registry (:func:`~mobileone_bench.models.registry.register_source`): the registry splits
the prefix off a name, and the functions here tell whether the zoo has the model, its default input size, and how to
build it (random weights: nothing is ever downloaded). timm also offers close names when a name without a prefix is
unknown anywhere. Importing this module imports neither timm nor torchvision; resolving a prefixed name does.
"""

from __future__ import annotations

import difflib
import functools
from typing import TYPE_CHECKING, Any

from mobileone_bench.errors import UnknownModelError
from mobileone_bench.models.registry import ModelSpec, register_source

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["TIMM", "TORCHVISION"]

#: The prefixes of the two zoos, which are also the ``source`` of their :class:`ModelSpec`.
TIMM, TORCHVISION = "timm", "torchvision"


@functools.lru_cache(maxsize=1)
def _timm_names() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


@functools.lru_cache(maxsize=1)
def _torchvision_names() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def _timm_spec(model_name: str) -> ModelSpec:
    import timm

    full = f"{TIMM}:{model_name}"
    if not timm.is_model(model_name):
        raise UnknownModelError(full, [f"{TIMM}:{m}" for m in difflib.get_close_matches(model_name, _timm_names(), 3)])
    cfg = timm.get_pretrained_cfg(model_name)
    size = tuple(cfg.input_size[-2:]) if cfg is not None and cfg.input_size else (224, 224)

    def factory(**kwargs: Any) -> "nn.Module":
        import timm as _timm

        return _timm.create_model(model_name, pretrained=False, **kwargs)

    return ModelSpec(full, TIMM, full, size, None, f"timm {model_name}", None, (), None, factory)


def _torchvision_spec(model_name: str) -> ModelSpec:
    full = f"{TORCHVISION}:{model_name}"
    if model_name not in _torchvision_names():
        raise UnknownModelError(
            full, [f"{TORCHVISION}:{m}" for m in difflib.get_close_matches(model_name, _torchvision_names(), 3)])
    import torchvision

    size = (299, 299) if model_name == "inception_v3" else (224, 224)
    try:
        crop = torchvision.models.get_model_weights(model_name).DEFAULT.transforms().crop_size
        size = (int(crop[0]), int(crop[0])) if crop else size
    except Exception:  # noqa: BLE001 - weights metadata is a nicety, not a requirement
        pass

    def factory(**kwargs: Any) -> "nn.Module":
        import torchvision as _tv

        return _tv.models.get_model(model_name, weights=None, **kwargs)

    return ModelSpec(full, TORCHVISION, full, size, None, f"torchvision {model_name}", None, (), None, factory)


register_source(TIMM, _timm_spec, _timm_names, suggest=True)
register_source(TORCHVISION, _torchvision_spec, _torchvision_names, aliases=("tv",))
