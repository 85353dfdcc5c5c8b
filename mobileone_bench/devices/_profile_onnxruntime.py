"""onnxruntime's own per-node profile of an ONNX artifact (``explain --runtime onnxruntime``).

A session with the measuring runner's settings (threads, sequential execution, graph optimisation level, spin
policy) and ``SessionOptions.enable_profiling``; onnxruntime writes one Chrome-trace JSON with an event per node per
run (``<node>_kernel_time``, category ``Node``, with the node's op type and its inputs' and outputs' shapes) and one
``model_run`` event per run. The nodes are those of the graph as onnxruntime optimised it (fused convolutions,
NCHWc layout changes), so the session also saves that graph (``optimized_model_filepath``): its edges let gates and
dynamic activations be found by their shape (:func:`mobileone_bench.complexity_ops.structural_categories`), and the
parameter names a node reads trace it to its PyTorch module (for its FLOPs).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from mobileone_bench.devices._cpu import default_threads, require_fp32
from mobileone_bench.devices._onnx_nodes import original_name, read_graph_nodes
from mobileone_bench.devices._ort import open_session, session_options
from mobileone_bench.errors import MeasurementError

__all__ = ["profile_operators", "read_profile", "read_graph", "shapes_of"]

def _session(path: Path, threads: int, options: dict[str, Any], workdir: Path) -> Any:
    so = session_options(threads, options.get("graph_optimization", "all"), options.get("allow_spinning"))
    so.enable_profiling = True
    so.profile_file_prefix = str(workdir / "ort_profile")
    so.optimized_model_filepath = str(workdir / "optimized.onnx")
    return open_session(path, so)


def shapes_of(values: Iterable[Mapping[str, Any]] | None) -> list[list[int] | None]:
    """onnxruntime's ``input_type_shape`` / ``output_type_shape`` (``[{"float": [1, 3, 224, 224]}]``) as shapes."""
    out: list[list[int] | None] = []
    for item in values or []:
        if isinstance(item, Mapping) and item:
            shape = next(iter(item.values()))
            out.append([int(d) for d in shape] if isinstance(shape, (list, tuple)) else None)
        else:
            out.append(None)
    return out


def read_graph(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The nodes of a saved (optimised) ONNX graph by name: ``{"inputs", "outputs", "constants"}``, and the graph's
    output names."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    nodes = {n.name: {"inputs": [i for i in n.input if i], "outputs": [o for o in n.output if o],
                      "constants": {i for i in n.input if i in constants}, "op_type": n.op_type}
             for n in model.graph.node}
    return nodes, [o.name for o in model.graph.output]


def read_profile(events: list[dict[str, Any]], runs: int) -> tuple[list[dict[str, Any]], list[float]]:
    """Per-node median times over the last ``runs`` runs of an onnxruntime profile.

    Returns:
        ``(rows, run_ms)``: one row per node in execution order (``name``, ``op_type``, ``time_ms``,
        ``input_shapes``, ``output_shapes``, ``provider``), and each run's ``model_run`` duration (ms).
    """
    model_runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                        key=lambda e: e["ts"])[-runs:]
    if not model_runs:
        raise MeasurementError("onnxruntime's profile has no model_run event")
    nodes = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
    per_run: list[dict[str, float]] = []
    first: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for run in model_runs:
        start, end = run["ts"], run["ts"] + run["dur"]
        times: dict[str, float] = {}
        for e in nodes:
            if start <= e["ts"] <= end:
                name = str(e["name"])[: -len("_kernel_time")]
                times[name] = times.get(name, 0.0) + e["dur"] / 1000.0
                if name not in first:
                    first[name] = e
                    order.append(name)
        per_run.append(times)
    rows = []
    for name in order:
        args = first[name].get("args") or {}
        rows.append({"name": name, "op_type": args.get("op_name") or "", "provider": args.get("provider"),
                     "time_ms": statistics.median(r.get(name, 0.0) for r in per_run),
                     "input_shapes": shapes_of(args.get("input_type_shape")),
                     "output_shapes": shapes_of(args.get("output_type_shape"))})
    return rows, [r["dur"] / 1000.0 for r in model_runs]


def profile_operators(*, artifact: Path | str | None, model: Any, input_shape: tuple[int, ...], precision: str,
                      threads: int | None, options: dict[str, Any], runs: int) -> dict[str, Any]:
    """Profile the ONNX artifact with onnxruntime's session profiler.

    ``options``: the job's runtime options (``graph_optimization``, ``allow_spinning``) and ``warmup`` (untimed runs
    first, default 5).

    Returns:
        ``{"rows", "profiled_ms", "notes"}``: a row per node of the optimised graph (``name``, ``op_type``,
        ``time_ms`` (median), ``input_shapes``, ``output_shapes``, ``params`` (the parameters it reads: its module),
        ``scope`` (the module the exporter traced the node in, where onnxruntime kept its name),
        ``structural`` (gate or dynamic activation, by the graph's shape)); ``profiled_ms``: each profiled run's
        wall time; ``notes``.
    """
    import numpy as np

    from mobileone_bench.complexity_ops import GraphNode, structural_categories

    require_fp32(precision)
    if artifact is None:
        raise MeasurementError("onnxruntime needs the ONNX artifact")
    threads = threads or default_threads()
    warmup = int(options.get("warmup", 5))
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-ort-") as tmp:
        work = Path(tmp)
        session = _session(Path(artifact), threads, options, work)
        inp = session.get_inputs()[0]
        feed = {inp.name: np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)}
        outputs = [o.name for o in session.get_outputs()]
        for _ in range(warmup):
            session.run(outputs, feed)
        wall = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            session.run(outputs, feed)
            wall.append((time.perf_counter_ns() - t0) / 1e6)
        trace = session.end_profiling()
        events = json.loads(Path(trace).read_text(encoding="utf-8"))
        graph, graph_outputs = read_graph(work / "optimized.onnx") if (work / "optimized.onnx").exists() else ({}, [])
    rows, _ = read_profile(events, runs)
    exported = read_graph_nodes(artifact)
    notes = []
    nodes = []
    for row in rows:
        g = graph.get(row["name"])
        row["params"] = sorted(g["constants"]) if g else []
        source = original_name(row["name"], exported)
        if source and exported[source]["module"]:
            row["scope"] = exported[source]["module"]  # the module the exporter traced it in
        if g:
            nodes.append(GraphNode(row["name"], row["op_type"], g["inputs"], g["outputs"], row["input_shapes"],
                                   row["output_shapes"], g["constants"]))
    if not graph:
        notes.append("onnxruntime did not save its optimised graph: gates and dynamic activations are not told apart")
    found = structural_categories(nodes, graph_outputs)
    for row in rows:
        if row["name"] in found:
            row["structural"] = found[row["name"]]
    notes.append(f"onnxruntime session profiler: {len(rows)} nodes of the optimised graph "
                 f"(graph optimisation {options.get('graph_optimization', 'all')}), median of {runs} runs")
    return {"rows": rows, "profiled_ms": wall, "notes": notes}
