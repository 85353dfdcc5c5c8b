"""``evaluate``: top-1 and top-5 of a model and of each of its artifacts on the user's own labelled images."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mobileone_bench import _args
from mobileone_bench._args import DEFAULT_MODELS_DIR, DEFAULT_RESULTS, as_names, select
from mobileone_bench.analysis.results import rows_or_frame

__all__ = ["evaluate", "EVALUATE_COLUMNS"]

#: The columns an evaluation's rows start with (every record field follows).
EVALUATE_COLUMNS = ("model", "artifact", "precision", "runtime", "n", "top1", "top1_ci_low", "top1_ci_high", "top5",
                    "agreement", "paper_top1", "status", "error")


def evaluate(models: str | Sequence[str] | None = None, *, data: str | Path, zoo: str | None = None,
             labels: str | Path | None = None, weights: str | None = None, formats: str | Sequence[str] | None = None,
             precision: str | None = None, limit: int | None = None, input_size: tuple[int, int] | None = None,
             calibration: str | Path | None = None, calibration_samples: int = 16, threads: int | None = None,
             compute_units: str = "all", results: str | Path = DEFAULT_RESULTS,
             models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False, progress: bool = False,
             as_frame: bool = True, yes: bool = False) -> Any:
    """Top-1 and top-5 accuracy on a local labelled image folder, of the PyTorch inference-time model and of each
    artifact (ONNX on onnxruntime, ExecuTorch fp32 and int8, TensorRT on a GPU, Core ML on macOS), as
    ``mobileone-bench evaluate``. Nothing is downloaded.

    ``data``: a folder with a class per sub-folder, or ImageNet's validation layout (the images and a label file,
    found in the folder or given as ``labels``; :mod:`mobileone_bench.evaluation.data`). Each model is preprocessed
    its own way (timm's data config for a timm model, the paper's center crop otherwise) at its input size
    (``input_size``). ``formats``: ``pytorch``, ``onnx``, ``executorch``, ``tensorrt``, ``coreml`` (default:
    PyTorch and every artifact this machine can run, ExecuTorch at fp32 and int8), each at ``precision`` or its
    default; ``limit``: the first N images (class folders are taken in turns, so N covers the classes);
    ``calibration``: a folder of images (a class per sub-folder, or images) that ExecuTorch int8 calibrates on
    (its first ``calibration_samples``) instead of random inputs. An identical evaluation already stored is reused
    unless ``force``.

    Returns:
        One row per (model, artifact, precision): the stored ``accuracy`` record: ``n``, ``top1`` and ``top5`` (%)
        with their 95% Wilson intervals (``top1_ci_low``...), ``agreement`` (% of images whose top-1 class is
        PyTorch's) with its interval, ``data_sha256`` (the images' fingerprint), ``preprocessing``,
        ``calibration`` (int8), ``paper_top1``, ``images_per_s``, ``status``, ``error``. ``attrs``: ``notes``
        (what was not evaluated here, and why), ``results``, ``data_sha256``.

    Raises:
        UsageError: A missing or malformed folder, an unreadable image, a label file that does not match the images
            (one line). DeviceUnavailableError: A named format this machine cannot run.

    Example:
        >>> import mobileone_bench as mb
        >>> mb.evaluate("mobileone_s0", data="imagenet/val", weights="mobileone_s0.pth.tar",
        ...             limit=1000)[["artifact", "precision", "top1", "agreement"]]   # doctest: +SKIP
    """
    _args.check(locals(), results=_args.ONE_FOLDER)
    from mobileone_bench.errors import UsageError
    from mobileone_bench.evaluation.data import fingerprint, image_files, open_images
    from mobileone_bench.pipeline.evaluate import evaluate_models, plan_targets
    from mobileone_bench.store.records import ResultsStore

    names = [p.strip() for f in as_names(formats) for p in f.split(",") if p.strip()]
    targets, notes = plan_targets(names, precision)
    if calibration is not None:
        if not any(t.artifact == "executorch" and t.precision == "int8" for t in targets):
            raise UsageError("--calibration applies to ExecuTorch int8 (--format executorch --precision int8, or no "
                             "--format)")
        image_files(calibration)  # missing, a file, or no image: one line, before any work
    if compute_units not in ("all", "cpu", "cpu-gpu", "cpu-ne"):
        raise UsageError(f"unknown compute units {compute_units!r}; choose from all, cpu, cpu-gpu, cpu-ne")
    images = open_images(data, labels=labels).first(limit)
    specs = select(models, zoo, yes=yes)
    store = ResultsStore(results)
    rows = evaluate_models(specs, store, images, targets, progress=progress, weights=weights, input_size=input_size,
                           models_dir=models_dir, calibration=None if calibration is None else str(calibration),
                           calibration_samples=calibration_samples, threads=threads, compute_units=compute_units,
                           force=force)
    sha = rows[0].get("data_sha256") if rows else fingerprint(images)
    return rows_or_frame(rows, as_frame, EVALUATE_COLUMNS, notes=notes, results=str(store.records_path),
                         data_sha256=sha)
