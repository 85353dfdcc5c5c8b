"""Accuracy of a model and of each of its artifacts on a local labelled image folder: one ``accuracy`` record per
(model, artifact, precision), made by :mod:`~mobileone_bench.pipeline.recording`.

The order of the steps: the folder is read and fingerprinted (:mod:`mobileone_bench.evaluation.data`), the model is
prepared as for a measurement (built, weights loaded, re-parameterized and verified), its preprocessing chosen
(:mod:`mobileone_bench.evaluation.preprocess`), every artifact exported or reused (the same artifact tree and cache
as ``export`` and ``latency``; ExecuTorch int8 calibrated on ``calibration`` images when given), then each image is
decoded once and fed to every target: the PyTorch inference-time model first (its top-1 is what the artifacts'
predictions are compared with) and each artifact through its runtime (onnxruntime, ExecuTorch, TensorRT, Core ML on
macOS), batch 1 for the artifacts (their input shape is fixed). A target that fails is a failed record with its
reason; the others go on.

What the targets run through: the runtimes' own runners (``make_runner`` of :mod:`mobileone_bench.devices`: the
onnxruntime session, the ExecuTorch method, the TensorRT engine), fed the image instead of their preallocated
input; Core ML through ``coremltools.models.MLModel.predict`` (macOS only, as the Mac runner's fallback).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mobileone_bench.pipeline.recording import append_record, failure_message, runtime_versions, stored

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.evaluation.data import ImageSet
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.preparing import Prepared
    from mobileone_bench.store.records import ResultsStore

__all__ = ["KIND", "TARGETS", "Target", "plan_targets", "evaluate_model", "evaluate_models", "ACCURACY_COLUMNS"]

#: The kind of an accuracy record.
KIND = "accuracy"
#: What runs each artifact: ``artifact -> (device, runtime)`` (``pytorch``: the inference-time model itself).
TARGETS = {"pytorch": ("cpu", "torch"), "onnx": ("cpu", "onnxruntime"), "executorch": ("cpu", "executorch"),
           "tensorrt": ("gpu", "tensorrt"), "coreml": ("mac", "coreml")}
#: The precisions evaluated when no format is named (every artifact this machine can run).
DEFAULT_PRECISIONS = {"pytorch": ("fp32",), "onnx": ("fp32",), "executorch": ("fp32", "int8"),
                      "tensorrt": ("fp16",), "coreml": ("fp16",)}
#: Images per PyTorch batch (the artifacts run one image at a time: their input shape is fixed).
TORCH_BATCH = 32
#: The columns the CLI shows first.
ACCURACY_COLUMNS = ("model", "artifact", "precision", "runtime", "n", "top1", "top1_ci_low", "top1_ci_high", "top5",
                    "agreement", "status", "error")


@dataclass(frozen=True)
class Target:
    """One thing evaluated: an artifact (or ``pytorch``) at a precision, and the runtime that runs it."""

    artifact: str
    precision: str
    device: str
    runtime: str


def _why_not_here(artifact: str) -> str | None:
    """Why this machine cannot run ``artifact`` (``None`` when it can)."""
    import importlib.util

    if artifact == "coreml" and sys.platform != "darwin":
        return "Core ML predicts only on macOS"
    if artifact == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            return "TensorRT is not installed (pip install 'mobileone-bench[tensorrt]')"
        import torch

        if not torch.cuda.is_available():
            return "TensorRT needs an NVIDIA GPU with CUDA"
    needs = {"onnx": "onnxruntime", "executorch": "executorch", "coreml": "coremltools"}.get(artifact)
    if needs and importlib.util.find_spec(needs) is None:
        from mobileone_bench.formats import FORMATS

        return f"{needs} is not installed ({FORMATS[artifact].install_hint})"
    return None


def plan_targets(formats: Sequence[str] | None, precision: str | None) -> tuple[list[Target], list[str]]:
    """The targets of an evaluation, and notes on what was left out.

    ``formats`` empty: PyTorch and every artifact this machine can run, at :data:`DEFAULT_PRECISIONS` (the others
    are named in the notes). Named formats (``pytorch``, ``onnx``, ``executorch``/``pte``, ``tensorrt``/``trt``,
    ``coreml``): each at ``precision`` or its default; one this machine cannot run is a one-line error.

    Raises:
        UsageError: An unknown format, a precision a format cannot carry.
        DeviceUnavailableError: A named format this machine cannot run.
    """
    from mobileone_bench.errors import DeviceUnavailableError, UsageError
    from mobileone_bench.formats import FORMATS, get_format

    notes: list[str] = []
    if not formats:
        if precision is not None:
            raise UsageError("--precision applies to the formats named with --format")
        chosen: list[tuple[str, str]] = []
        for artifact, precisions in DEFAULT_PRECISIONS.items():
            why = _why_not_here(artifact)
            if why:
                notes.append(f"{artifact} not evaluated: {why}")
                continue
            chosen += [(artifact, p) for p in precisions]
    else:
        chosen = []
        for name in formats:
            key = name.strip().lower()
            artifact = "pytorch" if key in ("pytorch", "torch") else get_format(key).name
            supported = ("fp32",) if artifact == "pytorch" else FORMATS[artifact].precisions
            wanted = precision or ("fp32" if artifact == "pytorch" else FORMATS[artifact].default_precision)
            if wanted not in supported:
                raise UsageError(f"{artifact} cannot be evaluated at {wanted} (supported: {', '.join(supported)})")
            why = _why_not_here(artifact)
            if why:
                raise DeviceUnavailableError(f"cannot evaluate {artifact} here: {why}")
            if (artifact, wanted) not in chosen:
                chosen.append((artifact, wanted))
    return [Target(a, p, *TARGETS[a]) for a, p in chosen], notes


# ------------------------------------------------------------------------------------------------ predictors


class _Predictor:
    """One target, loaded: ``predict(x)`` returns the logits of a batch (the artifacts: of one image)."""

    batch = 1

    def __init__(self, predict: Callable[[Any], Any], settings: dict[str, Any], close: Callable[[], None],
                 batch: int = 1):
        self.predict, self._settings, self._close, self.batch = predict, settings, close, batch
        self.seconds = 0.0

    def __call__(self, x: Any) -> Any:
        import torch

        start = time.perf_counter()
        out = self.predict(x)
        self.seconds += time.perf_counter() - start
        if isinstance(out, (list, tuple)):
            out = out[0]
        return torch.as_tensor(out).detach().float().reshape(x.shape[0], -1)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def close(self) -> None:
        self._close()


def _runner(target: Target, prepared: Prepared, artifact: str | None, threads: int | None) -> Any:
    from mobileone_bench.devices import get_runtime, load_runtime

    spec = get_runtime(target.device, target.runtime)
    options = dict(spec.fixed_options)
    return load_runtime(spec).make_runner(target.runtime, artifact=Path(artifact) if artifact else None,
                                          model=prepared.model, input_shape=prepared.input_shape,
                                          precision=target.precision, threads=threads, options=options)


def _coreml_predictor(artifact: str, manifest: dict[str, Any], compute_units: str) -> _Predictor:
    """Core ML on this Mac through coremltools (``MLModel.predict``), the package's tensor input fed the image."""
    from mobileone_bench.devices import _coreml
    from mobileone_bench.errors import UsageError

    ct = _coreml.import_coremltools()
    units = {"all": "ALL", "cpu": "CPU_ONLY", "cpu-gpu": "CPU_AND_GPU", "cpu-ne": "CPU_AND_NE"}[compute_units]
    model = ct.models.MLModel(str(artifact), compute_units=getattr(ct.ComputeUnit, units))
    if (manifest.get("settings") or {}).get("input_kind") == "image":
        raise UsageError("evaluate feeds Core ML a tensor: export the package with --coreml-input tensor")
    in_name, out_name = manifest.get("input_name") or "input", manifest.get("output_name") or "logits"
    return _Predictor(lambda x: model.predict({in_name: x.numpy()})[out_name],
                      {"compute_units": compute_units, "coremltools": ct.__version__}, lambda: None)


