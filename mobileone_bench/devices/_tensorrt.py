"""A TensorRT engine ready to run: what the TensorRT runtime measures and what the TensorRT exporter's parity check
runs (:mod:`mobileone_bench.formats.tensorrt`), so neither imports the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobileone_bench.devices._cuda import require_cuda, time_cuda
from mobileone_bench.errors import MeasurementError

__all__ = ["TensorRTEngine"]


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
