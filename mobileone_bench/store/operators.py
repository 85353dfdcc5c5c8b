"""The per-operator breakdown of a model on one runtime: one schema for every source of it.

A breakdown is a record of kind ``explain`` (made by :mod:`mobileone_bench.pipeline.recording`, like every record).
Whoever produced it (a host runtime's profiler, TensorRT's per-layer profiler, Core ML's ``MLComputePlan`` on an
iPhone or a Mac), the record has the same fields, so one table, one figure and the HTML report read them all:

* identity: ``model``, ``device``, ``runtime``, ``precision``, ``input_shape``, threads, runs, runtime options,
  machine and library versions (a latency measurement's identity, ``pipeline.recording.latency_identity``, and
  ``profiled_runs``); ``artifact_sha256`` (what ran) is a field, known once the artifact is exported;
* ``source``: what produced the rows (:data:`SOURCES`);
* ``operators``: the rows (a list, stored as compact JSON like every list field; :func:`operator_rows` reads it
  back), each with the fields of :data:`OPERATOR_FIELDS`;
* ``categories``: the rows summed per category (:func:`category_totals`), an object ``{category: {...}}``;
* the profile's honesty, where the source measures time: ``total_op_ms`` (the operators' times summed),
  ``e2e_ms`` (the median of an unprofiled run of the same artifact in the same process), ``coverage``
  (``total_op_ms / e2e_ms``), ``coverage_ok`` and ``profiler_overhead`` (profiled median / unprofiled median - 1);
  ``flops`` (the model's, as ``profile`` counts it), ``unmapped_flops`` (what no operator could be given),
  ``peak_gflops`` (the stored peak the rows' GFLOP/s are held against), ``notes``.

Sources that estimate rather than time (Core ML's compute plan gives a relative cost per operation) leave
``time_ms`` empty and fill ``cost``; shares are then cost shares, and the record says so by its ``source``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from mobileone_bench.stats import finite_or_none
__all__ = ["KIND", "CATEGORIES", "SOURCES", "OPERATOR_FIELDS", "COVERAGE_RANGE", "operator_row", "operator_rows",
           "category_totals"]

#: The kind of a per-operator record.
KIND = "explain"

#: Where an operator's time goes, in the order tables and figures show them.
CATEGORIES = (
    "dense-conv",        # a convolution with groups == 1 and a kernel larger than 1x1
    "depthwise-conv",    # groups == in_channels (and > 1)
    "pointwise-conv",    # a 1x1 convolution, groups == 1
    "grouped-conv",      # 1 < groups < in_channels
    "linear",            # Linear / MatMul / Gemm outside attention
    "attention",         # the matmuls and softmax of self-attention
    "normalization",     # BatchNorm/LayerNorm/GroupNorm left in the graph
    "activation",        # ReLU, GELU, Hardswish, Sigmoid used as an activation...
    "gating",            # squeeze-excite and other input-dependent gates (global pool -> FC -> sigmoid -> mul)
    "dynamic-activation",  # Dynamic ReLU, Dynamic Shift-Max: activations whose parameters depend on the input
    "elementwise",       # Add / Mul merging branches, residual adds
    "pooling",           # average / max / global pooling
    "data-movement",     # reshape, transpose, concat, split, copy, pad, layout conversion
    "other",
)

#: What produced a breakdown: a runtime's profiler timing each operator, or an estimate (Core ML's compute plan).
SOURCES = ("profiler", "compute-plan")

#: The fields of one operator row (``None`` where the source does not know).
OPERATOR_FIELDS = (
    "name",        # the runtime's own node / layer name
    "op_type",     # the runtime's op type (Conv, aten::conv2d, ios17.conv ...)
    "category",    # one of CATEGORIES
    "time_ms",     # median time over the profiled runs (None: the source does not time operators)
    "share",       # share of the model's total (time, or cost for a compute plan), 0..1
    "flops",       # FLOPs of the operator (multiply-accumulates, the counting rules of `profile`), None if unmapped
    "gflops_per_s",  # 2 x flops / time (GFLOP/s: two operations per multiply-add, as roofline), None without both
    "device",      # where it ran (cpu, gpu, neural-engine...) when the source says so
    "supported_devices",  # Core ML: the compute devices that could run it (a list), else None
    "cost",        # Core ML: the compute plan's estimated relative cost (0..1), else None
    "precision",   # the precision the runtime chose for it (TensorRT's engine inspector), when known
)

#: Coverage (sum of operator times / unprofiled end-to-end median) outside this range is flagged: the profile then
#: misses time (or counts some twice) and its shares should be read with that in mind. A warning threshold, wider
#: than benchmarks/explain.py's target (0.9-1.1): torch eager's Python between operators and a profiler's own cost
#: per node move coverage by 10-20% on small models without changing which categories dominate.
COVERAGE_RANGE = (0.8, 1.25)


def operator_row(**fields: Any) -> dict[str, Any]:
    """One operator row with every field of :data:`OPERATOR_FIELDS` (missing ones ``None``).

    Raises:
        ValueError: An unknown field or category.
    """
    unknown = set(fields) - set(OPERATOR_FIELDS)
    if unknown:
        raise ValueError(f"unknown operator field(s): {', '.join(sorted(unknown))}")
    row = {k: fields.get(k) for k in OPERATOR_FIELDS}
    if row["category"] is None:
        row["category"] = "other"
    if row["category"] not in CATEGORIES:
        raise ValueError(f"unknown operator category {row['category']!r}; one of {', '.join(CATEGORIES)}")
    return row


def operator_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The operator rows of an ``explain`` record (stored as compact JSON), each with every field."""
    from mobileone_bench.store.records import as_list

    out = []
    for row in as_list(record.get("operators")):
        if isinstance(row, Mapping):
            out.append({k: row.get(k) for k in OPERATOR_FIELDS})
    return out


def category_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows summed per category, in :data:`CATEGORIES` order (categories with no operator left out):
    ``{category: {"count", "time_ms", "share", "flops", "flop_share", "cost"}}``. Shares are of the time when every
    row has one, else of the cost."""
    rows = list(rows)
    timed = bool(rows) and all(finite_or_none(r.get("time_ms")) is not None for r in rows)
    weight = "time_ms" if timed else "cost"
    total_w = sum(finite_or_none(r.get(weight)) or 0.0 for r in rows)
    total_f = sum(finite_or_none(r.get("flops")) or 0.0 for r in rows)
    out: dict[str, dict[str, Any]] = {}
    for cat in CATEGORIES:
        mine = [r for r in rows if r.get("category") == cat]
        if not mine:
            continue
        w = sum(finite_or_none(r.get(weight)) or 0.0 for r in mine)
        f = sum(finite_or_none(r.get("flops")) or 0.0 for r in mine)
        out[cat] = {
            "count": len(mine),
            "time_ms": w if timed else None,
            "cost": None if timed else w,
            "share": w / total_w if total_w > 0 else None,
            "flops": f,
            "flop_share": f / total_f if total_f > 0 else None,
        }
    return out
