"""Export formats: one module per format, each behind the same small interface.

A format is described cheaply by a :class:`FormatSpec` (name, file suffix, precisions, what it needs); its
implementation (``mobileone_bench.formats.<name>``) is imported only when used, so a missing optional library is a
clear error naming the extra to install, never a crash when the tool starts.

Every format module provides ``export(prepared, workdir, options, context) -> FormatOutput`` (see
:mod:`mobileone_bench.formats._base`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mobileone_bench.errors import UsageError, require_modules

__all__ = ["FormatSpec", "FORMATS", "parse_formats", "get_format", "check_format_available", "load_format"]


@dataclass(frozen=True)
class FormatSpec:
    """What the tool knows about an export format before importing anything.

    Attributes:
        name: ``onnx``, ``coreml``, ``tensorrt`` or ``executorch``.
        suffix: Suffix of the main artifact file (Core ML's depends on the model type).
        precisions: Precisions the artifact can carry.
        default_precision: What is used when none is asked for (the paper's setting).
        requires: Python modules the implementation imports.
        install_hint: How to get them.
        needs_gpu: Building the artifact needs an NVIDIA GPU.
        devices: Devices that run this artifact.
        description: One line for help texts.
    """

    name: str
    suffix: str
    precisions: tuple[str, ...]
    default_precision: str
    requires: tuple[str, ...]
    install_hint: str
    needs_gpu: bool
    devices: tuple[str, ...]
    description: str


FORMATS: dict[str, FormatSpec] = {
    "onnx": FormatSpec("onnx", ".onnx", ("fp32",), "fp32", ("onnx", "onnxruntime"),
                       "pip install mobileone-bench (onnx and onnxruntime are core dependencies)", False,
                       ("cpu", "gpu"), "ONNX graph, static 1x3xHxW input (optional dynamic batch), checked with "
                                       "onnx.checker and onnxruntime"),
    "coreml": FormatSpec("coreml", ".mlpackage", ("fp16", "fp32"), "fp16", ("coremltools",),
                         "pip install coremltools", False, ("iphone", "mac"),
                         "Core ML ML program (.mlpackage) or neural network (.mlmodel)"),
    "tensorrt": FormatSpec("tensorrt", ".engine", ("fp16", "fp32"), "fp16", ("tensorrt",),
                           "pip install 'mobileone-bench[tensorrt]' on a Linux or Windows machine with an NVIDIA GPU "
                           "and CUDA", True, ("gpu",),
                           "TensorRT engine built from the ONNX artifact (fp16, batch 1, as the paper)"),
    "executorch": FormatSpec("executorch", ".pte", ("fp32", "int8"), "fp32", ("executorch",),
                             "pip install 'mobileone-bench[executorch]'", False, ("cpu",),
                             "ExecuTorch program (.pte) delegated to XNNPACK, the CPU backend of phones; fp32, or "
                             "int8 by post-training static quantization"),
}


def get_format(name: str) -> FormatSpec:
    key = name.strip().lower().replace("-", "")
    aliases = {"trt": "tensorrt", "mlpackage": "coreml", "mlmodel": "coreml", "coremltools": "coreml",
               "pte": "executorch", "xnnpack": "executorch"}
    key = aliases.get(key, key)
    if key not in FORMATS:
        raise UsageError(f"unknown export format {name!r}; choose from {', '.join(FORMATS)}")
    return FORMATS[key]


def parse_formats(text: str | list[str] | tuple[str, ...]) -> list[FormatSpec]:
    """``"onnx,coreml"`` (or a list) -> format specs, in order, without duplicates."""
    items = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    out: list[FormatSpec] = []
    for item in items:
        if item.strip():
            spec = get_format(item)
            if spec not in out:
                out.append(spec)
    if not out:
        raise UsageError(f"name at least one export format ({', '.join(FORMATS)})")
    return out


def check_format_available(spec: FormatSpec) -> None:
    """Raise :class:`MissingDependencyError` (naming the extra) when a format's libraries are missing."""
    require_modules(spec.requires, f"the {spec.name} exporter", spec.install_hint)


def load_format(spec: FormatSpec) -> Any:
    """Import a format's implementation module."""
    check_format_available(spec)
    return importlib.import_module(f"mobileone_bench.formats.{spec.name}")
