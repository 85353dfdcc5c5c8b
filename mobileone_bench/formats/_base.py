"""What every export format shares: options, artifact folders, manifests, the cache, and the status of a sweep.

Layout: ``<out>/<model>/<format>-<precision>-<H>x<W>[-flags]/`` holding the artifact and a ``manifest.json`` that
records the model, weights hash, input shape, precision, re-parameterization, format settings, tool and library
versions, the parity result, the sha256 of every file, and the export time. An export whose inputs and versions match
an existing manifest (and whose files still hash the same) is skipped; ``force`` redoes it.

A new artifact is written into a temporary sibling folder and moved into place only when complete, so an interrupted
export never leaves a half-written artifact that the cache would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mobileone_bench.errors import BenchError, UsageError, one_line
from mobileone_bench.formats import FORMATS, FormatSpec, format_module, load_format

__all__ = [
    "FormatOptions",
    "ExportOptions",
    "FormatOutput",
    "ExportResult",
    "artifact_dir",
    "safe_name",
    "tree_sha256",
    "read_manifest",
    "export_one",
    "ensure_writable",
    "EXPORTED",
    "CACHED",
    "PARITY_FAILED",
    "FAILED",
    "UNAVAILABLE",
]

MANIFEST = "manifest.json"
EXPORTED, CACHED, PARITY_FAILED, FAILED, UNAVAILABLE = "exported", "cached", "parity failed", "failed", "unavailable"


@dataclass(frozen=True)
class FormatOptions:
    """The settings every format shares; each format module's ``Options`` adds its own fields to these.

    A format's options validate themselves (:meth:`validate`), say what enters its manifest and cache key
    (:meth:`settings`) and which flags its artifact folder's name carries (:meth:`folder_flags`).

    Attributes:
        precision: What was asked for; ``None`` = the format's default.
        atol: Absolute tolerance of the parity check.
        rtol: Tolerance relative to the largest absolute reference output.
    """

    precision: str | None = None
    atol: float = 1e-4
    rtol: float = 1e-3

    def validate(self) -> None:
        """Raise :class:`UsageError` (one line) for a setting this format cannot take."""

    def tolerances(self) -> dict[str, Any]:
        """The parity tolerances, as every format's settings hold them."""
        return {"atol": self.atol, "rtol": self.rtol}

    def settings(self) -> dict[str, Any]:
        """The settings that enter the manifest and the cache key."""
        return self.tolerances()

    def folder_flags(self, precision: str) -> list[str]:
        """Flags appended to the artifact folder's name (``dynbatch``, ``image``...) for an export at ``precision``."""
        return []


def _options_class(fmt: FormatSpec) -> type[FormatOptions]:
    return format_module(fmt).Options


def _format_fields() -> list[str]:
    """The per-format option names, sorted (a name two formats declare, as ONNX's and TensorRT's opset, once)."""
    common = {f.name for f in fields(FormatOptions)}
    return sorted({f.name for fmt in FORMATS.values() for f in fields(_options_class(fmt))} - common)


