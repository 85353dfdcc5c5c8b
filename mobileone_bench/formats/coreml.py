"""Core ML export: ML program ``.mlpackage`` (fp16 by default, fp32 option) or the older neural-network ``.mlmodel``,
a minimum deployment target, and the input as a tensor or as an image.

The image input is a ``ct.ImageType`` with the ImageNet normalisation folded into Core ML's scale and bias (one scale
for all channels: ``1 / (255 x 0.226)``, the mean of the three standard deviations; bias ``-mean / std`` per channel),
which is how an app feeds a 224x224 pixel buffer, as the paper's did.

Conversion goes through ``torch.export`` first and falls back to a traced TorchScript module; the manifest says which
worked. On Linux, Core ML cannot predict: the saved spec is validated instead (input and output names, shapes, types,
precision, deployment target). On macOS the model also predicts on the CPU and is compared with PyTorch (tolerance for
fp32, top-5 agreement for fp16). Its settings are :class:`Options` (model type, deployment target, input kind).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobileone_bench.devices._coreml import import_coremltools
from mobileone_bench.errors import ExportError, UsageError
from mobileone_bench.formats._base import FormatOptions, FormatOutput

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Options", "export", "image_preprocessing", "spec_summary", "validate_spec",
           "IMAGENET_MEAN", "IMAGENET_STD", "DEPLOYMENT_TARGETS"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Minimum deployment targets a model can be converted for.
DEPLOYMENT_TARGETS = ("iOS13", "iOS14", "iOS15", "iOS16", "iOS17", "iOS18", "macOS13", "macOS14", "macOS15")


@dataclass(frozen=True)
class Options(FormatOptions):
    """Core ML's settings.

    Attributes:
        coreml_type: ``mlprogram`` (.mlpackage) or ``neuralnetwork`` (.mlmodel, for older devices).
        coreml_target: Minimum deployment target (``iOS16``...); ``None`` = iOS16 for ML programs, iOS14 otherwise.
        coreml_input: ``tensor`` or ``image`` (ImageType with the ImageNet scale and bias).
    """

    coreml_type: str = "mlprogram"
    coreml_target: str | None = None
    coreml_input: str = "tensor"

    @property
    def deployment_target(self) -> str:
        """The target asked for, or the default of the model type."""
        return self.coreml_target or ("iOS16" if self.coreml_type == "mlprogram" else "iOS14")

    def validate(self) -> None:
        if self.coreml_type not in ("mlprogram", "neuralnetwork"):
            raise UsageError(f"unknown Core ML model type {self.coreml_type!r}; choose mlprogram or neuralnetwork")
        if self.coreml_input not in ("tensor", "image"):
            raise UsageError(f"unknown Core ML input kind {self.coreml_input!r}; choose tensor or image")
        if self.coreml_target is not None and self.coreml_target not in DEPLOYMENT_TARGETS:
            raise UsageError(f"unknown deployment target {self.coreml_target!r}; "
                             f"choose from {', '.join(DEPLOYMENT_TARGETS)}")
        if self.coreml_type == "mlprogram" and self.coreml_target in ("iOS13", "iOS14"):
            raise UsageError("ML programs need iOS15 or later; use --coreml-type neuralnetwork for older devices")

    def settings(self) -> dict[str, Any]:
        return {"model_type": self.coreml_type, "deployment_target": self.deployment_target,
                "input_kind": self.coreml_input, **self.tolerances()}

    def folder_flags(self, precision: str) -> list[str]:
        return ["nn" if self.coreml_type == "neuralnetwork" else "mlprogram",
                *(["image"] if self.coreml_input == "image" else [])]


def image_preprocessing() -> tuple[float, list[float]]:
    """Core ML ``(scale, bias)`` applied to 0..255 pixels: ImageNet normalisation with one shared scale."""
    std = sum(IMAGENET_STD) / 3.0
    return 1.0 / (255.0 * std), [-m / std for m in IMAGENET_MEAN]


def _convert(ct: Any, model: torch.nn.Module, x: torch.Tensor, options: dict[str, Any], precision: str) -> tuple[Any, str, str | None]:
    import numpy as np
    import torch

    if options["input_kind"] == "image":
        scale, bias = image_preprocessing()
        inputs = [ct.ImageType(name="image", shape=tuple(x.shape), scale=scale, bias=bias,
                               color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name="input", shape=tuple(x.shape), dtype=np.float32)]
    kwargs: dict[str, Any] = {
        "inputs": inputs,
        "outputs": [ct.TensorType(name="logits")],
        "convert_to": options["model_type"],
        "minimum_deployment_target": getattr(ct.target, options["deployment_target"]),
    }
    if options["model_type"] == "mlprogram":
        kwargs["compute_precision"] = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    errors = []
    for frontend in ("torch.export", "torch.jit.trace"):
        try:
            with torch.no_grad():
                source = (torch.export.export(model, (x,)).run_decompositions({}) if frontend == "torch.export"
                          else torch.jit.trace(model, x))
            return ct.convert(source, **kwargs), frontend, "; ".join(errors) or None
        except Exception as exc:  # noqa: BLE001 - try the other frontend, then report both
            errors.append(f"{frontend}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    raise ExportError("Core ML conversion failed (" + "; ".join(errors) + ")")


def _drop_temporary_package(mlmodel: Any) -> None:
    """Remove the temporary ``.mlpackage`` coremltools converted into, now that it is saved where it belongs.

    coremltools removes it only when the process exits (an ``atexit`` hook), so a sweep kept one package per export
    (about 80 MB for a MobileOne-S4) in the temporary folder until the end, and a killed process left them for good.
    """
    if getattr(mlmodel, "is_temp_package", False) and getattr(mlmodel, "package_path", None):
        shutil.rmtree(mlmodel.package_path, ignore_errors=True)


def _fp16_ops(spec: Any) -> int:
    """Number of ML program operations producing fp16 tensors (0 for an fp32 program)."""
    if spec.WhichOneof("Type") != "mlProgram":
        return 0
    n = 0
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                for out in op.outputs:
                    if out.type.HasField("tensorType") and out.type.tensorType.dataType == 10:  # FLOAT16
                        n += 1
    return n


def spec_summary(spec: Any) -> dict[str, Any]:
    """Inputs, outputs, model type, spec version and fp16 content of a Core ML spec, as plain values."""
    def feature(f: Any) -> dict[str, Any]:
        kind = f.type.WhichOneof("Type")
        if kind == "imageType":
            return {"name": f.name, "kind": "image", "shape": [int(f.type.imageType.height),
                                                               int(f.type.imageType.width)]}
        if kind == "multiArrayType":
            return {"name": f.name, "kind": "multiarray", "shape": [int(d) for d in f.type.multiArrayType.shape],
                    "data_type": int(f.type.multiArrayType.dataType)}
        return {"name": f.name, "kind": kind, "shape": []}

    model_type = spec.WhichOneof("Type")
    fp16_weights = 0
    if model_type == "neuralNetwork":
        for layer in spec.neuralNetwork.layers:
            kind = layer.WhichOneof("layer")
            w = getattr(getattr(layer, kind), "weights", None) if kind else None
            if w is not None and len(w.float16Value):
                fp16_weights += 1
    return {
        "specification_version": int(spec.specificationVersion),
        "model_type": model_type,
        "inputs": [feature(f) for f in spec.description.input],
        "outputs": [feature(f) for f in spec.description.output],
        "fp16_ops": _fp16_ops(spec),
        "fp16_weight_layers": fp16_weights,
    }


# Core ML specification version of each minimum deployment target
_SPEC_VERSION = {"iOS13": 4, "iOS14": 5, "iOS15": 6, "iOS16": 7, "iOS17": 8, "iOS18": 9,
                 "macOS13": 7, "macOS14": 8, "macOS15": 9}


def validate_spec(summary: dict[str, Any], input_shape: tuple[int, ...], precision: str,
                  options: dict[str, Any]) -> list[str]:
    """Problems of a saved model's spec against what was asked for (empty when it is right)."""
    problems = []
    expected_type = "mlProgram" if options["model_type"] == "mlprogram" else "neuralNetwork"
    if summary["model_type"] != expected_type:
        problems.append(f"model type {summary['model_type']} instead of {expected_type}")
    if len(summary["inputs"]) != 1:
        problems.append(f"{len(summary['inputs'])} inputs instead of 1")
    else:
        inp = summary["inputs"][0]
        if options["input_kind"] == "image":
            if inp["kind"] != "image" or inp["shape"] != list(input_shape[2:]):
                problems.append(f"input {inp} is not a {input_shape[2]}x{input_shape[3]} image")
        elif inp["kind"] != "multiarray" or inp["shape"] != list(input_shape):
            problems.append(f"input {inp} is not a multiarray of shape {list(input_shape)}")
    names = [o["name"] for o in summary["outputs"]]
    if names != ["logits"]:
        problems.append(f"outputs {names} instead of ['logits']")
    limit = _SPEC_VERSION.get(options["deployment_target"])
    if limit and summary["specification_version"] > limit:
        problems.append(f"spec version {summary['specification_version']} needs a newer OS than "
                        f"{options['deployment_target']} (spec version {limit})")
    fp16 = summary["fp16_ops"] + summary["fp16_weight_layers"]
    if precision == "fp16" and fp16 == 0:
        problems.append("fp16 was asked for but the model holds no fp16 tensors")
    if precision == "fp32" and fp16 > 0:
        problems.append("fp32 was asked for but the model holds fp16 tensors")
    return problems


