"""The onnxruntime runtime (the CPU's default): an inference session on the ONNX artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobileone_bench.devices._cpu import default_threads, require_fp32
from mobileone_bench.devices._ort import GRAPH_OPTIMIZATION_LEVELS, open_session, session_options
from mobileone_bench.devices._profile_onnxruntime import profile_operators  # noqa: F401 - explain's profiler
from mobileone_bench.errors import MeasurementError

__all__ = ["make_runner", "OnnxRuntimeRunner", "GRAPH_OPTIMIZATION_LEVELS"]

class OnnxRuntimeRunner:
    """An onnxruntime CPU session with a preallocated input; calling it runs ``session.run`` once.

    Args:
        path: The ONNX file.
        input_shape: Shape of the input to feed.
        threads: Intra-op threads (inter-op is 1, execution sequential).
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all``.
        allow_spinning: Let idle intra-op workers busy-wait for the next run
            (``session.intra_op.allow_spinning``); ``None`` leaves onnxruntime's default (spinning).
    """

    def __init__(self, path: Path, input_shape: tuple[int, ...], threads: int, graph_optimization: str = "all",
                 allow_spinning: bool | None = None):
        import numpy as np
        import onnxruntime as ort

        options = session_options(threads, graph_optimization, allow_spinning)
        self.session = open_session(path, options)
        inp = self.session.get_inputs()[0]
        self.feed = {inp.name: np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self._settings = {"intra_op_threads": threads, "inter_op_threads": 1, "execution_mode": "sequential",
                          "graph_optimization": graph_optimization,
                          "allow_spinning": True if allow_spinning is None else bool(allow_spinning),
                          "providers": self.session.get_providers(), "onnxruntime": ort.__version__}

    def __call__(self) -> Any:
        return self.session.run(self.outputs, self.feed)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> OnnxRuntimeRunner:
    """An onnxruntime session on the ONNX artifact (fp32), with the job's graph optimisation and spin policy."""
    threads = threads or default_threads()
    require_fp32(precision)
    if artifact is None:
        raise MeasurementError("onnxruntime needs the ONNX artifact")
    return OnnxRuntimeRunner(Path(artifact), input_shape, threads, options.get("graph_optimization", "all"),
                             options.get("allow_spinning"))
