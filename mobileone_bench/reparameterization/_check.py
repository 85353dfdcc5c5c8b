"""The equivalence check: the inference-time model must compute what the train-time model computes, within a
tolerance that follows the numerics (:func:`verify_reparam` explains it); :func:`compare_outputs` is the tool's single
criterion, used for the export parity checks too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from mobileone_bench.errors import ReparamMismatchError

__all__ = [
    "verify_reparam",
    "VerifyResult",
    "compare_outputs",
    "rounding_error",
    "ROUNDING_FACTOR",
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
]


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
