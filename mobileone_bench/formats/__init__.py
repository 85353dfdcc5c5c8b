"""Export formats: one module per format, each behind the same small interface.

A format is described cheaply by a :class:`FormatSpec` in :data:`FORMATS` (name, file suffix, precisions, what it
needs, the format it builds from, the libraries whose versions its manifest records): plain data, no branch on a
format's name anywhere else. Its implementation (``mobileone_bench.formats.<name>``) is imported only when used, so a
missing optional library is a clear error naming the extra to install, never a crash when the tool starts.

Every format module provides:

* ``Options``: a frozen dataclass derived from :class:`mobileone_bench.formats._base.FormatOptions` holding the
  format's own settings, which validates itself (``validate()``), says what enters the manifest and the cache key
  (``settings()``) and which flags name the artifact's folder (``folder_flags(precision)``);
* ``export(prepared, workdir, precision, options, context) -> FormatOutput`` (see
  :mod:`mobileone_bench.formats._base`), where ``options`` is that ``Options``.

A format module imports its heavy libraries (torch, the converter) inside its functions, so reading its options costs
nothing. Adding a format is one module plus one :data:`FORMATS` entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from mobileone_bench.errors import UsageError, require_modules

__all__ = ["FormatSpec", "FORMATS", "parse_formats", "get_format", "check_format_available", "load_format",
           "format_module"]


@dataclass(frozen=True)
class FormatSpec:
    """What the tool knows about an export format before importing anything.

    Attributes:
        name: ``onnx``, ``coreml``, ``tensorrt`` or ``executorch``; also the name of its module in this package.
        suffix: Suffix of the main artifact file (Core ML's depends on the model type).
        precisions: Precisions the artifact can carry.
        default_precision: What is used when none is asked for (the paper's setting).
        requires: Python modules the implementation imports.
        install_hint: How to get them.
        needs_gpu: Building the artifact needs an NVIDIA GPU.
        devices: Devices that run this artifact.
        description: One line for help texts.
        builds_from: The format whose artifact this one is built from (TensorRT: ``onnx``), exported first and handed
            to :func:`export` in its context as ``context[<name>]`` (path) and ``context["<name>_manifest"]``.
        libraries: Libraries whose installed versions the manifest records (and the cache key holds).
        aliases: Other names accepted on the command line (``trt``, ``pte``...).
        refusal_note: Said after the error when this format is asked for a precision it cannot carry (unless that
            precision belongs to exactly one other format, which the error then names).
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
    builds_from: str | None = None
    libraries: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    refusal_note: str = ""


FORMATS: dict[str, FormatSpec] = {
    "onnx": FormatSpec(
        "onnx", ".onnx", ("fp32",), "fp32", ("onnx", "onnxruntime"),
        "pip install mobileone-bench (onnx and onnxruntime are core dependencies)", False, ("cpu", "gpu"),
        "ONNX graph, static 1x3xHxW input (optional dynamic batch), checked with onnx.checker and onnxruntime",
        libraries=("torch", "onnx", "onnxruntime"),
        refusal_note="fp16 belongs to the format that runs it: TensorRT 10/11 writes its own half-precision ONNX graph, "
                     "Core ML converts from PyTorch at fp16"),
    "coreml": FormatSpec(
        "coreml", ".mlpackage", ("fp16", "fp32"), "fp16", ("coremltools",), "pip install coremltools", False,
        ("iphone", "mac"), "Core ML ML program (.mlpackage) or neural network (.mlmodel)",
        libraries=("torch", "coremltools"), aliases=("mlpackage", "mlmodel", "coremltools")),
    "tensorrt": FormatSpec(
        "tensorrt", ".engine", ("fp16", "fp32"), "fp16", ("tensorrt",),
        "pip install 'mobileone-bench[tensorrt]' on a Linux or Windows machine with an NVIDIA GPU and CUDA", True,
        ("gpu",), "TensorRT engine built from the ONNX artifact (fp16, batch 1, as the paper)",
        builds_from="onnx", libraries=("torch", "onnx", "tensorrt"), aliases=("trt",)),
    "executorch": FormatSpec(
        "executorch", ".pte", ("fp32", "int8"), "fp32", ("executorch",), "pip install 'mobileone-bench[executorch]'",
        False, ("cpu",),
        "ExecuTorch program (.pte) delegated to XNNPACK, the CPU backend of phones; fp32, or int8 by post-training "
        "static quantization",
        libraries=("torch", "executorch", "torchao"), aliases=("pte", "xnnpack")),
}


def get_format(name: str) -> FormatSpec:
    """The format named ``name`` (or one of its aliases; case, spaces and dashes do not matter)."""
    key = name.strip().lower().replace("-", "")
    key = next((spec.name for spec in FORMATS.values() if key in spec.aliases), key)
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


def format_module(spec: FormatSpec) -> ModuleType:
    """A format's module, for its ``Options`` (cheap: its libraries are imported only when it exports)."""
    return importlib.import_module(f"{__name__}.{spec.name}")


def load_format(spec: FormatSpec) -> ModuleType:
    """Import a format's implementation module, after checking its libraries are installed."""
    check_format_available(spec)
    return format_module(spec)
