"""The order of the steps, and nothing else: name -> model -> re-parameterize + verify -> complexity / export /
latency -> records.

Each step hands the next a plain value. The CLI commands call these functions; a sweep over many models records a
failure as data and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mobileone_bench.registry import ModelSpec

__all__ = ["Prepared", "prepare", "profile"]


@dataclass
class Prepared:
    """A model ready for measurement.

    Attributes:
        spec: What the registry knows about it.
        input_shape: NCHW input shape.
        train_model: The model as built (train-time form, eval mode, calibrated BN if randomly initialised).
        model: The inference-time form (re-parameterized unless ``reparameterized`` is false).
        reparameterized: Whether ``model`` is the re-parameterized form.
        reparam: What re-parameterization did (:meth:`ReparamResult.summary`), or ``None``.
        verify: Equivalence check (:meth:`VerifyResult.as_dict`), or ``None`` when not checked.
        weights: Path of the weights file, or ``None`` for random weights.
        weights_sha256: Its hash (``None`` for random weights, which are seeded).
    """

    spec: ModelSpec
    input_shape: tuple[int, ...]
    train_model: Any
    model: Any
    reparameterized: bool
    reparam: dict[str, Any] | None
    verify: dict[str, Any] | None
    weights: str | None
    weights_sha256: str | None


def prepare(
    spec: ModelSpec | str,
    *,
    weights: str | None = None,
    input_size: tuple[int, int] | None = None,
    reparameterize: bool = True,
    check: bool = True,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> Prepared:
    """Build a model and its inference-time form.

    Random weights are seeded (``seed``) and BatchNorm gets realistic statistics (:func:`calibrate_bn`), so that
    numerical checks mean something. With ``check``, the re-parameterized model is compared with the train-time model
    and :class:`~mobileone_bench.errors.ReparamMismatchError` is raised above tolerance.
    """
    import torch

    from mobileone_bench import registry
    from mobileone_bench.checkpoints import file_sha256
    from mobileone_bench.reparam import calibrate_bn, reparameterize_model, verify_reparam

    if isinstance(spec, str):
        spec = registry.resolve(spec)
    shape = registry.input_shape(spec, input_size)
    torch.manual_seed(seed)
    train = registry.create_model(spec, weights=weights)
    if weights is None:
        calibrate_bn(train, shape, seed=seed)
    if not reparameterize:
        return Prepared(spec, shape, train, train, False, None, None, weights,
                        file_sha256(weights) if weights else None)
    result = reparameterize_model(train)
    verify = None
    if check:
        verify = verify_reparam(train, result.model, shape, atol=atol, rtol=rtol, seed=seed).as_dict()
    return Prepared(spec, shape, train, result.model, True, result.summary(), verify, weights,
                    file_sha256(weights) if weights else None)


def profile(prepared: Prepared) -> dict[str, Any]:
    """Params and FLOPs of a prepared model's inference-time form, as a flat row."""
    from mobileone_bench.complexity import profile_model

    c = profile_model(prepared.model, prepared.input_shape, reparameterized=True)
    return {
        "model": prepared.spec.name,
        "input_shape": list(prepared.input_shape),
        "params": c.params,
        "flops": c.flops,
        "params_m": round(c.params_m, 4),
        "flops_m": round(c.flops_m, 2),
        "reparameterized": prepared.reparameterized,
        "flops_by_op": c.flops_by_op,
    }
