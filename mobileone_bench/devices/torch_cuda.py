"""The ``torch-cuda`` GPU runtime: PyTorch on CUDA, a copy of the model in fp16 (or fp32) replayed as a CUDA graph,
timed with CUDA events. TF32 (fp32 convolutions and matmuls on tensor cores, on by default in cuDNN) is the job's
choice (``options["tf32"]``, off unless asked), set while the runner lives and recorded.
:func:`profile_operators` times each top-level operator with ``torch.profiler`` (CUDA activity)."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path
from typing import Any

from mobileone_bench.devices._cuda import require_cuda, time_cuda
from mobileone_bench.errors import MeasurementError

__all__ = ["make_runner", "TorchCudaRunner", "profile_operators", "tf32_state"]


def tf32_state(torch: Any) -> dict[str, bool]:
    """Whether fp32 matmuls and cuDNN convolutions may use TF32 now."""
    return {"matmul": bool(torch.backends.cuda.matmul.allow_tf32), "cudnn": bool(torch.backends.cudnn.allow_tf32)}


def _set_tf32(torch: Any, state: dict[str, bool]) -> None:
    torch.backends.cuda.matmul.allow_tf32 = bool(state["matmul"])
    torch.backends.cudnn.allow_tf32 = bool(state["cudnn"])


def _gpu_model(torch: Any, model: Any, precision: str) -> tuple[Any, Any]:
    """A copy of ``model`` on the GPU at ``precision`` (the caller's model stays where and what it was)."""
    dtype = torch.float16 if precision == "fp16" else torch.float32
    return copy.deepcopy(model).eval().to("cuda", dtype), dtype


class TorchCudaRunner:
    """PyTorch on CUDA: a copy of the model in fp16 (or fp32), the input on the GPU, replayed as a CUDA graph.

    Args:
        model: The inference-time model (not modified: the runner works on a copy).
        input_shape: Input shape.
        precision: ``fp16`` or ``fp32``.
        cuda_graphs: Capture the forward pass once and replay it (removes the Python launch overhead).
        tf32: Allow TF32 for fp32 convolutions and matmuls while the runner lives (restored by :meth:`close`).
    """

    def __init__(self, model: Any, input_shape: tuple[int, ...], precision: str, cuda_graphs: bool = True,
                 tf32: bool = False):
        torch = require_cuda()
        self._torch = torch
        self._tf32_before = tf32_state(torch)
        _set_tf32(torch, {"matmul": tf32, "cudnn": tf32})
        self.model, dtype = _gpu_model(torch, model, precision)
        self.stream = torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())  # the weights' copy (default stream) is done first
        self.cuda_graphs = cuda_graphs
        self.graph = None
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            self.x = torch.randn(input_shape, device="cuda", dtype=dtype)
            for _ in range(3):  # warm the allocator and cuDNN autotuning before capture
                self.out = self.model(self.x)
            self.stream.synchronize()
            if cuda_graphs:
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph, stream=self.stream):
                    self.out = self.model(self.x)
        self._settings = {"torch": torch.__version__, "cuda": torch.version.cuda, "precision": precision,
                          "cuda_graphs": cuda_graphs, "launch": "cuda-graph" if cuda_graphs else "eager",
                          "clock": "cuda-events", "gpu": torch.cuda.get_device_name(0),
                          "cudnn_benchmark": bool(torch.backends.cudnn.benchmark), "tf32": tf32_state(torch)}

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
        _set_tf32(self._torch, self._tf32_before)
        self._torch.cuda.empty_cache()


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> TorchCudaRunner:
    """PyTorch on CUDA at the job's precision, as a CUDA graph unless ``options["cuda_graphs"]`` is false, TF32 as
    ``options["tf32"]`` says (off by default)."""
    return TorchCudaRunner(model, input_shape, precision, options.get("cuda_graphs", True),
                           bool(options.get("tf32", False)))


def _top_level(events: Any) -> list[Any]:
    """The operators the model called (CPU events with no parent), in call order."""
    cpu = [e for e in events if getattr(e.device_type, "name", str(e.device_type)) == "CPU" and e.cpu_parent is None]
    return sorted(cpu, key=lambda e: e.time_range.start)


def profile_operators(*, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                      threads: int | None, options: dict[str, Any], runs: int) -> dict[str, Any]:
    """Each top-level operator of the model's forward pass on CUDA, timed by ``torch.profiler`` (CUDA activity):
    the GPU time of the kernels it launched (its children's included), the median over ``runs`` eager runs.

    Returns:
        ``{"rows": [{"name", "op_type", "time_ms", "precision"}], "profiled_ms": [...], "notes": [...]}``: ``name``
        is ``<op>#<n>`` (the n-th call in the forward pass), ``op_type`` the aten operator, ``precision`` the run's;
        ``profiled_ms`` the operators' GPU time of each run.
    """
    if runs < 1:
        raise MeasurementError("profiling needs at least one run")
    torch = require_cuda()
    from torch.profiler import ProfilerActivity, profile

    from mobileone_bench.devices._profile_torch import quiet_kineto

    quiet_kineto()
    before = tf32_state(torch)
    tf32 = bool(options.get("tf32", False))
    _set_tf32(torch, {"matmul": tf32, "cudnn": tf32})
    try:
        gpu_model, dtype = _gpu_model(torch, model, precision)
        x = torch.randn(input_shape, device="cuda", dtype=dtype)
        per_op: dict[str, list[float]] = {}
        order: list[tuple[str, str]] = []
        totals: list[float] = []
        with torch.inference_mode():
            for _ in range(3):  # warm (cuDNN autotuning, allocator) outside the profile
                gpu_model(x)
            torch.cuda.synchronize()
            for _ in range(runs):
                with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                    gpu_model(x)
                    torch.cuda.synchronize()
                seen: dict[str, int] = {}
                total = 0.0
                for event in _top_level(prof.events()):
                    n = seen[event.name] = seen.get(event.name, 0) + 1
                    key = f"{event.name}#{n}"
                    ms = float(event.device_time_total) / 1000.0
                    if key not in per_op:
                        per_op[key] = []
                        order.append((key, event.name))
                    per_op[key].append(ms)
                    total += ms
                totals.append(total)
    finally:
        _set_tf32(torch, before)
    rows = [{"name": key, "op_type": op, "time_ms": float(statistics.median(per_op[key])), "precision": precision}
            for key, op in order]
    notes = ["torch.profiler, CPU + CUDA activity, eager runs (a replayed CUDA graph hides its operators); time_ms is "
             "the GPU time of the kernels each top-level operator launched",
             f"TF32 {'allowed' if tf32 else 'off'} for fp32 convolutions and matmuls"]
    return {"rows": rows, "profiled_ms": totals, "notes": notes}
