"""The ``torch-cuda`` GPU runtime: PyTorch on CUDA, the model in fp16 (or fp32) replayed as a CUDA graph, timed with
CUDA events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobileone_bench.devices._cuda import require_cuda, time_cuda

__all__ = ["make_runner", "TorchCudaRunner"]


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
                threads: int | None, options: dict[str, Any]) -> TorchCudaRunner:
    """PyTorch on CUDA at the job's precision, as a CUDA graph unless ``options["cuda_graphs"]`` is false."""
    return TorchCudaRunner(model, input_shape, precision, options.get("cuda_graphs", True))