@dataclass(frozen=True, init=False)
class ExportOptions:
    """Settings of an export, for every format at once (what the API and the CLI build).

    The common settings are fields; each format's own settings are given by keyword (``opset=17``,
    ``coreml_type="neuralnetwork"``, ``calibration_images="imgs/"``...) and belong to the format modules' ``Options``,
    which :meth:`for_format` builds. A keyword no format declares is a :class:`TypeError`, as for any dataclass.

    Attributes:
        precision: ``fp32``, ``fp16`` or ``int8``; ``None`` = each format's default (ONNX fp32, Core ML and TensorRT
            fp16, ExecuTorch fp32).
        atol: Absolute tolerance of the parity check.
        rtol: Tolerance relative to the largest absolute reference output.
        per_format: The per-format settings given, as sorted ``(name, value)`` pairs.
    """

    precision: str | None = None
    atol: float = 1e-4
    rtol: float = 1e-3
    per_format: tuple[tuple[str, Any], ...] = ()

    def __init__(self, precision: str | None = None, atol: float = 1e-4, rtol: float = 1e-3,
                 per_format: tuple[tuple[str, Any], ...] = (), **format_fields: Any):
        given = {**dict(per_format), **format_fields}
        known = _format_fields()
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise TypeError(f"ExportOptions got unexpected keyword argument(s) {', '.join(map(repr, unknown))} "
                            f"(the formats' settings: {', '.join(known)})")
        object.__setattr__(self, "precision", precision)
        object.__setattr__(self, "atol", atol)
        object.__setattr__(self, "rtol", rtol)
        object.__setattr__(self, "per_format", tuple(sorted(given.items())))

    def for_format(self, fmt: FormatSpec) -> FormatOptions:
        """``fmt``'s own options: the common settings plus the per-format ones it declares."""
        cls = _options_class(fmt)
        own = {f.name for f in fields(cls)}
        return cls(precision=self.precision, atol=self.atol, rtol=self.rtol,
                   **{k: v for k, v in self.per_format if k in own})

    def validate(self) -> None:
        """Check the precision and every format's settings (one line for the first problem), before any work."""
        known = list(dict.fromkeys(p for fmt in FORMATS.values() for p in fmt.precisions))
        if self.precision is not None and self.precision not in known:
            raise UsageError(f"unknown precision {self.precision!r}; choose {', '.join(known[:-1])} or {known[-1]}")
        for fmt in FORMATS.values():
            self.for_format(fmt).validate()

    def precision_for(self, fmt: FormatSpec) -> str:
        """The precision this export uses for ``fmt``, or a one-line error if the format cannot carry it."""
        precision = self.precision or fmt.default_precision
        if precision not in fmt.precisions:
            owners = [f.name for f in FORMATS.values() if precision in f.precisions]
            note = (f"; {precision} is the {owners[0]} format's (--format {owners[0]} --precision {precision})"
                    if len(owners) == 1 else f"; {fmt.refusal_note}" if fmt.refusal_note else "")
            raise UsageError(f"{fmt.name} artifacts cannot be {precision} (supported: {', '.join(fmt.precisions)})"
                             + note)
        return precision


@dataclass
class FormatOutput:
    """What a format module returns.

    Attributes:
        main_file: Name of the artifact inside the work folder (file or bundle directory).
        parity: Parity result (``passed``, errors, ``method``...).
        meta: Format-specific facts for the manifest (opset, exporter used, spec summary...).
    """

    main_file: str
    parity: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportResult:
    """One model x format outcome of a sweep (what the summary table shows)."""

    model: str
    format: str
    precision: str
    status: str
    path: str | None = None
    manifest: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in (EXPORTED, CACHED)

    def as_row(self) -> dict[str, Any]:
        parity = (self.manifest or {}).get("parity") or {}
        size = (self.manifest or {}).get("size_bytes")
        return {
            "model": self.model, "format": self.format, "precision": self.precision, "status": self.status,
            "parity": parity.get("summary"), "max_abs_err": parity.get("max_abs_err"),
            "size_mb": round(size / 1e6, 2) if size else None, "seconds": round(self.seconds, 1),
            "path": self.path, "error": self.error,
        }