def load_predictor(target: Target, prepared: Prepared, artifact: str | None, manifest: dict[str, Any] | None,
                   threads: int | None, compute_units: str = "all") -> _Predictor:
    """The target ready to predict: the runtime's runner fed each image instead of its preallocated input."""
    import torch

    if target.artifact == "pytorch":
        runner = _runner(target, prepared, None, threads)
        model = runner.model

        def forward(x: Any) -> Any:
            with torch.inference_mode():
                return model(x)

        return _Predictor(forward, runner.settings(), runner.close, batch=TORCH_BATCH)
    if target.artifact == "coreml":
        return _coreml_predictor(str(artifact), manifest or {}, compute_units)
    runner = _runner(target, prepared, artifact, threads)
    if target.artifact == "onnx":
        name = next(iter(runner.feed))
        return _Predictor(lambda x: runner.session.run(runner.outputs, {name: x.numpy()}), runner.settings(),
                          runner.close)
    if target.artifact == "executorch":
        return _Predictor(lambda x: runner.method.execute((x.contiguous(),)), runner.settings(), runner.close)
    if target.artifact == "tensorrt":
        return _Predictor(runner.infer, runner.settings(), runner.close)
    raise ValueError(f"no predictor for {target.artifact}")  # pragma: no cover - TARGETS names them all


