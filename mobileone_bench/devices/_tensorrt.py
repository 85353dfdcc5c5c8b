"""What the TensorRT exporter and the TensorRT runtime share (neither imports the other): the installed TensorRT
(whichever distribution provides it), what each major version accepts (ONNX opsets, typing), the dtype mapping, the
engine inspector's per-layer precisions, and :class:`TensorRTEngine`, the engine both run.

TensorRT versions differ in ways that change what an engine is, so they are spelled out here once:

=======  ===========================================  ==========================================================
major    typing of the network                        fp16
=======  ===========================================  ==========================================================
8.6      weak (``EXPLICIT_BATCH`` network)            fp32 ONNX + ``BuilderFlag.FP16``: TensorRT may pick fp16
10.x     strong (``NetworkDefinitionCreationFlag``    the fp16 ONNX graph; its tensor types are the precision
         ``.STRONGLY_TYPED``)
11.x     strong, always (the flag is ignored; no      the fp16 ONNX graph (``BuilderFlag.FP16``, ``INT8``, ``BF16``
         ``EXPLICIT_BATCH``)                          and ``Builder.platform_has_fast_fp16`` are gone)
=======  ===========================================  ==========================================================

The committed API lists ``tests/fixtures/tensorrt/tensorrt-*.json`` (written by ``tools/tensorrt_api_surface.py``
from the real bindings wheels) hold these facts; the tests run this code against a strict fake of each.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from mobileone_bench.devices._cuda import require_cuda, time_cuda
from mobileone_bench.devices._trt_layers import metadata_nodes
from mobileone_bench.errors import ExportError, MeasurementError
from mobileone_bench.environment import DISTRIBUTIONS as _DISTRIBUTIONS
from mobileone_bench.environment import installed_distribution

__all__ = ["TensorRTEngine", "DISTRIBUTIONS", "ONNX_OPSETS", "installed_tensorrt", "major_version", "typing_mode",
           "check_opset", "torch_dtype", "layer_precision", "engine_layers", "precision_counts", "median_rows",
           "LAUNCH_MODES"]

#: The PyPI distributions that provide the ``tensorrt`` module, in the order they are looked for: the meta package,
#: the per-CUDA packages, then their ``-bindings`` / ``-libs`` halves (installed alone they still import).
DISTRIBUTIONS = _DISTRIBUTIONS["tensorrt"]

#: ONNX opsets each major version's ONNX parser reads (inclusive). 8.6: opset 17 is the newest it knows (ONNX 1.13);
#: 10.x: onnx-tensorrt's 10.x operator matrix, opsets 9..22; 11.x: NVIDIA's ONNX opset guide for 11.x, 9..25.
ONNX_OPSETS: dict[int, tuple[int, int]] = {8: (7, 17), 10: (9, 22), 11: (9, 25)}

#: How the engine is launched when timed: replayed from a CUDA graph (as ``trtexec --useCudaGraph``; the default, and
#: what torch-cuda does) or enqueued with ``execute_async_v3`` every run.
LAUNCH_MODES = ("cuda-graph", "enqueue")

# TensorRT DataType member -> torch dtype name (INT4, FP4 and E8M0 have no torch tensor type: refused by name)
_DTYPES = (("FLOAT", "float32"), ("HALF", "float16"), ("BF16", "bfloat16"), ("INT8", "int8"), ("UINT8", "uint8"),
           ("INT32", "int32"), ("INT64", "int64"), ("BOOL", "bool"), ("FP8", "float8_e4m3fn"))


def installed_tensorrt() -> dict[str, str] | None:
    """``{"distribution", "version"}`` of the installed TensorRT (the first of :data:`DISTRIBUTIONS` found), or
    ``None``. ``pip install tensorrt-cu12`` gives no ``tensorrt`` distribution, yet ``import tensorrt`` works."""
    return installed_distribution("tensorrt")


def major_version(version: str | None) -> int:
    """The major version of a TensorRT version string (``"10.16.1.11"`` -> 10)."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ExportError(f"unreadable TensorRT version {version!r}") from None


def _known_major(version: str) -> int:
    major = major_version(version)
    if major < 8 or (major == 8 and tuple(int(p) for p in version.split(".")[:2]) < (8, 6)):
        raise ExportError(f"TensorRT {version} is older than 8.6, the oldest this tool builds with")
    return major


def typing_mode(version: str) -> str:
    """``strong`` (10.x, 11.x: tensor types come from the ONNX graph) or ``weak`` (8.6: the builder chooses)."""
    return "strong" if _known_major(version) >= 10 else "weak"


