"""What the GPU runtimes share: the CUDA check and the clock.

GPU work is timed with CUDA events recorded on the runner's stream around each run (:func:`time_cuda`), not with the
host clock: a launch returns before the GPU finishes. Only the device calls need a GPU; torch is imported when they
run.
"""

from __future__ import annotations

from typing import Any, Callable

from mobileone_bench.errors import DeviceUnavailableError

__all__ = ["require_cuda", "time_cuda"]


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
