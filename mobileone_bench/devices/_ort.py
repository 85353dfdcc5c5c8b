"""One onnxruntime CPU session, set up one way for the runner that times it (``devices.onnxruntime``) and the
profiler that breaks it down (``devices._profile_onnxruntime``): the same threads, sequential execution, graph
optimisation level and spin policy, so the profile is of the session that was timed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobileone_bench.errors import MeasurementError, UsageError

__all__ = ["GRAPH_OPTIMIZATION_LEVELS", "session_options", "open_session"]

#: ``--ort-opt`` values and the onnxruntime level each one sets.
GRAPH_OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                             "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def session_options(threads: int, graph_optimization: str = "all", allow_spinning: bool | None = None) -> Any:
    """``SessionOptions`` with ``threads`` intra-op threads (inter-op 1, sequential), the graph optimisation level
    and the spin policy (``None``: onnxruntime's default, spinning).

    Raises:
        UsageError: An unknown optimisation level.
    """
    import onnxruntime as ort

    if graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
        raise UsageError(f"unknown graph optimisation level {graph_optimization!r}; "
                         f"choose from {', '.join(GRAPH_OPTIMIZATION_LEVELS)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = GRAPH_OPTIMIZATION_LEVELS[graph_optimization]
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.log_severity_level = 3
    if allow_spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return options


def open_session(path: Path, options: Any) -> Any:
    """A CPU ``InferenceSession`` on ``path``.

    Raises:
        MeasurementError: onnxruntime cannot load the file (its reason, on one line).
    """
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a bad artifact is a measurement failure with its reason
        raise MeasurementError(f"onnxruntime cannot load {path}: {' '.join(str(exc).split())[:200]}") from exc
