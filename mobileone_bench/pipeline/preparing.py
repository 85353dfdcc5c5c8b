"""Preparing a model: build it, re-parameterize and verify it, count its params, FLOPs and proxies (profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobileone_bench.pipeline.recording import UNAVAILABLE_PREFIX, append_record, stored, weights_sha

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.store.records import ResultsStore

__all__ = ["Prepared", "prepare", "profile", "PROXY_FIELDS", "profile_identity", "profile_record"]


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

    from mobileone_bench.models import registry
    from mobileone_bench.models.checkpoints import file_sha256
    from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model, verify_reparam

    if isinstance(spec, str):
        spec = registry.resolve(spec)
    shape = registry.input_shape(spec, input_size)
    torch.manual_seed(seed)
    from mobileone_bench.models.factory import create_model

    train = create_model(spec, weights=weights)
    if weights is None:
        calibrate_bn(train, shape, seed=seed)
    if not reparameterize:
        return Prepared(spec, shape, train, train, False, None, None, weights,
                        file_sha256(weights) if weights else None)
    result = reparameterize_model(train, input_shape=shape)
    verify = None
    if check:
        verify = verify_reparam(train, result.model, shape, atol=atol, rtol=rtol, seed=seed).as_dict()
    return Prepared(spec, shape, train, result.model, True, result.summary(), verify, weights,
                    file_sha256(weights) if weights else None)


def profile(prepared: Prepared) -> dict[str, Any]:
    """Params, FLOPs and the other cost proxies (activations, memory traffic, depth: :mod:`mobileone_bench.proxies`)
    of a prepared model's inference-time form, as a flat row."""
    from mobileone_bench.complexity import profile_model
    from mobileone_bench.proxies import count_proxies

    c = profile_model(prepared.model, prepared.input_shape, reparameterized=True)
    p = count_proxies(prepared.model, prepared.input_shape).as_dict()
    return {
        "model": prepared.spec.name,
        "input_shape": list(prepared.input_shape),
        "params": c.params,
        "flops": c.flops,
        "params_m": round(c.params_m, 4),
        "flops_m": round(c.flops_m, 2),
        "reparameterized": prepared.reparameterized,
        "flops_by_op": c.flops_by_op,
        **{k: p[k] for k in PROXY_FIELDS},
    }


#: The proxy fields of a profile row and record besides params and FLOPs.
PROXY_FIELDS = ("activations", "activations_m", "memory_mb_fp32", "memory_mb_fp16", "depth")


def profile_identity(spec: ModelSpec, input_size: tuple[int, int] | None, weights_sha256: str | None) -> dict[str, Any]:
    from mobileone_bench._version import __version__
    from mobileone_bench.models import registry

    return {"model": spec.name, "target": spec.target, "patches": list(spec.patches), "weights_sha256": weights_sha256,
            "input_shape": list(registry.input_shape(spec, input_size)),
            # the counter's version: a profile stored before the proxies existed is made again
            "counter": f"mobileone-bench {__version__} (flops incl. dynamic activations, params, proxies)"}


def profile_record(spec: ModelSpec | str, store: ResultsStore, *, input_size: tuple[int, int] | None = None,
                   weights: str | None = None, force: bool = False,
                   prepared: Prepared | None = None) -> tuple[dict[str, Any], bool]:
    """Profile a model and store a ``profile`` record (skipped if an identical one exists unless ``force``)."""
    from mobileone_bench.models import registry
    from mobileone_bench.environment import collect
    from mobileone_bench.errors import UsageError
    if isinstance(spec, str):
        spec = registry.resolve(spec)
    identity = profile_identity(spec, input_size, weights_sha(weights))
    found = stored(store, "profile", identity, force=force, spec=spec)
    if found is not None:
        return found, True
    fields: dict[str, Any] = {"status": "ok", "error": None, "paper_name": spec.paper_name}
    try:
        if not spec.available:
            raise RuntimeError(f"{UNAVAILABLE_PREFIX}{spec.reason}")
        if prepared is None:
            prepared = prepare(spec, weights=weights, input_size=input_size, check=False)
        row = profile(prepared)
        fields.update(params=row["params"], flops=row["flops"], params_m=row["params_m"], flops_m=row["flops_m"],
                      flops_by_op=row["flops_by_op"], reparameterized=True, reparam=prepared.reparam,
                      **{k: row[k] for k in PROXY_FIELDS})
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        fields.update(status="failed", error=str(exc)[:500])
    env = {k: v for k, v in collect().items() if k in ("env_tool", "env_torch", "env_timm", "env_machine")}
    return append_record(store, "profile", identity, fields, env), False