# ------------------------------------------------------------------------------------------------ the steps


def _export(prepared: Prepared, target: Target, models_dir: str | Path, calibration: str | None,
            calibration_samples: int, force: bool) -> tuple[str, dict[str, Any], str]:
    """The artifact (exported or reused from the artifact tree): ``(path, manifest, export status)``.

    Raises:
        ExportError: The export failed.
    """
    from mobileone_bench.errors import ExportError
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions
    from mobileone_bench.pipeline.artifacts import export_formats

    int8_images = target.artifact == "executorch" and target.precision == "int8" and calibration
    options = ExportOptions(precision=target.precision, calibration_samples=calibration_samples,
                            calibration_images=str(calibration) if int8_images else None)
    (result,) = export_formats(prepared, [FORMATS[target.artifact]], Path(models_dir), options, force=force)
    if result.path is None:
        raise ExportError(f"{target.artifact} export: {result.error}")
    return result.path, result.manifest or {}, result.status


def calibration_of(target: Target, calibration: str | None, samples: int) -> dict[str, Any] | None:
    """What an int8 artifact was calibrated on, as the record's identity holds it (``None`` without int8)."""
    if not (target.artifact == "executorch" and target.precision == "int8"):
        return None
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions

    options = ExportOptions(precision="int8", calibration_samples=samples, calibration_images=calibration)
    return options.for_format(FORMATS["executorch"]).calibration_key()  # type: ignore[attr-defined]


def identity_of(prepared: Prepared, target: Target, images: ImageSet, data_sha256: str,
                preprocessing: dict[str, Any], calibration: dict[str, Any] | None) -> dict[str, Any]:
    """The fields that identify an accuracy record (hashed into its key)."""
    from mobileone_bench.environment import machine_fingerprint

    spec = prepared.spec
    return {"model": spec.name, "target": spec.target, "patches": list(spec.patches),
            "weights_sha256": prepared.weights_sha256, "input_shape": list(prepared.input_shape),
            "reparameterized": prepared.reparameterized, "artifact": target.artifact, "precision": target.precision,
            "device": target.device, "runtime": target.runtime, "data_sha256": data_sha256, "n": len(images.files),
            "preprocessing": preprocessing, "calibration": calibration, "machine": machine_fingerprint(),
            "versions": runtime_versions(target.runtime)}


def _batches(images: ImageSet, transform: Callable[[Any], Any], size: int) -> Any:
    """``(tensor (B, 3, H, W), labels)`` batches, each image decoded once."""
    import torch

    from mobileone_bench.evaluation.data import load_image

    for start in range(0, len(images.files), size):
        files = images.files[start:start + size]
        yield torch.stack([transform(load_image(p)) for p in files]), list(images.labels[start:start + size])