def check_opset(version: str, opset: int | None) -> None:
    """Raise :class:`ExportError` (one line, naming an opset to use) when this TensorRT cannot parse ``opset``."""
    major = _known_major(version)
    low, high = ONNX_OPSETS.get(major, ONNX_OPSETS[max(ONNX_OPSETS)])
    if opset is not None and not low <= int(opset) <= high:
        raise ExportError(f"TensorRT {version}'s ONNX parser reads opsets {low}..{high}, and the ONNX graph is opset "
                          f"{opset}: export with --opset {min(max(int(opset), low), high)}")


def torch_dtype(torch: Any, trt: Any, dt: Any) -> Any:
    """The torch dtype of a TensorRT ``DataType`` (every one with a torch counterpart); a one-line error otherwise."""
    for trt_name, torch_name in _DTYPES:
        member = getattr(trt.DataType, trt_name, None)
        if member is not None and dt == member and hasattr(torch, torch_name):
            return getattr(torch, torch_name)
    raise MeasurementError(f"TensorRT tensor type {getattr(dt, 'name', dt)} has no torch counterpart here")


def layer_precision(text: str) -> str | None:
    """The precision named by the engine inspector's ``Format/Datatype`` (``"Row major linear FP16 format"``,
    ``"Half"``, ``"Float"``, ``"Int8"``...): ``fp16``, ``fp32``, ``bf16``, ``int8``, ``fp8``, ``int32``, ``int64``,
    ``bool``, or ``None``."""
    t = f" {text.lower().replace('/', ' ').replace('.', ' ')} "
    for needle, name in ((" fp16 ", "fp16"), (" half ", "fp16"), (" bf16 ", "bf16"), (" fp32 ", "fp32"),
                         (" float ", "fp32"), (" int8 ", "int8"), (" fp8 ", "fp8"), (" int32 ", "int32"),
                         (" int64 ", "int64"), (" bool ", "bool")):
        if needle in t:
            return name
    return None


def engine_layers(trt: Any, engine: Any, context: Any = None) -> list[dict[str, Any]]:
    """Each layer of a built engine as the engine inspector describes it: ``name``, ``type`` (TensorRT's layer type)
    and ``precision`` (of its first output; detailed only in engines built with ``ProfilingVerbosity.DETAILED``,
    which this tool's exporter does)."""
    inspector = engine.create_engine_inspector()
    if context is not None:
        inspector.execution_context = context
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    try:
        layers = json.loads(text).get("Layers", [])
    except (TypeError, ValueError):
        return []
    out = []
    for layer in layers:
        if isinstance(layer, str):  # an engine built without detailed verbosity: names only
            out.append({"name": layer, "type": None, "precision": None, "onnx_nodes": []})
            continue
        tensors = layer.get("Outputs") or layer.get("Inputs") or []
        fmt = tensors[0].get("Format/Datatype", "") if tensors and isinstance(tensors[0], dict) else ""
        out.append({"name": layer.get("Name"), "type": layer.get("LayerType"), "precision": layer_precision(fmt),
                    "onnx_nodes": metadata_nodes(layer.get("Metadata"))})
    return out


def precision_counts(layers: list[dict[str, Any]]) -> dict[str, int]:
    """How many layers run at each precision (``unknown`` where the inspector does not say)."""
    counts: dict[str, int] = {}
    for layer in layers:
        key = layer.get("precision") or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


