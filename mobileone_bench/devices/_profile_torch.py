"""``torch.profiler``'s per-operator profile of PyTorch eager on the CPU (``explain --runtime torch``).

The inference-time model runs as the ``torch`` runtime runs it (``inference_mode``, the job's threads); while it is
profiled, a forward pre-hook and a forward hook on every module open and close a ``record_function`` range named
after the module's path, so every aten operator is known by the module it ran in (its FLOPs, its gate or dynamic
activation, a convolution's geometry). A row is a *top-level* aten operator (one no other aten operator called:
``aten::conv2d``, not the ``aten::mkldnn_convolution`` inside it), with its total CPU time (children included) and
its inputs' shapes; each run is its own ``record_function`` range, so the rows of the runs line up by (module,
operator, occurrence) and each row's time is the median over the runs. Time between operators (Python, the
dispatcher outside them) belongs to no row: it is what coverage below 1 measures.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from mobileone_bench.devices._cpu import default_threads

__all__ = ["profile_operators", "read_events", "MODULE_PREFIX", "RUN_PREFIX"]

MODULE_PREFIX = "module::"
RUN_PREFIX = "explain::run"


def _attach(model: Any) -> list[Any]:
    """Open a ``record_function`` range around every module's forward; returns the hook handles."""
    import torch

    handles = []
    stack: dict[int, list[Any]] = {}

    def pre(path: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            rf = torch.autograd.profiler.record_function(MODULE_PREFIX + (path or "<model>"))
            rf.__enter__()
            stack.setdefault(id(module), []).append(rf)

        return hook

    def post(module: Any, args: Any, result: Any) -> None:
        frames = stack.get(id(module))
        if frames:
            frames.pop().__exit__(None, None, None)

    for path, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre(path)))
        handles.append(module.register_forward_hook(post))
    return handles


def read_events(events: Any) -> tuple[list[dict[str, Any]], int]:
    """Rows from ``torch.profiler``'s function events (an ``EventList``): one per top-level aten operator inside an
    ``explain::run`` range, by (module, operator, occurrence), the median over the runs.

    Returns:
        ``(rows, runs)``: rows with ``name`` (``module/op#n``), ``op_type`` (``aten::...``), ``module`` (its path, or
        ``None`` outside every module), ``time_ms``, ``input_shapes``; and the number of runs found.
    """
    runs = [e for e in events if str(e.name).startswith(RUN_PREFIX)]
    per_run: list[dict[tuple[str | None, str, int], float]] = []
    first: dict[tuple[str | None, str, int], Any] = {}
    order: list[tuple[str | None, str, int]] = []
    for run in runs:
        times: dict[tuple[str | None, str, int], float] = {}
        count: dict[tuple[str | None, str], int] = {}

        def walk(event: Any, module: str | None) -> None:
            for child in event.cpu_children:
                name = str(child.name)
                if name.startswith(MODULE_PREFIX):
                    path = name[len(MODULE_PREFIX):]
                    walk(child, None if path == "<model>" else path)
                elif name.startswith("aten::") or name.startswith("prim::"):
                    n = count.get((module, name), 0)
                    count[(module, name)] = n + 1
                    key = (module, name, n)
                    times[key] = times.get(key, 0.0) + child.cpu_time_total / 1000.0
                    if key not in first:
                        first[key] = child
                        order.append(key)
                else:
                    walk(child, module)

        walk(run, None)
        per_run.append(times)
    rows = []
    for key in order:
        module, op, n = key
        event = first[key]
        shapes = [list(s) if s else None for s in (getattr(event, "input_shapes", None) or [])]
        rows.append({"name": f"{module or '<model>'}/{op.split('::')[-1]}#{n}", "op_type": op, "module": module,
                     "time_ms": statistics.median(r.get(key, 0.0) for r in per_run), "input_shapes": shapes})
    return rows, len(runs)


def quiet_kineto() -> None:
    """Keep torch.profiler's C++ logger (Kineto) from printing its own lines (``USDT: ... profiler_start``, and
    ``ERROR: ... gpuGetDeviceCount failed`` on a machine without a GPU) between the tool's messages: its level is
    read when the first profile starts. A user's own ``KINETO_LOG_LEVEL`` is kept."""
    import os

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # above USDT (5), Kineto's highest level


def profile_operators(*, artifact: Path | str | None, model: Any, input_shape: tuple[int, ...], precision: str,
                      threads: int | None, options: dict[str, Any], runs: int) -> dict[str, Any]:
    """Profile PyTorch eager inference of ``model`` with ``torch.profiler`` (CPU activities, input shapes).

    ``options["warmup"]``: untimed runs first (default 5).

    Returns:
        ``{"rows", "profiled_ms", "notes"}`` (see :func:`read_events`; ``profiled_ms``: each profiled run's wall time).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from mobileone_bench.devices._cpu import require_fp32

    quiet_kineto()

    require_fp32(precision)
    threads = threads or default_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = model.eval()
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0))
    wall = []
    try:
        with torch.inference_mode():
            for _ in range(int(options.get("warmup", 5))):
                model(x)
        handles = _attach(model)
        try:
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                with torch.inference_mode():
                    for i in range(runs):
                        t0 = time.perf_counter_ns()
                        with record_function(f"{RUN_PREFIX}{i}"):
                            model(x)
                        wall.append((time.perf_counter_ns() - t0) / 1e6)
        finally:
            for h in handles:
                h.remove()
    finally:
        torch.set_num_threads(before)
    rows, found = read_events(prof.events())
    notes = [f"torch.profiler (CPU): {len(rows)} top-level aten operators, median of {found} runs; time between "
             f"operators (Python, dispatch) is in no row"]
    return {"rows": rows, "profiled_ms": wall, "notes": notes}