def evaluate_model(spec: ModelSpec, store: ResultsStore, images: ImageSet, targets: Sequence[Target], *,
                   data_sha256: str, weights: str | None = None, input_size: tuple[int, int] | None = None,
                   models_dir: str | Path = "models", calibration: str | None = None, calibration_samples: int = 16,
                   threads: int | None = None, compute_units: str = "all", force: bool = False,
                   progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Evaluate one model and its artifacts on ``images``; returns one stored record per target (a target with an
    identical stored record is not evaluated again unless ``force``: that record is returned).

    Raises:
        UsageError: A label outside the model's classes, an image that cannot be read (one line naming it).
    """
    from mobileone_bench.environment import collect
    from mobileone_bench.errors import BenchError, UsageError
    from mobileone_bench.evaluation.metrics import Tally
    from mobileone_bench.evaluation.preprocess import for_model
    from mobileone_bench.pipeline.preparing import prepare
    from mobileone_bench.reference import paper_row

    prepared = prepare(spec, weights=weights, input_size=input_size)
    pre = for_model(prepared.train_model, prepared.input_shape)
    paper = (paper_row(spec.name, "table9") or paper_row(spec.name, "table13") or {}).get("top1")
    targets = list(targets)
    reference = Target("pytorch", "fp32", *TARGETS["pytorch"])
    plans: dict[Target, dict[str, Any]] = {}
    records: dict[Target, dict[str, Any]] = {}
    for t in targets:
        calib = calibration_of(t, calibration, calibration_samples)
        identity = identity_of(prepared, t, images, data_sha256, pre.describe(), calib)
        found = stored(store, KIND, identity, force=force)
        if found is not None:
            records[t] = found
        else:
            plans[t] = {"identity": identity, "error": None, "tally": Tally(), "export_status": None}
    if plans:
        loaded: dict[Target, _Predictor] = {}
        try:
            for t in [reference, *[t for t in plans if t != reference]]:
                plan = plans.get(t)
                try:
                    artifact, manifest = None, None
                    if t.artifact != "pytorch":
                        artifact, manifest, status = _export(prepared, t, models_dir, calibration,
                                                             calibration_samples, force)
                        plan["export_status"] = status  # type: ignore[index]
                        plan["artifact_sha256"] = manifest.get("sha256")  # type: ignore[index]
                        meta = manifest.get("format_meta") or {}
                        plan["calibration_used"] = meta.get("calibration")  # type: ignore[index]
                    loaded[t] = load_predictor(t, prepared, artifact, manifest, threads, compute_units)
                except UsageError:
                    raise
                except (BenchError, Exception) as exc:  # noqa: BLE001 - a target that fails is a failed record
                    if plan is None:  # the PyTorch reference itself: nothing can be compared
                        raise
                    plan["error"] = failure_message(exc)
            ref_tally = plans[reference]["tally"] if reference in plans else Tally()
            seen = 0
            for x, labels in _batches(images, pre, TORCH_BATCH):
                try:
                    expected = ref_tally.add(loaded[reference](x), labels)
                except ValueError as exc:
                    raise UsageError(f"{images.root}: {exc} (the labels must be the model's class indices)") \
                        from None
                for t, predictor in loaded.items():
                    plan = plans.get(t)
                    if t == reference or plan is None or plan["error"]:
                        continue
                    try:
                        for i in range(x.shape[0]):
                            plan["tally"].add(predictor(x[i:i + 1]), labels[i:i + 1], expected[i:i + 1])
                    except Exception as exc:  # noqa: BLE001 - this target fails; the others go on
                        plan["error"] = failure_message(exc)
                seen += x.shape[0]
                if progress is not None:
                    progress(seen)
        finally:
            for p in loaded.values():
                p.close()
        env = {k: v for k, v in collect().items() if not k.startswith("env_hostname")}
        for t, plan in plans.items():
            predictor = loaded.get(t)
            fields: dict[str, Any] = {"status": "failed" if plan["error"] else "ok", "error": plan["error"],
                                      "paper_name": spec.paper_name, "paper_top1": paper}
            tally = plan["tally"] if t != reference else ref_tally
            if not plan["error"]:
                fields.update(tally.summary())
                if t == reference:
                    fields.update(agreement=100.0, agreement_n=tally.n)
            fields.update(images.describe())
            fields.update(export_status=plan.get("export_status"), artifact_sha256=plan.get("artifact_sha256"),
                          calibration_used=plan.get("calibration_used"), preprocessing_text=pre.text,
                          threads=threads, batch=None if predictor is None else predictor.batch,
                          seconds=None if predictor is None else round(predictor.seconds, 3),
                          images_per_s=(round(tally.n / predictor.seconds, 2)
                                        if predictor is not None and predictor.seconds > 0 and tally.n else None),
                          runtime_settings=None if predictor is None else predictor.settings())
            records[t] = append_record(store, KIND, plan["identity"], fields, env)
    return [records[t] for t in targets]


def evaluate_models(specs: Sequence[ModelSpec], store: ResultsStore, images: ImageSet, targets: Sequence[Target],
                    *, progress: bool = False, **options: Any) -> list[dict[str, Any]]:
    """:func:`evaluate_model` for each model; a model that cannot be built is a failed record per target."""
    from mobileone_bench._progress import bar
    from mobileone_bench.evaluation.data import fingerprint
    from mobileone_bench.errors import UsageError

    data_sha256 = fingerprint(images)
    out: list[dict[str, Any]] = []
    with bar(progress, len(specs) * len(images.files), "evaluate") as step:
        for spec in specs:
            done = [0]

            def tick(seen: int, name: str = spec.name) -> None:
                step(f"{name}: {seen} images", advance=seen - done[0])
                done[0] = seen

            try:
                out += evaluate_model(spec, store, images, targets, data_sha256=data_sha256, progress=tick, **options)
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - the model cannot be built: recorded, the others go on
                out += _failed(spec, store, images, targets, data_sha256, failure_message(exc))
            step(spec.name, advance=len(images.files) - done[0])
    return out


def _failed(spec: ModelSpec, store: ResultsStore, images: ImageSet, targets: Sequence[Target], data_sha256: str,
            error: str) -> list[dict[str, Any]]:
    from mobileone_bench.environment import collect

    env = {k: v for k, v in collect().items() if k != "env_hostname"}
    out = []
    for t in targets:
        identity = {"model": spec.name, "target": spec.target, "artifact": t.artifact, "precision": t.precision,
                    "device": t.device, "runtime": t.runtime, "data_sha256": data_sha256, "n": len(images.files)}
        out.append(append_record(store, KIND, identity, {"status": "failed", "error": error, **images.describe()},
                                 env))
    return out
