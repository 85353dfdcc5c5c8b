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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mobileone_bench.errors import BenchError, UsageError
from mobileone_bench.formats import FormatSpec, load_format

__all__ = [
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
_COREML_TARGETS = ("iOS13", "iOS14", "iOS15", "iOS16", "iOS17", "iOS18", "macOS13", "macOS14", "macOS15")


@dataclass(frozen=True)
class ExportOptions:
    """Settings of an export. Only the ones that apply to a format enter its cache key and manifest.

    Attributes:
        precision: ``fp32`` or ``fp16``; ``None`` = the format's default (ONNX fp32, Core ML and TensorRT fp16).
        opset: ONNX opset.
        dynamic_batch: ONNX input with a dynamic batch dimension.
        coreml_type: ``mlprogram`` (.mlpackage) or ``neuralnetwork`` (.mlmodel, for older devices).
        coreml_target: Minimum deployment target (``iOS16``...); ``None`` = iOS16 for ML programs, iOS14 otherwise.
        coreml_input: ``tensor`` or ``image`` (ImageType with the ImageNet scale and bias).
        trt_workspace_mb: TensorRT builder workspace limit.
        atol: Absolute tolerance of the parity check.
        rtol: Tolerance relative to the largest absolute reference output.
        calibration_images: ExecuTorch int8: a folder of .jpg/.png images to calibrate on (``None``: random
            inputs).
        calibration_samples: ExecuTorch int8: how many random inputs, or at most how many images (by name).
    """

    precision: str | None = None
    opset: int = 18
    dynamic_batch: bool = False
    coreml_type: str = "mlprogram"
    coreml_target: str | None = None
    coreml_input: str = "tensor"
    trt_workspace_mb: int = 1024
    atol: float = 1e-4
    rtol: float = 1e-3
    calibration_images: str | None = None
    calibration_samples: int = 16

    def validate(self) -> None:
        if self.precision not in (None, "fp32", "fp16", "int8"):
            raise UsageError(f"unknown precision {self.precision!r}; choose fp32, fp16 or int8")
        if self.calibration_samples < 1:
            raise UsageError("--calibration-samples must be at least 1")
        if self.calibration_images is not None:
            if self.precision != "int8":
                raise UsageError("--calibration-images applies to int8 only (--format executorch --precision int8)")
            from mobileone_bench.formats.executorch import image_files

            image_files(self.calibration_images)  # missing, a file, or no image: one line, before any work
        if not 13 <= self.opset <= 23:
            raise UsageError(f"ONNX opset {self.opset} is out of range (13..23)")
        if self.coreml_type not in ("mlprogram", "neuralnetwork"):
            raise UsageError(f"unknown Core ML model type {self.coreml_type!r}; choose mlprogram or neuralnetwork")
        if self.coreml_input not in ("tensor", "image"):
            raise UsageError(f"unknown Core ML input kind {self.coreml_input!r}; choose tensor or image")
        if self.coreml_target is not None and self.coreml_target not in _COREML_TARGETS:
            raise UsageError(f"unknown deployment target {self.coreml_target!r}; choose from {', '.join(_COREML_TARGETS)}")
        if self.coreml_type == "mlprogram" and self.coreml_target in ("iOS13", "iOS14"):
            raise UsageError("ML programs need iOS15 or later; use --coreml-type neuralnetwork for older devices")
        if self.trt_workspace_mb < 16:
            raise UsageError("--trt-workspace must be at least 16 MB")

    def precision_for(self, fmt: FormatSpec) -> str:
        """The precision this export uses for ``fmt``, or a one-line error if the format cannot carry it."""
        precision = self.precision or fmt.default_precision
        if precision not in fmt.precisions:
            raise UsageError(f"{fmt.name} artifacts cannot be {precision} (supported: {', '.join(fmt.precisions)})"
                             + ("; int8 is the executorch format's (--format executorch --precision int8)"
                                if precision == "int8" else
                                "; fp16 is applied when TensorRT or Core ML builds from the fp32 ONNX graph"
                                if fmt.name == "onnx" else ""))
        return precision

    def for_format(self, fmt: FormatSpec) -> dict[str, Any]:
        """The settings that matter for ``fmt`` (manifest and cache key)."""
        common = {"atol": self.atol, "rtol": self.rtol}
        if fmt.name == "onnx":
            return {"opset": self.opset, "dynamic_batch": self.dynamic_batch, **common}
        if fmt.name == "coreml":
            target = self.coreml_target or ("iOS16" if self.coreml_type == "mlprogram" else "iOS14")
            return {"model_type": self.coreml_type, "deployment_target": target, "input_kind": self.coreml_input,
                    **common}
        if fmt.name == "tensorrt":
            return {"opset": self.opset, "workspace_mb": self.trt_workspace_mb, **common}
        if fmt.name == "executorch":
            out: dict[str, Any] = {"delegate": "xnnpack", **common}
            if self.precision == "int8":
                out["calibration"] = self._calibration_key()
            return out
        return common

    def _calibration_key(self) -> dict[str, Any]:
        """What int8 calibration runs on, as it enters the cache key (the images by content)."""
        if not self.calibration_images:
            return {"source": "random", "samples": self.calibration_samples}
        from mobileone_bench.formats.executorch import image_files, images_sha256

        files = image_files(self.calibration_images)[: self.calibration_samples]
        return {"source": "images", "samples": len(files), "images_sha256": images_sha256(files)}


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
                 options: ExportOptions, reparameterized: bool) -> Path:
    """``<out>/<model>/<format>-<precision>-<H>x<W>[-flags]``."""
    parts = [fmt.name, precision, f"{input_shape[2]}x{input_shape[3]}"]
    if fmt.name == "onnx" and options.dynamic_batch:
        parts.append("dynbatch")
    if fmt.name == "coreml":
        parts.append("nn" if options.coreml_type == "neuralnetwork" else "mlprogram")
        if options.coreml_input == "image":
            parts.append("image")
    if fmt.name == "executorch" and precision == "int8" and options.calibration_images:
        parts.append("imagecalib")
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