def _predict_parity(ct: Any, path: Path, model: torch.nn.Module, x: torch.Tensor, precision: str,
                    options: dict[str, Any], atol: float, rtol: float) -> dict[str, Any]:
    """macOS only: run the saved model on the CPU and compare with PyTorch."""
    import numpy as np
    import torch

    from mobileone_bench.reparameterization import compare_outputs

    mlmodel = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    if options["input_kind"] == "image":
        from PIL import Image

        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(x.shape[2], x.shape[3], 3), dtype=np.uint8)
        scale, bias = image_preprocessing()
        x = torch.from_numpy(pixels.astype(np.float32) * scale + np.asarray(bias, np.float32)).permute(2, 0, 1)[None]
        feed: dict[str, Any] = {"image": Image.fromarray(pixels)}
    else:
        feed = {"input": x.numpy()}
    with torch.no_grad():
        ref = model(x)
    got = torch.from_numpy(np.asarray(mlmodel.predict(feed)["logits"], dtype=np.float32))
    result = compare_outputs(ref, got, atol=atol, rtol=rtol).as_dict()
    top_ref = set(torch.topk(ref.flatten(), 5).indices.tolist())
    top_got = set(torch.topk(got.flatten(), 5).indices.tolist())
    result["top5_overlap"] = len(top_ref & top_got)
    if precision == "fp16":
        result["passed"] = result["top5_overlap"] == 5
        result["criterion"] = "fp16: same top-5 classes as PyTorch"
    result["method"] = "Core ML prediction on the CPU (macOS) vs PyTorch"
    result["prediction"] = True
    result["summary"] = (f"top-5 {result['top5_overlap']}/5, max abs {result['max_abs_err']:.2g}"
                         + ("" if result["passed"] else " (above tolerance)"))
    return result


