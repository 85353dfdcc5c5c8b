"""The artifact a runtime measures: exported (or reused from the artifact tree) before the runner is made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.pipeline import LatencyJob, Prepared

__all__ = ["artifact_for"]


def artifact_for(prepared: Prepared, job: LatencyJob, force: bool) -> tuple[Any, Any]:
    """Export (or reuse) the artifact a runtime needs; returns (ExportResult or None, path or None)."""
    from pathlib import Path

    from mobileone_bench.devices import get_runtime
    from mobileone_bench.errors import ExportError
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one

    rt = get_runtime(job.device, job.runtime)
    if rt.artifact is None:
        return None, None
    out = Path(job.models_dir)
    context: dict[str, Any] = {"out": str(out)}
    if rt.artifact == "tensorrt":
        onnx = export_one(prepared, FORMATS["onnx"], out, ExportOptions(), force=force)
        if not onnx.ok:
            raise ExportError(f"onnx export: {onnx.error}")
        context.update(onnx=onnx.path, onnx_manifest=onnx.manifest)
    precision = job.precision if rt.artifact != "onnx" else "fp32"
    result = export_one(prepared, FORMATS[rt.artifact], out, ExportOptions(precision=precision), force=force,
                        context=context)
    if not result.ok:
        raise ExportError(f"{rt.artifact} export: {result.error}")
    return result, result.path