def _identity(prepared: Any, fmt: FormatSpec, precision: str, options: ExportOptions,
              versions: dict[str, Any]) -> dict[str, Any]:
    spec = prepared.spec
    return {
        "model": spec.name, "target": spec.target, "patches": list(spec.patches),
        "weights_sha256": prepared.weights_sha256, "input_shape": list(prepared.input_shape),
        "precision": precision, "reparameterized": prepared.reparameterized, "format": fmt.name,
        "options": options.for_format(fmt), "versions": versions,
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
    from mobileone_bench._version import __version__
    from mobileone_bench.environment import gpu_info, library_versions

    libs = library_versions()
    keep = {"onnx": ("torch", "onnx", "onnxruntime"), "coreml": ("torch", "coremltools"),
            "tensorrt": ("torch", "onnx", "tensorrt"), "executorch": ("torch", "executorch", "torchao")}[fmt.name]
    if fmt.name == "executorch":
        libs.update(library_versions(("executorch", "torchao")))
    out: dict[str, Any] = {"mobileone_bench": __version__, **{k: libs.get(k) for k in keep}}
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
        options: Export settings.
        force: Ignore the cache.
        context: Values some formats need from others (TensorRT takes the ONNX artifact's path).
    """
    name = prepared.spec.name
    precision = options.precision_for(fmt)
    start = time.perf_counter()
    folder = artifact_dir(out, name, fmt, precision, prepared.input_shape, options, prepared.reparameterized)
    try:
        versions = _versions(fmt)
        identity = _identity(prepared, fmt, precision, options, versions)
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
            output: FormatOutput = impl.export(prepared, work, precision, options, context or {})
            seconds = time.perf_counter() - start
            main = work / output.main_file
            manifest = {
                "manifest_version": 1,
                **{k: v for k, v in identity.items() if k not in ("options", "versions")},
                "paper_name": prepared.spec.paper_name,
                "weights": prepared.weights,
                "input_name": output.meta.pop("input_name", "input"),
                "output_name": output.meta.pop("output_name", "logits"),
                "settings": options.for_format(fmt),
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
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


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