def export(prepared: Any, workdir: Path, precision: str, options: Options, context: dict[str, Any]) -> FormatOutput:
    """Convert ``prepared.model`` to Core ML in ``workdir`` and validate (macOS: and predict)."""
    import torch

    ct = import_coremltools()
    settings = options.settings()
    model = prepared.model.eval()
    x = torch.randn(prepared.input_shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        mlmodel, frontend, fallback = _convert(ct, model, x, settings, precision)
        if settings["model_type"] == "neuralnetwork" and precision == "fp16":
            from coremltools.models.neural_network import quantization_utils

            mlmodel = quantization_utils.quantize_weights(mlmodel, nbits=16)
    name = "model.mlpackage" if settings["model_type"] == "mlprogram" else "model.mlmodel"
    path = workdir / name
    mlmodel.author = "mobileone-bench"
    mlmodel.short_description = f"{prepared.spec.name} ({precision}, {'re-parameterized' if prepared.reparameterized else 'train-time'})"
    mlmodel.save(str(path))
    _drop_temporary_package(mlmodel)
    summary = spec_summary(ct.utils.load_spec(str(path)))
    problems = validate_spec(summary, prepared.input_shape, precision, settings)
    if problems:
        parity = {"passed": False, "method": "spec validation", "prediction": False, "problems": problems,
                  "summary": "spec: " + "; ".join(problems)}
    elif sys.platform == "darwin":
        parity = _predict_parity(ct, path, model, x, precision, settings, options.atol, options.rtol)
    else:
        parity = {"passed": True, "method": "spec validation (Core ML predicts only on macOS)", "prediction": False,
                  "summary": "spec ok; no prediction off macOS"}
    meta = {"frontend": frontend, "frontend_fallback_reason": fallback, "spec": summary,
            "input_name": summary["inputs"][0]["name"] if summary["inputs"] else None, "output_name": "logits"}
    if settings["input_kind"] == "image":
        scale, bias = image_preprocessing()
        meta["image_preprocessing"] = {"scale": scale, "bias": bias, "color_layout": "RGB"}
    return FormatOutput(name, parity, meta)