def safe_name(name: str) -> str:
    """A model name as a folder name (``timm:mobilevit_xs`` -> ``timm__mobilevit_xs``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name.replace(":", "__"))


def artifact_dir(out: Path, model: str, fmt: FormatSpec, precision: str, input_shape: tuple[int, ...],
                 options: ExportOptions | FormatOptions, reparameterized: bool) -> Path:
    """``<out>/<model>/<format>-<precision>-<H>x<W>[-flags]`` (the flags are the format options' own)."""
    own = options.for_format(fmt) if isinstance(options, ExportOptions) else options
    parts = [fmt.name, precision, f"{input_shape[2]}x{input_shape[3]}", *own.folder_flags(precision)]
    if not reparameterized:
        parts.append("train")
    return Path(out) / safe_name(model) / "-".join(parts)


def tree_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory bundle (relative names and contents, sorted)."""
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode())
        h.update(tree_sha256(p).encode())
    return h.hexdigest()


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of an artifact folder, or ``None`` if absent or unreadable."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cache_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _identity(prepared: Any, fmt: FormatSpec, precision: str, options: FormatOptions,
              versions: dict[str, Any]) -> dict[str, Any]:
    spec = prepared.spec
    return {
        "model": spec.name, "target": spec.target, "patches": list(spec.patches),
        "weights_sha256": prepared.weights_sha256, "input_shape": list(prepared.input_shape),
        "precision": precision, "reparameterized": prepared.reparameterized, "format": fmt.name,
        "options": options.settings(), "versions": versions,
    }


def _cache_hit(folder: Path, key: str) -> dict[str, Any] | None:
    manifest = read_manifest(folder)
    if not manifest or manifest.get("cache_key") != key:
        return None
    main = folder / manifest.get("artifact", "")
    if not manifest.get("artifact") or not main.exists() or tree_sha256(main) != manifest.get("sha256"):
        return None
    return manifest


def _versions(fmt: FormatSpec) -> dict[str, Any]:
    """The tool's version, the installed versions of the format's libraries, and the GPU for a format built on one."""
    from mobileone_bench._version import __version__
    from mobileone_bench.environment import gpu_info, library_versions

    libs = library_versions()
    out: dict[str, Any] = {"mobileone_bench": __version__, **{k: libs.get(k) for k in fmt.libraries}}
    if fmt.needs_gpu:
        g = gpu_info()
        out["gpu"] = g.get("gpu")
        out["gpu_capability"] = g.get("gpu_capability")
    return out


def export_one(
    prepared: Any,
    fmt: FormatSpec,
    out: Path,
    options: ExportOptions,
    *,
    force: bool = False,
    context: dict[str, Any] | None = None,
) -> ExportResult:
    """Export one prepared model to one format (or reuse the cached artifact).

    Failures of the format itself are returned as a result with status ``failed`` (a sweep goes on); a parity check
    above tolerance keeps the artifact and returns ``parity failed``.

    Args:
        prepared: A :class:`~mobileone_bench.pipeline.Prepared` model.
        fmt: The format.
        out: Root of the artifact tree (``models/``).
        options: Export settings (the format's own are taken from them, :meth:`ExportOptions.for_format`).
        force: Ignore the cache.
        context: What a format needs besides the model: ``out``, and for a format that builds from another (its
            :attr:`~mobileone_bench.formats.FormatSpec.builds_from`) that one's artifact, as ``context[<name>]``
            (path) and ``context["<name>_manifest"]``.
    """
    name = prepared.spec.name
    precision = options.precision_for(fmt)
    start = time.perf_counter()
    own = options.for_format(fmt)
    folder = artifact_dir(out, name, fmt, precision, prepared.input_shape, own, prepared.reparameterized)
    try:
        versions = _versions(fmt)
        identity = _identity(prepared, fmt, precision, own, versions)
        key = _cache_key(identity)
        if not force:
            cached = _cache_hit(folder, key)
            if cached is not None:
                status = CACHED if cached.get("parity", {}).get("passed", True) else PARITY_FAILED
                return ExportResult(name, fmt.name, precision, status, str(folder / cached["artifact"]), cached,
                                    None, time.perf_counter() - start)
        impl = load_format(fmt)
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            output: FormatOutput = impl.export(prepared, work, precision, own, context or {})
            seconds = time.perf_counter() - start
            main = work / output.main_file
            manifest = {
                "manifest_version": 1,
                **{k: v for k, v in identity.items() if k not in ("options", "versions")},
                "paper_name": prepared.spec.paper_name,
                "weights": prepared.weights,
                "input_name": output.meta.pop("input_name", "input"),
                "output_name": output.meta.pop("output_name", "logits"),
                "settings": own.settings(),
                "format_meta": output.meta,
                "versions": versions,
                "reparam": prepared.reparam,
                "reparam_check": prepared.verify,
                "parity": output.parity,
                "artifact": output.main_file,
                "sha256": tree_sha256(main),
                "size_bytes": _size(main),
                "files": {p.name: tree_sha256(p) for p in sorted(work.iterdir())},
                "export_seconds": round(seconds, 3),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "cache_key": key,
            }
            (work / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
            _replace_dir(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        status = EXPORTED if output.parity.get("passed", True) else PARITY_FAILED
        err = None if status == EXPORTED else f"parity check failed: {output.parity.get('summary')}"
        return ExportResult(name, fmt.name, precision, status, str(folder / output.main_file), manifest, err,
                            time.perf_counter() - start)
    except UsageError:
        raise
    except BenchError as exc:
        return ExportResult(name, fmt.name, precision, FAILED, None, None, str(exc), time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a converter crash is a recorded failure, the sweep goes on
        return ExportResult(name, fmt.name, precision, FAILED, None, None, _short(exc), time.perf_counter() - start)


def _short(exc: BaseException) -> str:
    """A failed export's error: one line with the exception's type (:func:`mobileone_bench.errors.one_line`)."""
    return one_line(exc, limit=300, typed=True)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move a finished work folder into place, replacing an older artifact."""
    old = dst.parent / f".{dst.name}.old-{os.getpid()}"
    if dst.exists():
        dst.rename(old)
    try:
        src.rename(dst)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def ensure_writable(out: Path) -> Path:
    """Create ``out`` if needed and check it is writable (one clear line otherwise)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to output directory {out}: {exc.strerror or exc}") from None
    return out

