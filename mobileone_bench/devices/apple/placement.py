"""Where Core ML runs each operation of a model: the compute plan the harness reports (``MLComputePlan``, iOS 17.4 /
macOS 14.4), read into the operator rows of :mod:`mobileone_bench.store.operators` and a short placement summary.

The harness writes one compute-plan document per model (``schema`` :data:`SCHEMA_NAME`), through the same three
channels as its reports: a ``MOBILEONE_BENCH_COMPUTE_PLAN {json}`` line, an attachment of the result bundle, and a
file in the app's ``Documents/reports``. A document is::

    {"schema": "mobileone-bench/compute-plan", "schema_version": 1, "harness_version": "0.3.0",
     "created": "2026-11-28T13:00:00Z", "device": {...the report's device...}, "model": "mobileone_s0",
     "file": "mobileone_s0.mlmodelc", "compute_units": "all",
     "status": "ok" | "unavailable" | "error", "error": null | "why",
     "structure": "program" | "neuralNetwork" | "pipeline" | "unsupported" | null,
     "operations": [{"function": "main", "name": "var_12", "operator": "ios17.conv",
                     "preferred": "neural_engine", "supported": ["cpu", "gpu", "neural_engine"], "cost": 0.0123}]}

``preferred`` and ``supported`` come from ``MLComputePlan.deviceUsage(for:)`` (``preferred`` is ``null`` for an
operation the plan places nowhere, such as a ``const``), ``cost`` from ``estimatedCost(of:)`` (``MLComputePlan.Cost
.weight``, the operation's share of the model's work, 0..1; ``null`` for neural-network layers, which have none).
``status`` is ``unavailable`` on an OS older than iOS 17.4 / macOS 14.4, with ``error`` saying so.

Plain values only: the records are made by :mod:`mobileone_bench.pipeline.phone`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable, Mapping

from mobileone_bench.errors import ReportError
from mobileone_bench.store.operators import CATEGORIES, operator_row

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "MARKER", "DEVICES", "MIL_CATEGORIES", "NN_CATEGORIES", "category",
           "conv_kinds", "parse_plan", "plan_in_line", "plans_in_text", "plans_in_folder", "read_files", "operator_rows",
           "summary", "unavailable_summary"]

SCHEMA_NAME = "mobileone-bench/compute-plan"
SCHEMA_VERSION = 1
#: The marker of a compute-plan line in the harness's output.
MARKER = "MOBILEONE_BENCH_COMPUTE_PLAN"
_MARKED = re.compile(re.escape(MARKER) + r" (\{.*)$")

#: The harness's device names -> the ``device`` of an operator row (a name a later Core ML adds is kept as it is).
DEVICES = {"cpu": "cpu", "gpu": "gpu", "neural_engine": "neural-engine"}

#: Core ML MIL operation types (without their ``iosNN.`` opset prefix) -> :data:`CATEGORIES`. A ``conv`` is a
#: dense convolution unless the caller knows better (:func:`operator_rows` takes the kinds the exported program
#: says: depthwise, pointwise, grouped).
MIL_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(("conv", "conv_transpose"), "dense-conv"),
    **dict.fromkeys(("linear", "matmul", "einsum"), "linear"),
    **dict.fromkeys(("scaled_dot_product_attention", "softmax"), "attention"),
    **dict.fromkeys(("batch_norm", "layer_norm", "instance_norm", "l2_norm", "local_response_norm"),
                    "normalization"),
    **dict.fromkeys(("relu", "relu6", "leaky_relu", "prelu", "gelu", "silu", "sigmoid", "sigmoid_hard", "tanh",
                     "elu", "softplus", "softsign", "thresholded_relu", "clamped_relu", "scaled_tanh", "erf",
                     "clip", "linear_activation", "softplus_parametric"), "activation"),
    **dict.fromkeys(("add", "sub", "mul", "real_div", "maximum", "minimum", "pow", "sqrt", "rsqrt", "exp", "log",
                     "abs", "inverse", "square", "floor_div", "mod", "select", "equal", "greater", "less",
                     "logical_and", "logical_not", "logical_or"), "elementwise"),
    **dict.fromkeys(("avg_pool", "max_pool", "l2_pool", "reduce_mean", "reduce_max", "reduce_sum", "reduce_min",
                     "reduce_prod", "reduce_l2_norm", "reduce_argmax"), "pooling"),
    **dict.fromkeys(("reshape", "transpose", "concat", "split", "slice_by_index", "slice_by_size", "squeeze",
                     "expand_dims", "pad", "cast", "identity", "gather", "gather_nd", "gather_along_axis",
                     "scatter", "tile", "upsample_nearest_neighbor", "upsample_bilinear", "resize_bilinear",
                     "resize_nearest_neighbor", "pixel_shuffle", "pixel_unshuffle", "space_to_depth",
                     "depth_to_space", "stack", "flatten2d", "shape", "reverse", "sliding_windows",
                     "crop_resize", "band_part", "fill", "range_1d", "one_hot"), "data-movement"),
}

#: Neural-network (``.mlmodel``) layer types -> :data:`CATEGORIES` (``MLModelStructure.NeuralNetwork.Layer.type``).
NN_CATEGORIES: dict[str, str] = {
    "convolution": "dense-conv", "innerProduct": "linear", "batchedMatmul": "linear", "batchnorm": "normalization",
    "activation": "activation", "add": "elementwise", "multiply": "elementwise", "pooling": "pooling",
    "reshape": "data-movement", "permute": "data-movement", "concat": "data-movement", "flatten": "data-movement",
    "softmax": "attention", "padding": "data-movement", "reduce": "pooling",
}


def _base(op_type: str) -> str:
    """``ios17.conv`` -> ``conv``."""
    return re.sub(r"^ios\d+\.", "", op_type.strip())


def category(op_type: str, *, structure: str = "program", conv_kind: str | None = None) -> str:
    """The :data:`CATEGORIES` entry of a Core ML operation type (MIL, or a neural-network layer type); ``conv_kind``
    (``depthwise-conv``, ``pointwise-conv``, ``grouped-conv``, ``dense-conv``) overrides a convolution's."""
    if structure == "neuralNetwork":
        found = NN_CATEGORIES.get(op_type, "other")
    else:
        found = MIL_CATEGORIES.get(_base(op_type), "other")
    if found == "dense-conv" and conv_kind in CATEGORIES and str(conv_kind).endswith("-conv"):
        return str(conv_kind)
    return found


