"""The TensorRT runtime (the GPU's default, as the paper: fp16, batch 1): the engine artifact, deserialized with its
buffers on the GPU, replayed from a CUDA graph (``options["cuda_graphs"]``, the default; or enqueued every run),
timed with CUDA events on the engine's stream. :func:`profile_operators` times each of the engine's layers with
TensorRT's ``IProfiler`` and names the precision the engine inspector says it runs at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mobileone_bench.devices._tensorrt import TensorRTEngine, median_rows
from mobileone_bench.devices._trt_layers import annotate, read_graph_nodes
from mobileone_bench.errors import MeasurementError

__all__ = ["make_runner", "profile_operators", "engine_manifest"]


def engine_manifest(artifact: Path) -> dict[str, Any]:
    """The export manifest next to an engine (``{}`` when there is none): what the engine was built with."""
    try:
        return json.loads((Path(artifact).parent / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _built_with(artifact: Path, options: dict[str, Any]) -> dict[str, Any]:
    """How the engine was built (its manifest: typing, ONNX dtype, TF32), for the record. TF32 is decided when the
    engine is built: a job asking otherwise than its engine was built is refused."""
    builder = (engine_manifest(artifact).get("format_meta") or {}).get("builder") or {}
    built, wanted = builder.get("tf32"), options.get("tf32")
    if built is not None and wanted is not None and bool(built) != bool(wanted):
        raise MeasurementError(f"the engine {artifact} was built with TF32 {'on' if built else 'off'}, and the job "
                               f"asks for it {'on' if wanted else 'off'}: export it again with "
                               f"{'--tf32' if wanted else '--no-tf32'}")
    return {"tf32": built, "typing": builder.get("typing"), "onnx_dtype": builder.get("onnx_dtype")}


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> TensorRTEngine:
    """The TensorRT engine artifact, ready to time: replayed from a CUDA graph unless ``options["cuda_graphs"]`` is
    false."""
    if artifact is None:
        raise MeasurementError("the tensorrt runtime needs the TensorRT engine artifact")
    facts = _built_with(Path(artifact), options)
    return TensorRTEngine(Path(artifact), cuda_graph=bool(options.get("cuda_graphs", True)), facts=facts)


def profile_operators(*, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                      threads: int | None, options: dict[str, Any], runs: int) -> dict[str, Any]:
    """Each layer of the engine, timed by TensorRT's ``IProfiler`` over ``runs`` launches.

    Returns:
        ``{"rows": [{"name", "op_type", "time_ms", "precision"}], "profiled_ms": [...], "notes": [...]}``: one row
        per engine layer (TensorRT's fused layers, named after the ONNX nodes they hold; ``op_type`` is TensorRT's
        layer type, ``precision`` the engine inspector's), ``time_ms`` the median over the runs; ``profiled_ms`` the
        layers' total of each run.
    """
    if artifact is None:
        raise MeasurementError("the tensorrt runtime needs the TensorRT engine artifact")
    if runs < 1:
        raise MeasurementError("profiling needs at least one run")
    engine = TensorRTEngine(Path(artifact), cuda_graph=False)
    try:
        engine.time(3, 1)  # warm (clocks, caches) before the profiled launches
        profiled = engine.profile(runs)
        layers = engine.layers()
    finally:
        engine.close()
    rows = median_rows(layers, profiled["layers"])
    notes = ["TensorRT IProfiler per-layer times (each launch enqueued: a profiled launch is not replayed from a CUDA "
             "graph); the rows are the engine's fused layers, not ONNX nodes",
             "precision: the engine inspector's output format of each layer"]
    if not any(r["precision"] for r in rows):
        notes.append("the engine holds no per-layer detail (built without ProfilingVerbosity.DETAILED)")
    notes.append(_read_back(rows, Path(artifact)))
    return {"rows": rows, "profiled_ms": profiled["profiled_ms"], "notes": notes}


def source_graph(artifact: Path) -> tuple[Path | None, str]:
    """The ONNX graph an engine was built from (its manifest's ``builder.onnx``, else the fp16 graph beside it) and
    the prefix its module names carry (``inner.`` in the fp16 graph); ``(None, "")`` when it is gone."""
    meta = engine_manifest(artifact).get("format_meta") or {}
    prefix = str((meta.get("fp16_onnx") or {}).get("module_prefix") or "")
    for candidate in ((meta.get("builder") or {}).get("onnx"), Path(artifact).parent / "model.fp16.onnx"):
        if candidate and Path(candidate).is_file():
            return Path(candidate), prefix
    return None, ""


def _read_back(rows: list[dict[str, Any]], artifact: Path) -> str:
    """Map each layer to its ONNX nodes and modules (:func:`mobileone_bench.devices._trt_layers.annotate`), in
    place; one note says how."""
    graph_path, prefix = source_graph(artifact)
    graph = read_graph_nodes(graph_path, prefix) if graph_path is not None else {}
    counts = annotate(rows, graph)
    how = (f"layers read back to the ONNX graph's nodes: {counts['metadata']} by their metadata, {counts['name']} by "
           f"their name, {counts['inserted']} inserted by TensorRT (reformat, copy)")
    if counts["unmapped"]:
        how += (f"; {counts['unmapped']} categorised by TensorRT's layer type only"
                + ("" if graph else " (the ONNX graph the engine was built from is not beside it)"))
    return how
