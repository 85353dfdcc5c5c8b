"""Accuracy on the user's own images: the image folder and its labels (:mod:`~mobileone_bench.evaluation.data`),
the model's own preprocessing (:mod:`~mobileone_bench.evaluation.preprocess`) and top-1/top-5 with their binomial
intervals (:mod:`~mobileone_bench.evaluation.metrics`).

This package sits beside ``formats/`` and ``devices/`` (ExecuTorch's int8 calibration reads images through it); it
knows no runtime and makes no record: :mod:`mobileone_bench.pipeline.evaluate` runs each artifact and records what
it measured. Nothing here downloads anything: a folder that is missing or malformed is one
:class:`~mobileone_bench.errors.UsageError` line.
"""

from __future__ import annotations

__all__: list[str] = []
