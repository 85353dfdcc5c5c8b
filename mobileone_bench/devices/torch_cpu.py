"""The ``torch`` CPU runtime: PyTorch eager inference on the inference-time model (no artifact)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mobileone_bench.devices._cpu import default_threads, require_fp32
from mobileone_bench.devices._profile_torch import profile_operators  # noqa: F401 - explain's profiler

__all__ = ["make_runner", "TorchRunner"]


class TorchRunner:
    """PyTorch eager inference (``inference_mode``) of a model with a preallocated input."""

    def __init__(self, model: Any, input_shape: tuple[int, ...], threads: int):
        import torch

        self._torch = torch
        self._previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        self.model = model.eval()
        self.x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
        self._settings = {"threads": threads, "mode": "eager, inference_mode", "torch": torch.__version__,
                          "mkldnn": bool(torch.backends.mkldnn.is_available()),
                          # OpenMP's spin policy is fixed when the process starts; recorded, not set
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}

    def __call__(self) -> Any:
        with self._torch.inference_mode():
            return self.model(self.x)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def close(self) -> None:
        self._torch.set_num_threads(self._previous_threads)


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> TorchRunner:
    """PyTorch eager on the CPU (fp32) at the job's thread count."""
    threads = threads or default_threads()
    require_fp32(precision)
    return TorchRunner(model, input_shape, threads)