class TensorRTEngine:
    """A deserialized TensorRT engine with its input and output buffers on the GPU, launched on its own stream.

    Everything the engine reads is written on, or awaited by, the engine's stream: the buffers are allocated and the
    input filled on it, and :meth:`infer` copies its input on it. Unless ``cuda_graph`` is false, the launch is
    captured once as a CUDA graph and replayed (``trtexec --useCudaGraph``), the launch overhead torch-cuda's replay
    has too; the mode is in :meth:`settings`, and a capture that fails falls back to enqueueing, said there.

    Args:
        path: Serialized engine file.
        cuda_graph: Replay a captured CUDA graph instead of enqueueing every run.
        facts: How the engine was built (typing, ONNX dtype, TF32: its manifest's), added to :meth:`settings`.
    """

    def __init__(self, path: Path, *, cuda_graph: bool = True, facts: dict[str, Any] | None = None):
        torch = require_cuda()
        import tensorrt as trt

        self._torch, self._trt = torch, trt
        self.version = str(trt.__version__)
        self.facts = dict(facts or {})
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise MeasurementError(f"TensorRT cannot deserialize {path} (built with another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())  # nothing the caller queued is still pending
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        generator = torch.Generator(device="cuda").manual_seed(0)
        with torch.cuda.stream(self.stream):
            for i in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(i)
                dtype = torch_dtype(torch, trt, self.engine.get_tensor_dtype(name))
                if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                    shape = tuple(max(1, int(d)) for d in self.engine.get_tensor_shape(name))
                    self.context.set_input_shape(name, shape)
                    buf = (torch.randn(shape, device="cuda", generator=generator).to(dtype) if dtype.is_floating_point
                           else torch.zeros(shape, device="cuda", dtype=dtype))
                    self.inputs[name] = buf
                else:
                    shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
                    self.outputs[name] = buf = torch.empty(shape, device="cuda", dtype=dtype)
                self.context.set_tensor_address(name, buf.data_ptr())
        self.graph: Any = None
        self.graph_error: str | None = None
        with torch.cuda.stream(self.stream):
            self._enqueue()  # the first launch does the shape-dependent setup a capture must not contain
        if cuda_graph:
            self._capture()
        self.stream.synchronize()

    @property
    def mode(self) -> str:
        """``cuda-graph`` or ``enqueue`` (:data:`LAUNCH_MODES`)."""
        return "cuda-graph" if self.graph is not None else "enqueue"

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise MeasurementError("TensorRT execution failed")

    def _capture(self) -> None:
        torch = self._torch
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self._enqueue()
        except Exception as exc:  # noqa: BLE001 - an engine that cannot be captured is launched instead, and said so
            self.graph_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            self.stream.synchronize()
            return
        self.graph = graph

    def __call__(self) -> None:
        """One inference on the engine's stream (the caller makes it current, as :func:`time_cuda` does)."""
        if self.graph is not None:
            self.graph.replay()
        else:
            self._enqueue()

    def infer(self, x: Any) -> Any:
        """Run on a host tensor and return the first output on the host (float32); every step on the engine's
        stream."""
        torch = self._torch
        buf = next(iter(self.inputs.values()))
        with torch.cuda.stream(self.stream):
            buf.copy_(x.to(device=buf.device, dtype=buf.dtype).reshape(buf.shape))
            self()
            out = next(iter(self.outputs.values())).float().cpu()
        self.stream.synchronize()
        return out

    def layers(self) -> list[dict[str, Any]]:
        """The engine's layers and the precision each runs at (:func:`engine_layers`)."""
        return engine_layers(self._trt, self.engine, self.context)

    def settings(self) -> dict[str, Any]:
        return {"tensorrt": self.version, "tensorrt_distribution": (installed_tensorrt() or {}).get("distribution"),
                "clock": "cuda-events", "launch": self.mode, "cuda_graph_error": self.graph_error,
                "gpu": self._torch.cuda.get_device_name(0),
                "io": {n: [str(b.dtype), list(b.shape)] for n, b in {**self.inputs, **self.outputs}.items()},
                "layer_precisions": precision_counts(self.layers()), **self.facts}

    def time(self, warmup: int, runs: int) -> list[float]:
        return time_cuda(self, warmup, runs, self.stream)

    def profile(self, runs: int) -> dict[str, Any]:
        """Per-layer times from TensorRT's ``IProfiler`` over ``runs`` enqueued launches (a profiled launch cannot
        be replayed from a graph): ``{"layers": {name: [ms per run]}, "profiled_ms": [sum per run]}``."""
        trt = self._trt
        times: dict[str, list[float]] = {}
        per_run: list[float] = []

        class _LayerTimes(trt.IProfiler):
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                times.setdefault(layer_name, []).append(float(ms))

        profiler = _LayerTimes()
        self.context.profiler = profiler
        self.context.enqueue_emits_profile = False  # launch asynchronously; the times are reported below
        with self._torch.cuda.stream(self.stream):
            for _ in range(runs):
                before = sum(len(v) for v in times.values())
                before_ms = sum(sum(v) for v in times.values())
                self._enqueue()
                self.stream.synchronize()
                self.context.report_to_profiler()
                if sum(len(v) for v in times.values()) > before:
                    per_run.append(sum(sum(v) for v in times.values()) - before_ms)
        return {"layers": times, "profiled_ms": per_run}

    def close(self) -> None:
        self.graph = None
        self.context = None
        self.engine = None


def median_rows(layers: list[dict[str, Any]], times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Operator rows (``name``, ``op_type``, ``time_ms`` median over runs, ``precision``) in the engine's layer order;
    a timed layer the inspector does not list comes last."""
    described = {layer["name"]: layer for layer in layers}
    order = [layer["name"] for layer in layers if layer["name"] in times]
    order += [name for name in times if name not in described]
    return [{"name": name, "op_type": described.get(name, {}).get("type"),
             "time_ms": float(statistics.median(times[name])), "precision": described.get(name, {}).get("precision"),
             "onnx_nodes": list(described.get(name, {}).get("onnx_nodes") or [])}
            for name in order]
