"""The TensorRT runtime (the GPU's default, as the paper: fp16, batch 1): the engine artifact, deserialized with its
buffers on the GPU, timed with CUDA events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobileone_bench.devices._tensorrt import TensorRTEngine
from mobileone_bench.errors import MeasurementError

__all__ = ["make_runner"]


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> TensorRTEngine:
    """The TensorRT engine artifact, ready to time."""
    if artifact is None:
        raise MeasurementError("the tensorrt runtime needs the TensorRT engine artifact")
    return TensorRTEngine(Path(artifact))