# -------------------------------------------------------------------------------------------------- reading


def parse_plan(doc: Any, where: str) -> dict[str, Any]:
    """A compute-plan document, checked (``where`` names the file or line in the one-line error).

    Raises:
        ReportError: Not a compute-plan document of this version, or a malformed operation.
    """
    if not isinstance(doc, Mapping) or doc.get("schema") != SCHEMA_NAME:
        raise ReportError(f"{where}: not a compute plan (schema {SCHEMA_NAME!r})")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ReportError(f"{where}: compute plan schema_version {doc.get('schema_version')!r}; this version reads "
                          f"{SCHEMA_VERSION}")
    for key in ("model", "status", "created"):
        if not isinstance(doc.get(key), str):
            raise ReportError(f"{where}: compute plan without {key}")
    if doc["status"] not in ("ok", "unavailable", "error"):
        raise ReportError(f"{where}: compute plan status {doc['status']!r} (ok, unavailable or error)")
    operations = doc.get("operations") or []
    if not isinstance(operations, list):
        raise ReportError(f"{where}: compute plan operations is not a list")
    for i, op in enumerate(operations):
        if not isinstance(op, Mapping) or not isinstance(op.get("operator"), str):
            raise ReportError(f"{where}: /operations/{i}: an operation needs its operator")
        if op.get("preferred") is not None and not isinstance(op["preferred"], str):
            raise ReportError(f"{where}: /operations/{i}/preferred: {op['preferred']!r} is not a device name")
        cost = op.get("cost")
        if cost is not None and (not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0):
            raise ReportError(f"{where}: /operations/{i}/cost: {cost!r} is not a cost (a number >= 0)")
    return dict(doc)


def plan_in_line(line: str, where: str) -> dict[str, Any] | None:
    """The compute plan carried by one ``MOBILEONE_BENCH_COMPUTE_PLAN {json}`` line, or ``None`` for another line.

    Raises:
        ReportError: A marked line whose JSON is broken or not a compute plan.
    """
    match = _MARKED.search(line.rstrip())
    if not match:
        return None
    try:
        doc = json.loads(match.group(1))
    except ValueError as exc:
        raise ReportError(f"{where}: not valid JSON ({exc})") from None
    return parse_plan(doc, where)


