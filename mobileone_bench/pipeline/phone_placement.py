"""Core ML's compute plan next to a phone's (or Mac's) latency record: the placement summary the latency record
carries, and the per-operation breakdown stored as a record of kind ``explain`` (``source="compute-plan"``,
:mod:`mobileone_bench.store.operators`) through :func:`mobileone_bench.pipeline.recording.append_record`.

The harness reports the plan (:mod:`mobileone_bench.devices.apple.placement`); the Apple executor
(:mod:`mobileone_bench.pipeline.phone`) calls :func:`placement_fields` for the latency record and
:func:`store_plan` once that record is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from mobileone_bench.devices.apple import placement
from mobileone_bench.pipeline import recording
from mobileone_bench.store.operators import KIND, category_totals

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.store.records import ResultsStore

__all__ = ["placement_fields", "explain_identity", "store_plan", "plans_by_model"]


def plans_by_model(plans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Harness model name -> its compute plan (the first given)."""
    out: dict[str, dict[str, Any]] = {}
    for plan in plans:
        out.setdefault(str(plan["model"]), plan)
    return out


def placement_fields(plan: Mapping[str, Any] | None) -> dict[str, Any]:
    """The placement fields of a latency record: operation counts and cost shares on the Neural Engine, GPU and CPU
    and the operations that fall off the Neural Engine (:func:`~mobileone_bench.devices.apple.placement.summary`),
    or ``placement: unavailable`` and why (an OS older than iOS 17.4 / macOS 14.4, no plan reported)."""
    if plan is None or plan.get("status") != "ok":
        return placement.unavailable_summary(plan)
    return placement.summary(placement.operator_rows(plan))


def explain_identity(latency: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a compute-plan breakdown: what ran (model, device, runtime, precision, input shape, the
    artifact's hash, the machine and phone, the compute units and OS) and its source."""
    options = latency.get("runtime_options")
    units = options.get("compute_units") if isinstance(options, Mapping) else latency.get("compute_units")
    return {"model": latency.get("model"), "device": latency.get("device"), "runtime": latency.get("runtime"),
            "precision": latency.get("precision"), "input_shape": latency.get("input_shape"),
            "artifact_sha256": latency.get("artifact_sha256"), "machine": latency.get("machine"),
            "device_id": latency.get("device_id"), "compute_units": units or latency.get("compute_units"),
            "os": latency.get("env_os"), "source": "compute-plan"}


def store_plan(store: ResultsStore, latency: Mapping[str, Any], plan: Mapping[str, Any] | None, *,
               force: bool) -> dict[str, Any] | None:
    """Store the ``explain`` record of a usable compute plan, next to its stored latency record; returns it (the
    stored one when this plan is stored already), or ``None`` without a usable plan.

    The record follows :mod:`mobileone_bench.store.operators`: ``operators`` (one row per placed operation: name,
    op type, category, preferred device, supported devices, estimated cost, cost share), ``categories``, no times
    (``total_op_ms``, ``e2e_ms``, ``coverage`` are ``None``: a compute plan estimates, it does not time), and the
    placement summary of the latency record.
    """
    if plan is None or plan.get("status") != "ok":
        return None
    identity = explain_identity(latency)
    existing = recording.stored(store, KIND, identity, force=force, same_run=("plan_created", plan.get("created")))
    if existing is not None:
        return existing
    rows = placement.operator_rows(plan)
    fields = {
        "status": "ok", "error": None, "source": "compute-plan",
        "operators": rows, "categories": category_totals(rows),
        "total_op_ms": None, "e2e_ms": None, "coverage": None, "coverage_ok": None, "profiler_overhead": None,
        "plan_structure": plan.get("structure"), "plan_created": plan.get("created"),
        "plan_operations": len(plan.get("operations") or []),
        "harness_version": plan.get("harness_version"), "harness_model": plan.get("model"),
        "report_channel": plan.get("channel"), "latency_record_id": latency.get("record_id"),
        **placement.summary(rows),
    }
    env = {k: v for k, v in latency.items() if str(k).startswith("env_")}
    return recording.append_record(store, KIND, identity, fields, env)
