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

The package is split by idea: ``_batchnorm`` (folding, calibration), ``_dataflow`` (the recorded forward pass),
``_walk`` (the model-level walk), ``_check`` (the equivalence check and its tolerance) and ``_save`` (writing the
weights); every public name is imported from here. It imports nothing of the package but
:mod:`~mobileone_bench.errors` (the model families import it, never the reverse).
:func:`mobileone_bench.api.reparam` is the whole step for a model name.
"""

from mobileone_bench.reparameterization._batchnorm import calibrate_bn, fold_conv_bn
from mobileone_bench.reparameterization._check import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    ROUNDING_FACTOR,
    VerifyResult,
    compare_outputs,
    rounding_error,
    verify_reparam,
)
from mobileone_bench.reparameterization._save import check_save_path, save_state_dict
from mobileone_bench.reparameterization._walk import (
    DEFAULT_INPUT_SHAPE,
    ReparamResult,
    count_branchy_modules,
    reparameterize,
    reparameterize_model,
)

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
    "DEFAULT_INPUT_SHAPE",
]
