"""GPU runtimes: TensorRT engines (the paper's setting: fp16, batch 1) and PyTorch on CUDA (fp16, CUDA graphs).

GPU work is timed with CUDA events recorded on the runner's stream around each run (:func:`time_cuda`), not with the
host clock: a launch returns before the GPU finishes. Only the device calls need a GPU; everything else here is
plain Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mobileone_bench.errors import DeviceUnavailableError, MeasurementError, UsageError

__all__ = ["require_cuda", "time_cuda", "TensorRTEngine", "TorchCudaRunner", "make_runner"]


def require_cuda() -> Any:
    """The torch module, after checking a CUDA GPU is usable; a clear error otherwise."""
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailableError("no CUDA GPU is available here (torch.cuda.is_available() is False); "
                                     "GPU latency needs an NVIDIA GPU and a CUDA build of PyTorch")
    return torch


def time_cuda(step: Callable[[], Any], warmup: int, runs: int, stream: Any) -> list[float]:
    """Time ``runs`` launches of ``step`` on ``stream`` with CUDA events, after ``warmup`` untimed ones (ms)."""
    torch = require_cuda()
    if warmup < 0 or runs < 1:
        raise ValueError("warmup must be >= 0 and runs >= 1")
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step()
        stream.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
        for i in range(runs):
            starts[i].record(stream)
            step()
            ends[i].record(stream)
        stream.synchronize()
    return [float(s.elapsed_time(e)) for s, e in zip(starts, ends)]


class TensorRTEngine:
    """A deserialized TensorRT engine with its input and output buffers preallocated on the GPU.

    Args:
        path: Serialized engine file.
    """

    def __init__(self, path: Path):
        torch = require_cuda()
        import tensorrt as trt

        self._torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise MeasurementError(f"TensorRT cannot deserialize {path} (built with another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(max(1, d) for d in self.engine.get_tensor_shape(name))
            dtype = _torch_dtype(torch, trt, self.engine.get_tensor_dtype(name))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.context.set_input_shape(name, shape)
                buf = torch.randn(shape, device="cuda", generator=None).to(dtype)
                self.inputs[name] = buf
            else:
                buf = torch.empty(tuple(self.context.get_tensor_shape(name)), device="cuda", dtype=dtype)
                self.outputs[name] = buf
            self.context.set_tensor_address(name, buf.data_ptr())

    def __call__(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise MeasurementError("TensorRT execution failed")

    def infer(self, x: Any) -> Any:
        """Run on a host tensor and return the first output on the host (float32)."""
        name, buf = next(iter(self.inputs.items()))
        buf.copy_(x.to(buf.device, buf.dtype).reshape(buf.shape))
        with self._torch.cuda.stream(self.stream):
            self()
        self.stream.synchronize()
        return next(iter(self.outputs.values())).float().cpu()

    def settings(self) -> dict[str, Any]:
        import tensorrt as trt

        return {"tensorrt": trt.__version__, "clock": "cuda-events", "gpu": self._torch.cuda.get_device_name(0),
                "io": {n: [str(b.dtype), list(b.shape)] for n, b in {**self.inputs, **self.outputs}.items()}}

    def time(self, warmup: int, runs: int) -> list[float]:
        return time_cuda(self, warmup, runs, self.stream)

    def close(self) -> None:
        self.context = None
        self.engine = None


def _torch_dtype(torch: Any, trt: Any, dt: Any) -> Any:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32, trt.int8: torch.int8,
             trt.bool: torch.bool}
    if dt not in table:
        raise MeasurementError(f"unsupported TensorRT tensor type {dt}")
    return table[dt]


class TorchCudaRunner:
    """PyTorch on CUDA: the model in fp16 (or fp32), the input preallocated on the GPU, replayed as a CUDA graph.

    Args:
        model: The inference-time model.
        input_shape: Input shape.
        precision: ``fp16`` or ``fp32``.
        cuda_graphs: Capture the forward pass once and replay it (removes the Python launch overhead).
    """

    def __init__(self, model: Any, input_shape: tuple[int, ...], precision: str, cuda_graphs: bool = True):
        torch = require_cuda()
        self._torch = torch
        dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.eval().to("cuda", dtype)
        self.x = torch.randn(input_shape, device="cuda", dtype=dtype)
        self.stream = torch.cuda.Stream()
        self.cuda_graphs = cuda_graphs
        self.graph = None
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            for _ in range(3):  # warm the allocator and cuDNN autotuning before capture
                self.out = self.model(self.x)
            self.stream.synchronize()
            if cuda_graphs:
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph, stream=self.stream):
                    self.out = self.model(self.x)
        self._settings = {"torch": torch.__version__, "cuda": torch.version.cuda, "precision": precision,
                          "cuda_graphs": cuda_graphs, "clock": "cuda-events", "gpu": torch.cuda.get_device_name(0),
                          "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}

    def __call__(self) -> Any:
        if self.graph is not None:
            self.graph.replay()
            return self.out
        with self._torch.inference_mode():
            return self.model(self.x)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def time(self, warmup: int, runs: int) -> list[float]:
        return time_cuda(self, warmup, runs, self.stream)

    def close(self) -> None:
        self.graph = None
        self.model = None
        self._torch.cuda.empty_cache()


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> Any:
    """Build the runner of a GPU runtime."""
    if runtime == "tensorrt":
        if artifact is None:
            raise MeasurementError("the tensorrt runtime needs the TensorRT engine artifact")
        return TensorRTEngine(Path(artifact))
    if runtime == "torch-cuda":
        return TorchCudaRunner(model, input_shape, precision, options.get("cuda_graphs", True))
    raise UsageError(f"unknown GPU runtime {runtime!r}")