def plans_in_text(text: str, where: str) -> list[dict[str, Any]]:
    """The compute plans of a log (its marked lines) or of one JSON document (an exported attachment or the app's
    file); none when the text is neither."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return []
        return [parse_plan(doc, where)] if isinstance(doc, Mapping) and doc.get("schema") == SCHEMA_NAME else []
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        plan = plan_in_line(line, f"{where} line {number}")
        if plan is not None:
            out.append(plan)
    return out


# ------------------------------------------------------------------------------------------------- rows, summary


def operator_rows(plan: Mapping[str, Any], conv_kinds: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The operator rows (:func:`mobileone_bench.store.operators.operator_row`) of a compute plan: one per operation
    the plan places on a device (``const`` and other unplaced operations are left out), ``device`` its preferred
    device, ``supported_devices`` the others it could run on, ``cost`` the plan's estimate and ``share`` the cost
    over the placed operations' total. ``conv_kinds`` maps an operation's name to the kind of its convolution
    (from the exported program, :func:`conv_kinds`; default: the plan's own ``conv_kinds`` entry, when the
    executor added one)."""
    structure = str(plan.get("structure") or "program")
    conv_kinds = conv_kinds if conv_kinds is not None else plan.get("conv_kinds")
    placed = [op for op in plan.get("operations") or [] if op.get("preferred") is not None]
    total = sum(float(op.get("cost") or 0.0) for op in placed)
    rows = []
    for op in placed:
        cost = op.get("cost")
        name = str(op.get("name") or op["operator"])
        rows.append(operator_row(
            name=name, op_type=str(op["operator"]),
            category=category(str(op["operator"]), structure=structure,
                              conv_kind=(conv_kinds or {}).get(name)),
            share=(float(cost) / total) if cost is not None and total > 0 else None,
            device=DEVICES.get(op["preferred"], str(op["preferred"])),
            supported_devices=[DEVICES.get(d, str(d)) for d in op.get("supported") or []],
            cost=float(cost) if cost is not None else None))
    return rows


def summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The placement in a few fields, for the latency record: how many operations each device runs
    (``placement_ops_neural_engine`` / ``_gpu`` / ``_cpu``), their cost shares (``placement_cost_neural_engine``
    ...; ``None`` without costs), and the operations that fall off the Neural Engine (``placement_off_neural_engine``:
    ``op_type name -> device`` of each that runs elsewhere although it is an operation of the plan, at most 20, and
    how many in ``placement_off_neural_engine_count``)."""
    rows = list(rows)
    costed = [r for r in rows if r.get("cost") is not None]
    total = sum(float(r["cost"]) for r in costed)
    out: dict[str, Any] = {"placement": "compute-plan", "placement_ops": len(rows)}
    for device in ("neural-engine", "gpu", "cpu"):
        key = device.replace("-", "_")
        mine = [r for r in rows if r.get("device") == device]
        out[f"placement_ops_{key}"] = len(mine)
        out[f"placement_cost_{key}"] = (sum(float(r["cost"]) for r in mine if r.get("cost") is not None) / total
                                        if total > 0 else None)
    off = [r for r in rows if r.get("device") != "neural-engine"]
    out["placement_off_neural_engine_count"] = len(off)
    out["placement_off_neural_engine"] = [f"{r['op_type']} {r['name']} -> {r['device']}" for r in off[:20]]
    return out


def unavailable_summary(plan: Mapping[str, Any] | None) -> dict[str, Any]:
    """The placement fields of a latency record without a usable plan: ``placement`` ``unavailable`` and why (an
    OS older than iOS 17.4 / macOS 14.4, a plan that failed to load, or no plan reported at all)."""
    if plan is None:
        return {"placement": "unavailable", "placement_error": "the harness reported no compute plan"}
    return {"placement": "unavailable",
            "placement_error": str(plan.get("error") or f"compute plan {plan.get('status')}")}


def plans_in_folder(folder: Any, warn: Any) -> list[dict[str, Any]]:
    """The compute plans among the files the app wrote into ``Documents/reports`` (copied into ``folder``); a broken
    one is a warning (``warn``) and is skipped."""
    from pathlib import Path

    out: list[dict[str, Any]] = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        try:
            out += plans_in_text(path.read_text(encoding="utf-8-sig", errors="replace"), str(path))
        except ReportError as exc:
            warn(str(exc))
    return out


def read_files(paths: list[str], channel: str) -> tuple[list[tuple[str, dict[str, Any]]],
                                                        dict[tuple[str, str | None], dict[str, Any]]]:
    """The runs and compute plans of report files and logs given by hand (``--from-report``): ``[(path, run)]``
    and the plans by ``(model, created)`` and by ``(model, None)``, each marked as delivered by ``channel``. A file
    holding only a compute plan holds no report.

    Raises:
        ReportError: As :func:`mobileone_bench.devices.apple.report.read_reports`, or a broken compute plan.
    """
    from pathlib import Path

    from mobileone_bench.devices.apple.report import read_reports

    runs: list[tuple[str, dict[str, Any]]] = []
    plans: dict[tuple[str, str | None], dict[str, Any]] = {}
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
        except OSError:
            text = ""  # read_reports says why
        found = plans_in_text(text, str(path))
        for plan in found:
            plan = {**plan, "channel": channel}
            plans.setdefault((plan["model"], plan.get("created")), plan)
            plans.setdefault((plan["model"], None), plan)
        if found and text.lstrip().startswith("{"):
            continue
        runs += [(str(path), {**run, "channel": channel}) for run in read_reports(path)]
    return runs, plans


def _conv_kind(weight_shape: list[int | None], groups: int) -> str:
    """The category of a convolution from its weight shape ``[C_out, C_in / groups, kH, kW]`` and ``groups``."""
    per_group = weight_shape[1] if len(weight_shape) > 1 else None
    kernel = [d for d in weight_shape[2:]]
    if groups > 1:
        return "depthwise-conv" if per_group == 1 else "grouped-conv"
    if kernel and all(d == 1 for d in kernel):
        return "pointwise-conv"
    return "dense-conv"


def conv_kinds(package: Any) -> dict[str, str]:
    """The kind of every convolution of an exported ML program (``.mlpackage``), by the name of its output (what
    the compute plan names an operation by): depthwise, grouped, pointwise or dense, from its weight's shape and
    its ``groups``, read from the package's MIL program with ``coremltools`` (no Core ML prediction needed, so it
    works on any host). Empty when the package cannot be read or is not an ML program: the plan's convolutions then
    stay dense."""
    try:
        import coremltools

        spec = coremltools.utils.load_spec(str(package))
    except Exception:  # noqa: BLE001 - no package, no coremltools, not a program: the kinds are unknown
        return {}
    out: dict[str, str] = {}
    if not spec.HasField("mlProgram"):
        return out
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            _block_conv_kinds(block, out)
    return out


def _block_conv_kinds(block: Any, out: dict[str, str]) -> None:
    shapes: dict[str, list[int | None]] = {}
    ints: dict[str, list[int]] = {}
    for op in block.operations:
        for output in op.outputs:
            dims = output.type.tensorType.dimensions
            shapes[output.name] = [int(d.constant.size) if d.HasField("constant") else None for d in dims]
        if op.type == "const" and op.outputs and "val" in op.attributes:
            value = op.attributes["val"]
            if value.HasField("immediateValue") and value.immediateValue.HasField("tensor"):
                ints[op.outputs[0].name] = [int(v) for v in value.immediateValue.tensor.ints.values]
        if op.type in ("conv", "conv_transpose") and op.outputs and "weight" in op.inputs:
            weight = op.inputs["weight"].arguments[0]
            shape = shapes.get(weight.name) if weight.HasField("name") else None
            groups = 1
            if "groups" in op.inputs:
                binding = op.inputs["groups"].arguments[0]
                if binding.HasField("name"):
                    groups = (ints.get(binding.name) or [1])[0]
                elif binding.value.HasField("immediateValue"):
                    groups = ([int(v) for v in binding.value.immediateValue.tensor.ints.values] or [1])[0]
            if shape:
                out[op.outputs[0].name] = _conv_kind(shape, groups)
        for inner in op.blocks:
            _block_conv_kinds(inner, out)
