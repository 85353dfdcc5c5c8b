"""ExecuTorch's own per-operator profile of a ``.pte`` program (``explain --runtime executorch``): ETDump read by
the devtools Inspector.

The program is loaded with ETDump enabled (``_load_for_executorch(..., enable_etdump=True)``), run, and its ETDump
written and read by :class:`executorch.devtools.Inspector`. The ``Execute`` event block has one event per operator
the runtime timed: with the XNNPACK delegate, XNNPACK's own operators (``Convolution (NHWC, F32) DWConv #3``,
``Fully Connected (NC, F32) GEMM #7``, ``Multiply (ND) #2``: a 1x1 convolution is a GEMM there), each with its
duration in every run. A delegate that reports no operator of its own is one block (``DELEGATE_CALL``), said in the
notes. No ETRecord is needed: the operators are traced to the PyTorch modules by their order
(:func:`mobileone_bench.complexity_ops.trace_in_order`), which is how their FLOPs and categories are found.

The XNNPACK thread pool is process-wide (:mod:`mobileone_bench.devices.executorch`): the profile sizes it before it
loads the program, as the runner does, and ``explain`` closes its runner first, so no other program holds it.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mobileone_bench.devices._cpu import default_threads
from mobileone_bench.errors import MeasurementError

__all__ = ["profile_operators", "read_events", "xnnpack_op"]

_SKIP = ("Method::execute", "Method::init", "Program::load_method")


def xnnpack_op(name: str) -> str:
    """An operator type from an XNNPACK event name: ``Convolution (NHWC, F32) DWConv #3`` -> ``DWConv``,
    ``Fully Connected (NC, F32) GEMM #7`` -> ``FullyConnected``, ``Multiply (ND) #2`` -> ``Multiply``."""
    text = re.sub(r"\s*#\d+$", "", str(name)).strip()
    if "DWConv" in text:
        return "DWConv"
    head = text.split("(")[0].strip()
    return head.replace(" ", "") or text


def read_events(event_blocks: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows from the Inspector's event blocks: each timed event of the ``Execute`` block, its median duration (ms).

    Returns:
        ``(rows, notes)``; rows have ``name``, ``op_type``, ``time_ms``, ``trace`` (``"order"``: traced to modules
        by order), ``delegated``.
    """
    rows, notes = [], []
    for block in event_blocks:
        if block.name != "Execute":
            continue
        for ev in block.events:
            if ev.name in _SKIP or ev.perf_data is None or not ev.perf_data.raw:
                continue
            rows.append({"name": ev.name, "op_type": xnnpack_op(ev.name) if ev.is_delegated_op else ev.name,
                         "time_ms": float(statistics.median(ev.perf_data.raw)), "trace": "order",
                         "delegated": bool(ev.is_delegated_op)})
    calls = [r for r in rows if r["name"] == "DELEGATE_CALL"]
    delegated = [r for r in rows if r["delegated"]]
    if calls and delegated:
        # a DELEGATE_CALL holds its delegate's operators: keep them, and only what the calls add around them
        outside = sum(r["time_ms"] for r in calls) - sum(r["time_ms"] for r in delegated)
        rows = [r for r in rows if r["name"] != "DELEGATE_CALL"]
        rows.append({"name": "DELEGATE_CALL (outside its operators)", "op_type": "DELEGATE_CALL",
                     "time_ms": max(0.0, outside), "trace": None, "delegated": False, "category": "other"})
        notes.append(f"{len(calls)} delegate call(s): their operators are rows; what the calls take around them is "
                     f"one row, 'DELEGATE_CALL (outside its operators)'")
    elif calls:
        notes.append("a delegate reported no operator of its own: its time is one DELEGATE_CALL block per call")
    return rows, notes


def profile_operators(*, artifact: Path | str | None, model: Any, input_shape: tuple[int, ...], precision: str,
                      threads: int | None, options: dict[str, Any], runs: int) -> dict[str, Any]:
    """Profile the ``.pte`` artifact with ETDump (``options["warmup"]``: untimed runs first, default 5; ETDump keeps
    every run, so the warm-up runs are dropped from each operator's durations).

    Returns:
        ``{"rows", "profiled_ms", "notes"}``.
    """
    import torch

    from mobileone_bench.devices._executorch import native_quiet

    if artifact is None:
        raise MeasurementError("the executorch runtime needs the ExecuTorch artifact")
    threads = threads or default_threads()
    warmup = int(options.get("warmup", 5))
    with native_quiet():
        from executorch.devtools import Inspector
        from executorch.extension.pybindings import portable_lib

        getter = getattr(portable_lib, "_threadpool_get_thread_count", None)
        if getter is not None and int(getter()) != int(threads):
            portable_lib._unsafe_reset_threadpool(int(threads))
        module = portable_lib._load_for_executorch(str(artifact), enable_etdump=True)
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0))
    wall = []
    for i in range(warmup + runs):
        t0 = time.perf_counter_ns()
        module.forward((x,))
        if i >= warmup:
            wall.append((time.perf_counter_ns() - t0) / 1e6)
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-etdump-") as tmp:
        path = Path(tmp) / "profile.etdp"
        module.write_etdump_result_to_file(str(path))
        with native_quiet():
            inspector = Inspector(etdump_path=str(path))
    for block in inspector.event_blocks:
        for ev in block.events:
            if ev.perf_data is not None and len(ev.perf_data.raw) > runs:
                ev.perf_data.raw = list(ev.perf_data.raw)[-runs:]
    rows, notes = read_events(inspector.event_blocks)
    notes.append(f"ExecuTorch ETDump through the devtools Inspector: {len(rows)} operators "
                 f"({'XNNPACK delegate' if any(r['delegated'] for r in rows) else 'portable kernels'}), median of "
                 f"{runs} runs; traced to the PyTorch modules by their order")
    return {"rows": rows, "profiled_ms": wall, "notes": notes}
