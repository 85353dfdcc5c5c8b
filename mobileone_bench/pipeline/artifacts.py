"""The artifacts a model is exported to: the one a runtime measures, exported (or reused from the artifact tree)
before the runner is made, and the formats of an export sweep.

A format that builds from another (TensorRT from ONNX) says so in its table entry
(:attr:`mobileone_bench.formats.FormatSpec.builds_from`): that format's artifact is exported (or reused) first and
handed over in the context, whatever the formats are.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.formats import FormatSpec
    from mobileone_bench.formats._base import ExportOptions, ExportResult
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.pipeline.preparing import Prepared

__all__ = ["artifact_for", "export_formats"]


def _source_context(result: ExportResult) -> dict[str, Any]:
    """What a format built from ``result``'s format finds in its context: the path and the manifest."""
    return {result.format: result.path, f"{result.format}_manifest": result.manifest}


def _export_source(prepared: Prepared, fmt: FormatSpec, out: Path, options: ExportOptions, force: bool,
                   context: dict[str, Any]) -> None:
    """Export (or reuse) the artifact ``fmt`` builds from, and those it builds from in turn, into ``context``.

    Raises:
        ExportError: A source's export failed (the artifact cannot be built without it).
    """
    from mobileone_bench.errors import ExportError
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats import _base

    if fmt.builds_from is None:
        return
    source = FORMATS[fmt.builds_from]
    _export_source(prepared, source, out, options, force, context)
    result = _base.export_one(prepared, source, out, replace(options, precision=None), force=force,
                              context=dict(context))
    if not result.ok:
        raise ExportError(f"{source.name} export: {result.error}")
    context.update(_source_context(result))


def artifact_for(prepared: Prepared, job: LatencyJob, force: bool) -> tuple[ExportResult | None, str | None]:
    """Export (or reuse) the artifact a runtime needs, after the artifacts it is built from.

    The artifact carries the job's precision (the format's default if it cannot carry it); a source artifact
    carries its format's default precision and default settings.

    Returns:
        ``(ExportResult, path)``, or ``(None, None)`` for a runtime that runs the PyTorch model.

    Raises:
        ExportError: The artifact, or one it is built from, could not be exported.
    """
    from mobileone_bench.devices import get_runtime
    from mobileone_bench.errors import ExportError
    from mobileone_bench.formats import FORMATS, format_module
    from mobileone_bench.formats import _base

    rt = get_runtime(job.device, job.runtime)
    if rt.artifact is None:
        return None, None
    fmt = FORMATS[rt.artifact]
    out = Path(job.models_dir)
    declared = {f.name for f in fields(format_module(fmt).Options)}  # a runtime option the format builds in
    options = _base.ExportOptions(precision=job.precision if job.precision in fmt.precisions else None,
                                  **{k: v for k, v in job.runtime_options if k in declared})  # (TensorRT: tf32)
    context: dict[str, Any] = {"out": str(out)}
    _export_source(prepared, fmt, out, options, force, context)
    result = _base.export_one(prepared, fmt, out, options, force=force, context=context)
    if not result.ok:
        raise ExportError(f"{fmt.name} export: {result.error}")
    return result, result.path


def export_formats(prepared: Prepared, formats: Sequence[FormatSpec], out: Path, options: ExportOptions, *,
                   force: bool = False) -> list[ExportResult]:
    """Export one prepared model to each of ``formats`` in order (an export sweep); a failure is a result.

    A format that builds from another gets that one's artifact: the result of this sweep when the source came
    earlier in ``formats`` (a failed source leaves it to fail with its own message), else the source exported (or
    reused) at its default precision with the same settings, which is not among the results.
    """
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats import _base

    context: dict[str, Any] = {"out": str(out)}
    results: list[ExportResult] = []
    for fmt in formats:
        source = fmt.builds_from
        if source is not None and source not in context:
            done = next((r for r in results if r.format == source), None)
            if done is None:
                done = _base.export_one(prepared, FORMATS[source], out, replace(options, precision=None),
                                        force=force)
            if done.ok:
                context.update(_source_context(done))
        result = _base.export_one(prepared, fmt, out, options, force=force, context=context)
        if result.ok:
            context.update(_source_context(result))
        results.append(result)
    return results
