"""ExecuTorch export: a ``.pte`` program whose supported subgraphs are delegated to XNNPACK, the CPU backend that
PyTorch models use on iPhones and Android phones; fp32, or int8 by post-training static quantization.

fp32: ``torch.export`` -> ``executorch.exir.to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])``
-> ``.to_executorch()``. int8: the model is first quantized with the XNNPACK quantizer (8-bit symmetric per-channel
weights, 8-bit asymmetric per-tensor static activations) through torchao's ``prepare_pt2e`` / ``convert_pt2e``,
calibrated on random inputs or on a folder of images (:func:`calibration_inputs`: the images in it, or a class per
sub-folder as ``evaluate --data`` reads them, each preprocessed as the model is evaluated, timm's data config for a
timm model and the paper's center crop otherwise), then lowered the same way.

The manifest records how many graph nodes went to XNNPACK and which operators stayed outside (run by ExecuTorch's
portable kernels), and the parity check: for fp32 the tool's tolerance against PyTorch, as ONNX; for int8 the error
statistics and top-5 agreement against the fp32 PyTorch model (recorded, not judged), and a check that the ``.pte``
is no further from fp32 than PyTorch's own run of the same quantized graph (see :func:`int8_parity`).

Needs the ``executorch`` extra (``pip install 'mobileone-bench[executorch]'``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import operator
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mobileone_bench.devices._executorch import INSTALL_HINT, load_method, native_quiet
from mobileone_bench.devices._executorch import one_line as _one_line
from mobileone_bench.errors import ExportError, MissingDependencyError, UsageError
from mobileone_bench.evaluation.data import IMAGE_SUFFIXES
from mobileone_bench.evaluation.data import image_files as _image_files
from mobileone_bench.evaluation.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from mobileone_bench.formats._base import FormatOptions, FormatOutput

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Options",
    "export",
    "calibration_inputs",
    "image_files",
    "delegation_summary",
    "fp32_parity",
    "int8_parity",
    "images_sha256",
    "IMAGE_SUFFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INT8_SCHEME",
]

#: What ``--precision int8`` means here (recorded in the manifest).
INT8_SCHEME = ("post-training static quantization, XNNPACKQuantizer (get_symmetric_quantization_config, "
               "per-channel): 8-bit symmetric per-channel weights, 8-bit asymmetric per-tensor activations; "
               "torchao prepare_pt2e / convert_pt2e")
#: Inputs of the int8 parity check (the first is the fp32 check's input, seed 0).
INT8_PARITY_INPUTS = 4
#: How far (in dB of SQNR against fp32) the int8 artifact may fall below PyTorch's run of the same quantized graph.
#: Measured (random weights, 4 inputs): the two SQNRs agree within about 1 dB on mobileone_tiny, MobileOne-S0,
#: MobileNetV2/V3-S, ShuffleNetV2 and EfficientNet-B0; a broken export falls to about 0 dB.
INT8_SQNR_MARGIN_DB = 3.0
#: A reference closer to fp32 than this (or identical to it) counts as this close.
INT8_SQNR_CAP_DB = 60.0


@dataclass(frozen=True)
class Options(FormatOptions):
    """ExecuTorch's settings (int8 calibration; fp32 has none of its own).

    Attributes:
        calibration_images: int8: a folder of images, or of class folders of images, to calibrate on (``None``:
            random inputs).
        calibration_samples: int8: how many random inputs, or at most how many images (by name).
    """

    calibration_images: str | None = None
    calibration_samples: int = 16

    def validate(self) -> None:
        if self.calibration_samples < 1:
            raise UsageError("--calibration-samples must be at least 1")
        if self.calibration_images is not None:
            if self.precision != "int8":
                raise UsageError("--calibration-images applies to int8 only (--format executorch --precision int8)")
            image_files(self.calibration_images)  # missing, a file, or no image: one line, before any work

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"delegate": "xnnpack", **self.tolerances()}
        if self.precision == "int8":
            out["calibration"] = self.calibration_key()
        return out

    def calibration_key(self) -> dict[str, Any]:
        """What int8 calibration runs on, as it enters the cache key (the images by content)."""
        if not self.calibration_images:
            return {"source": "random", "samples": self.calibration_samples}
        files = image_files(self.calibration_images)[: self.calibration_samples]
        return {"source": "images", "samples": len(files), "images_sha256": images_sha256(files),
                "preprocessing": "the model's own (timm data config, or the paper's center crop)"}

    def folder_flags(self, precision: str) -> list[str]:
        return ["imagecalib"] if precision == "int8" and self.calibration_images else []


# ---------------------------------------------------------------------------------------------- libraries


def _lowering() -> tuple[Any, Any]:
    """``(to_edge_transform_and_lower, XnnpackPartitioner)``, or one line saying why they do not import."""
    import torch

    try:
        with native_quiet():
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(f"the executorch exporter (Python module '{exc.name}')", INSTALL_HINT) from None
    except (ImportError, OSError) as exc:  # a native library built against another torch
        raise MissingDependencyError(
            "the executorch exporter",
            f"it does not load beside torch {torch.__version__} ({_one_line(exc)}); install the pinned, tested "
            f"version: {INSTALL_HINT}") from None
    return to_edge_transform_and_lower, XnnpackPartitioner


def _quantization() -> tuple[Any, Any, Any, Any]:
    """``(XNNPACKQuantizer, get_symmetric_quantization_config, prepare_pt2e, convert_pt2e)``."""
    import torch

    try:
        with native_quiet():
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer,
                get_symmetric_quantization_config,
            )
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(f"int8 quantization for executorch (Python module '{exc.name}')",
                                     INSTALL_HINT) from None
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            "int8 quantization for executorch",
            f"it does not load beside torch {torch.__version__} ({_one_line(exc)}); {INSTALL_HINT}") from None
    return XNNPACKQuantizer, get_symmetric_quantization_config, prepare_pt2e, convert_pt2e


# -------------------------------------------------------------------------------------------- calibration


def image_files(folder: str | Path) -> list[Path]:
    """The calibration images of a folder (:data:`IMAGE_SUFFIXES`, any case): the images in it sorted by name, or,
    when it holds class folders (a sample of a training set), their images taken a class at a time in turns
    (:func:`mobileone_bench.evaluation.data.image_files`), so the first N cover the classes.

    Raises:
        UsageError: The folder does not exist, is a file, or holds no image.
    """
    return _image_files(folder, what="calibration folder")


def images_sha256(files: Iterable[Path]) -> str:
    """One hash over the names and contents of the calibration images (a new image is a new artifact)."""
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def calibration_inputs(options: Options, input_shape: tuple[int, ...], preprocessing: Preprocessing | None = None,
                       ) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """The inputs int8 calibration runs on, and what they were (for the manifest).

    Without ``options.calibration_images``: ``options.calibration_samples`` random N(0, 1) tensors (seeds 1000,
    1001...; the parity check's inputs use seeds 0-3, so the check never sees a calibration input). With a folder:
    its first ``calibration_samples`` images (:func:`image_files`), each converted to RGB and preprocessed as the
    model is evaluated (``preprocessing``, :func:`mobileone_bench.evaluation.preprocess.for_model`; default: the
    paper's resize, center crop to the input size and ImageNet normalisation).
    """
    import torch

    n = int(options.calibration_samples)
    shape = tuple(int(d) for d in input_shape)
    if not options.calibration_images:
        xs = [torch.randn(shape, generator=torch.Generator().manual_seed(1000 + i)) for i in range(n)]
        return xs, {"source": "random", "samples": n, "distribution": "standard normal N(0, 1)",
                    "seeds": [1000, 1000 + n - 1]}
    files = image_files(options.calibration_images)[:n]
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError("calibration on images (Python module 'PIL')", "pip install pillow") from None
    if preprocessing is None:
        from mobileone_bench.evaluation.preprocess import paper_transform

        preprocessing = paper_transform((shape[2], shape[3]))
    transform, text = preprocessing.transform, preprocessing.text
    xs = []
    for p in files:
        try:
            with Image.open(p) as img:
                xs.append(transform(img.convert("RGB")).unsqueeze(0).expand(shape[0], -1, -1, -1).contiguous())
        except Exception as exc:  # noqa: BLE001 - a broken file is one line naming it
            raise ExportError(f"calibration image {p} cannot be read: {_one_line(exc)}") from None
    return xs, {"source": "images", "folder": str(Path(options.calibration_images).resolve()),
                "samples": len(xs), "files": [_relative(p, options.calibration_images) for p in files],
                "images_sha256": images_sha256(files), "preprocessing": text,
                "preprocessing_source": preprocessing.source}


def _relative(path: Path, root: str) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


# ------------------------------------------------------------------------------------------------ lowering


def _op_name(target: Any) -> str:
    """``aten.convolution.default`` and the like (edge operators name themselves so)."""
    return str(getattr(target, "__name__", None) or target)


def _compute_nodes(graph: Any) -> Iterable[Any]:
    """``call_function`` nodes that do work (tuple indexing is bookkeeping)."""
    for node in graph.nodes:
        if node.op == "call_function" and node.target is not operator.getitem:
            yield node


def delegation_summary(graph_module: Any) -> dict[str, Any]:
    """What went to XNNPACK in a lowered edge graph: delegate calls, nodes inside them per operator, and the
    operators that stayed outside (counted per operator)."""
    delegated: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    calls = 0
    backends: set[str] = set()
    for node in _compute_nodes(graph_module.graph):
        if "executorch_call_delegate" in str(node.target):
            calls += 1
            lowered = getattr(graph_module, str(node.args[0].target), None)
            backends.add(str(getattr(lowered, "backend_id", "?")))
            inner = getattr(lowered, "original_module", None)
            if inner is not None:
                delegated.update(_op_name(n.target) for n in _compute_nodes(inner.graph_module.graph))
        else:
            outside[_op_name(node.target)] += 1
    return {
        "backend": ", ".join(sorted(backends)) or None,
        "delegate_calls": calls,
        "delegated_nodes": sum(delegated.values()),
        "non_delegated_nodes": sum(outside.values()),
        "delegated_ops": dict(sorted(delegated.items())),
        "non_delegated_ops": dict(sorted(outside.items())),
    }


@contextlib.contextmanager
def _quiet() -> Any:
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        yield


def _quantize(model: torch.nn.Module, x: torch.Tensor, calibration: list[torch.Tensor]) -> torch.nn.Module:
    """The int8 model: export, annotate with the XNNPACK quantizer, calibrate, convert."""
    import torch

    XNNPACKQuantizer, get_config, prepare_pt2e, convert_pt2e = _quantization()
    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_config(is_per_channel=True))
    graph = torch.export.export(model, (x,)).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for c in calibration:
            prepared(c)
    return convert_pt2e(prepared)


# -------------------------------------------------------------------------------------------------- parity


def _run(method: Any, x: torch.Tensor) -> torch.Tensor:
    out = method.execute((x,))
    return (out[0] if isinstance(out, (list, tuple)) else out).detach().float()


def fp32_parity(method: Any, model: torch.nn.Module, x: torch.Tensor, atol: float, rtol: float) -> dict[str, Any]:
    """The ``.pte``'s output against PyTorch's on ``x``, with the tool's tolerance (as the ONNX check)."""
    import torch

    from mobileone_bench.reparameterization import compare_outputs

    with torch.no_grad():
        ref = model(x)
    got = _run(method, x)
    result = compare_outputs(ref, got, atol=atol, rtol=rtol).as_dict()
    result["top5_overlap"] = _top5(ref, got)
    result["method"] = "ExecuTorch runtime (XNNPACK delegate) vs PyTorch, random input"
    result["summary"] = (f"max abs {result['max_abs_err']:.2g}, rel {result['max_rel_err']:.2g}"
                         + ("" if result["passed"] else " (above tolerance)"))
    return result


def _top5(ref: torch.Tensor, got: torch.Tensor) -> int:
    import torch

    k = min(5, ref.numel())
    a = set(torch.topk(ref.flatten().float(), k).indices.tolist())
    b = set(torch.topk(got.flatten().float(), k).indices.tolist())
    return len(a & b)


def _sqnr_db(ref: torch.Tensor | list[torch.Tensor], got: torch.Tensor | list[torch.Tensor]) -> float | None:
    """Signal-to-quantization-noise ratio of ``got`` against ``ref`` in dB, over all the tensors given; ``None``
    when they are identical (infinite; JSON has no infinity)."""
    refs = ref if isinstance(ref, list) else [ref]
    gots = got if isinstance(got, list) else [got]
    signal = sum(float((r.double() ** 2).sum()) for r in refs)
    noise = sum(float(((r.double() - g.double().reshape(r.shape)) ** 2).sum()) for r, g in zip(refs, gots))
    if noise == 0:
        return None
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def int8_parity(method: Any, model: torch.nn.Module, quantized: torch.nn.Module, input_shape: tuple[int, ...],
                inputs: int = INT8_PARITY_INPUTS) -> dict[str, Any]:
    """Int8 parity on ``inputs`` random inputs (seeds 0, 1...), none of them a calibration input.

    Against the fp32 PyTorch model it records what int8 costs, with no tolerance on it (that is a property of the
    quantization and the weights, not of the export): top-1 agreement, mean and minimum top-5 overlap, max and mean
    absolute error, the max error relative to the largest output, and the SQNR in dB over all inputs. The export
    itself is judged against PyTorch's own run of the same quantized graph (``convert_pt2e``'s output, whose
    quantize/dequantize ops run in fp32): ``passed`` when every output is finite and the ``.pte`` is no further from
    fp32 than that reference is, within :data:`INT8_SQNR_MARGIN_DB` dB of SQNR (a reference above
    :data:`INT8_SQNR_CAP_DB` counts as that). XNNPACK's int8 kernels round
    differently from the reference, so the two differ by about as much as either differs from fp32: an elementwise
    tolerance between them could not hold, but a broken export (wrong scales, a lost operator) falls far below.
    """
    import torch

    shape = tuple(int(d) for d in input_shape)
    refs, qrefs, gots, top1, top5, mean_abs = [], [], [], [], [], []
    for seed in range(inputs):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = model(x).float()
            qref = quantized(x).float()
        got = _run(method, x).reshape(ref.shape)
        refs.append(ref)
        qrefs.append(qref)
        gots.append(got)
        mean_abs.append(float((ref - got).abs().mean()))
        top1.append(int(ref.flatten().argmax()) == int(got.flatten().argmax()))
        top5.append(_top5(ref, got))
    finite = all(bool(torch.isfinite(g).all()) for g in gots)
    max_abs = max(float((r - g).abs().max()) for r, g in zip(refs, gots))
    scale = max(float(r.abs().max()) for r in refs)
    sqnr = _sqnr_db(refs, gots) if finite else None
    sqnr_ref = _sqnr_db(refs, qrefs)
    bar = min(INT8_SQNR_CAP_DB if sqnr_ref is None else sqnr_ref, INT8_SQNR_CAP_DB) - INT8_SQNR_MARGIN_DB
    passed = finite and (math.inf if sqnr is None else sqnr) >= bar
    result = {
        "passed": passed,
        "criterion": (f"int8: outputs finite and SQNR vs fp32 at most {INT8_SQNR_MARGIN_DB:g} dB below that of "
                      f"PyTorch's run of the same quantized graph (counted at most {INT8_SQNR_CAP_DB:g} dB); the "
                      f"errors vs fp32 are recorded, not judged"),
        "inputs": inputs,
        "top1_agreement": round(sum(top1) / len(top1), 4),
        "top5_overlap_mean": round(sum(top5) / len(top5), 3),
        "top5_overlap_min": min(top5),
        "max_abs_err": max_abs,
        "mean_abs_err": sum(mean_abs) / len(mean_abs),
        "max_rel_err": max_abs / scale if scale > 0 else 0.0,
        "ref_max_abs": scale,
        "sqnr_db": None if sqnr is None else round(sqnr, 2),
        "reference_sqnr_db": None if sqnr_ref is None else round(sqnr_ref, 2),
        "vs_quantized_reference_max_abs_err": max(float((q - g).abs().max()) for q, g in zip(qrefs, gots)),
        "vs_quantized_reference_sqnr_db": (lambda v: None if v is None else round(v, 2))(_sqnr_db(qrefs, gots)),
        "finite": finite,
        "method": (f"ExecuTorch runtime (XNNPACK, int8) vs the fp32 PyTorch model, and PyTorch's quantized "
                   f"reference graph vs the same, {inputs} random inputs"),
    }
    result["summary"] = (f"int8: top-1 {result['top1_agreement']:.0%}, top-5 {result['top5_overlap_mean']:.2g}/5, "
                         f"SQNR {result['sqnr_db']} dB (PyTorch int8 {result['reference_sqnr_db']} dB)"
                         + ("" if passed else " (below the quantized reference)"))
    return result


# -------------------------------------------------------------------------------------------------- export


def _preprocessing(prepared: Any) -> Preprocessing:
    """The model's evaluation preprocessing (its train-time form carries timm's config when timm built it)."""
    from mobileone_bench.evaluation.preprocess import for_model

    return for_model(getattr(prepared, "train_model", None) or prepared.model, prepared.input_shape)


def export(prepared: Any, workdir: Path, precision: str, options: Options, context: dict[str, Any]) -> FormatOutput:
    """Write ``workdir/model.pte`` (XNNPACK-delegated; int8 when ``precision == "int8"``) and check it."""
    import torch

    to_edge_transform_and_lower, XnnpackPartitioner = _lowering()
    model = prepared.model.eval()
    x = torch.randn(prepared.input_shape, generator=torch.Generator().manual_seed(0))
    meta: dict[str, Any] = {"delegate": "XNNPACK", "partitioner": "XnnpackPartitioner()"}
    quantized = None
    try:
        with _quiet():
            if precision == "int8":
                calibration, calib_meta = calibration_inputs(options, prepared.input_shape, _preprocessing(prepared))
                quantized = _quantize(model, x, calibration)
                meta.update(quantization=INT8_SCHEME, calibration=calib_meta)
                source = quantized
            else:
                source = model
            exported = torch.export.export(source, (x,))
            edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
            meta["delegation"] = delegation_summary(edge.exported_program().graph_module)
            program = edge.to_executorch()
    except (ExportError, UsageError, MissingDependencyError):
        raise
    except Exception as exc:  # noqa: BLE001 - torch.export or the lowering cannot take this model
        raise ExportError(f"ExecuTorch export failed: {type(exc).__name__}: {_one_line(exc)}") from exc
    path = workdir / "model.pte"
    with open(path, "wb") as f:
        program.write_to_file(f)
    if meta["delegation"]["delegate_calls"] == 0:
        raise ExportError("XNNPACK took no part of the graph (nothing was delegated); the .pte would run on "
                          "ExecuTorch's portable kernels only")
    prog, method = load_method(path)
    try:
        if precision == "int8":
            assert quantized is not None
            parity = int8_parity(method, model, quantized, prepared.input_shape)
        else:
            parity = fp32_parity(method, model, x, options.atol, options.rtol)
    finally:
        del method, prog
    from importlib import metadata

    for lib in ("executorch", "torchao"):
        try:
            meta[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            meta[lib] = None
    return FormatOutput("model.pte", parity, meta)
