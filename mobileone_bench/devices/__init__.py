"""Devices and runtimes: where a model runs, and what runs it.

A :class:`RuntimeSpec` in :data:`RUNTIMES` is the cheap description (device, the artifact it runs, precisions, what it
needs, the libraries whose versions its records carry); its implementation module is imported only when used. Every
host implementation (one module per runtime) provides ``make_runner(...) -> Runner``; every runner is timed by the
same protocol (:mod:`mobileone_bench.devices._protocol`) unless the device needs its own clock (CUDA events), and
every set of samples goes through :func:`mobileone_bench.stats.summarize`. A runtime never imports an exporter: what a
runtime and its format both need lives in a private module here (``_executorch``, ``_tensorrt``).

========  ==============  ===========  ==============  =======================================================
device    runtime         artifact     module          notes
========  ==============  ===========  ==============  =======================================================
cpu       onnxruntime     onnx         onnxruntime     default; threads and graph optimisation level recorded
cpu       torch           (none)       torch_cpu       PyTorch eager on the inference-time model
cpu       executorch      executorch   executorch      ExecuTorch + XNNPACK (fp32 or int8); needs the executorch extra
gpu       tensorrt        tensorrt     tensorrt        default, as the paper (fp16, batch 1), CUDA-graph replay; tensorrt extra
gpu       torch-cuda      (none)       torch_cuda      fp16 copy + CUDA graphs; any NVIDIA machine with PyTorch
iphone    coreml          coreml       apple           the ios_harness app, driven by xcodebuild (macOS + Xcode)
mac       coreml          coreml       apple           the harness's macOS runner, or coremltools on this Mac
========  ==============  ===========  ==============  =======================================================

Adding a runtime is one module here (with ``make_runner``) plus one :data:`RUNTIMES` entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mobileone_bench.devices._cpu import default_threads
from mobileone_bench.devices._cuda import require_cuda
from mobileone_bench.errors import UsageError, require_modules

__all__ = ["RuntimeSpec", "RUNTIMES", "DEVICES", "ORT_SPINNING_DEFAULT", "cpu_runtime_options", "get_runtime",
           "check_runtime_available", "load_runtime", "default_runtime", "runtime_versions", "default_threads",
           "require_cuda"]


@dataclass(frozen=True)
class RuntimeSpec:
    """What the tool knows about a runtime before importing it.

    Attributes:
        name: Runtime name.
        device: ``cpu``, ``gpu``, ``iphone`` or ``mac``.
        artifact: Export format it runs, or ``None`` (runs the PyTorch model).
        precisions: Precisions it can run.
        default_precision: The paper's setting for the device.
        requires: Python modules it imports.
        install_hint: How to get them.
        module: Implementation module under ``mobileone_bench.devices``.
        default_warmup: Untimed runs before timing.
        default_runs: Timed runs.
        default_report: The statistic that is "the latency" (the paper: median on CPU/GPU, min on the iPhone).
        libraries: Libraries whose installed versions a record carries (and its key holds); a ``gpu`` runtime's
            records carry the GPU, its driver and CUDA too.
        job_options: The CPU options (``allow_spinning``, ``graph_optimization``) its records carry.
        fixed_options: Settings its records carry that no option changes.
    """

    name: str
    device: str
    artifact: str | None
    precisions: tuple[str, ...]
    default_precision: str
    requires: tuple[str, ...]
    install_hint: str
    module: str
    default_warmup: int = 10
    default_runs: int = 100
    default_report: str = "median"
    libraries: tuple[str, ...] = ()
    job_options: tuple[str, ...] = ()
    fixed_options: tuple[tuple[str, Any], ...] = ()


RUNTIMES: dict[tuple[str, str], RuntimeSpec] = {}


def _add(spec: RuntimeSpec) -> None:
    RUNTIMES[(spec.device, spec.name)] = spec


_add(RuntimeSpec("onnxruntime", "cpu", "onnx", ("fp32",), "fp32", ("onnxruntime",), "pip install onnxruntime",
                 "onnxruntime", libraries=("onnxruntime", "onnx", "torch"),
                 job_options=("allow_spinning", "graph_optimization")))
# torch's records carry the graph optimisation level too (it has none): their keys have always held it
_add(RuntimeSpec("torch", "cpu", None, ("fp32",), "fp32", ("torch",), "pip install torch", "torch_cpu",
                 libraries=("torch",), job_options=("graph_optimization",)))
# onnxruntime's options do not describe ExecuTorch (and must not enter its record key)
_add(RuntimeSpec("executorch", "cpu", "executorch", ("fp32", "int8"), "fp32", ("executorch",),
                 "pip install 'mobileone-bench[executorch]'", "executorch",
                 libraries=("executorch", "torchao", "torch"), fixed_options=(("delegate", "xnnpack"),)))
_add(RuntimeSpec("tensorrt", "gpu", "tensorrt", ("fp16", "fp32"), "fp16", ("tensorrt",),
                 "pip install 'mobileone-bench[tensorrt]' on a machine with an NVIDIA GPU, or use --runtime torch-cuda",
                 "tensorrt", libraries=("tensorrt", "torch")))
_add(RuntimeSpec("torch-cuda", "gpu", None, ("fp16", "fp32"), "fp16", ("torch",),
                 "a CUDA build of PyTorch on a machine with an NVIDIA GPU", "torch_cuda", libraries=("torch",)))
_add(RuntimeSpec("coreml", "iphone", "coreml", ("fp16", "fp32"), "fp16", ("coremltools",),
                 "macOS with Xcode and a connected iPhone, or --from-report", "apple", 0, 1000, "min",
                 libraries=("coremltools", "torch")))
_add(RuntimeSpec("coreml", "mac", "coreml", ("fp16", "fp32"), "fp16", ("coremltools",),
                 "macOS (Core ML predicts only on Apple platforms)", "apple", 0, 1000, "min",
                 libraries=("coremltools", "torch")))

DEVICES = ("cpu", "gpu", "iphone", "mac")

# onnxruntime's intra-op workers spin (busy-wait) after a run by default. Measured in benchmarks/spinning.py and
# benchmarks/README.md: see the README's Latency section for the figures behind this default.
ORT_SPINNING_DEFAULT = False


def cpu_runtime_options(runtime: str | None, *, graph_optimization: str = "all",
                        allow_spinning: bool = ORT_SPINNING_DEFAULT) -> tuple[tuple[str, Any], ...]:
    """The recorded runtime options of a CPU runtime: the options its table entry names (onnxruntime: optimisation
    level and spin policy) and its fixed settings (executorch: the delegate); none for a runtime the CPU lacks."""
    spec = RUNTIMES.get(("cpu", runtime or default_runtime("cpu")))
    if spec is None:
        return ()
    values = {"allow_spinning": bool(allow_spinning), "graph_optimization": graph_optimization}
    return tuple((name, values[name]) for name in spec.job_options) + spec.fixed_options


def runtime_versions(runtime: str) -> dict[str, Any]:
    """The library versions (and, on a GPU, the GPU, driver and CUDA) that a record of ``runtime`` carries; ``{}``
    for a name no runtime has."""
    from mobileone_bench.environment import gpu_info, library_versions

    spec = next((s for s in RUNTIMES.values() if s.name == runtime), None)
    if spec is None:
        return {}
    libs = library_versions()
    out: dict[str, Any] = {k: libs.get(k) for k in spec.libraries}
    if spec.device == "gpu":
        g = gpu_info()
        out.update(gpu=g.get("gpu"), gpu_driver=g.get("gpu_driver"), cuda=g.get("cuda"))
    return out


_DEFAULTS = {"cpu": "onnxruntime", "gpu": "tensorrt", "iphone": "coreml", "mac": "coreml"}


def default_runtime(device: str) -> str:
    """The runtime a device uses unless one is named (the paper's)."""
    if device not in _DEFAULTS:
        raise UsageError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    return _DEFAULTS[device]


def get_runtime(device: str, runtime: str | None = None) -> RuntimeSpec:
    """The runtime spec for a device (its default runtime unless one is named)."""
    name = runtime or default_runtime(device)
    spec = RUNTIMES.get((device, name))
    if spec is None:
        options = sorted(n for d, n in RUNTIMES if d == device)
        raise UsageError(f"runtime {name!r} does not run on {device}; choose from {', '.join(options)}")
    return spec


def check_runtime_available(spec: RuntimeSpec) -> None:
    """Raise :class:`MissingDependencyError` naming how to install what the runtime needs."""
    require_modules(spec.requires, f"the {spec.name} runtime", spec.install_hint)


def load_runtime(spec: RuntimeSpec) -> ModuleType:
    """Import a runtime's implementation module, after checking its libraries are installed."""
    check_runtime_available(spec)
    return importlib.import_module(f"mobileone_bench.devices.{spec.module}")
