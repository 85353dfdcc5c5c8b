"""ONNX export: static 1x3xHxW input by default (optional dynamic batch), one self-contained file, ``onnx.checker``,
and numerical parity against PyTorch through onnxruntime.

torch's dynamo-based exporter is used first; if it cannot capture a model, the TorchScript exporter is tried. The
manifest records which one produced the file. Its settings are :class:`Options` (opset, dynamic batch).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobileone_bench.errors import ExportError, UsageError
from mobileone_bench.formats._base import FormatOptions, FormatOutput

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Options", "export", "export_fp16", "run_parity", "INPUT_NAME", "OUTPUT_NAME", "OPSETS"]

INPUT_NAME, OUTPUT_NAME = "input", "logits"
#: ONNX opsets the exporters write.
OPSETS = range(13, 24)


@dataclass(frozen=True)
class Options(FormatOptions):
    """ONNX's settings.

    Attributes:
        opset: ONNX opset.
        dynamic_batch: ONNX input with a dynamic batch dimension.
    """

    opset: int = 18
    dynamic_batch: bool = False

    def validate(self) -> None:
        if self.opset not in OPSETS:
            raise UsageError(f"ONNX opset {self.opset} is out of range ({OPSETS.start}..{OPSETS.stop - 1})")

    def settings(self) -> dict[str, Any]:
        return {"opset": self.opset, "dynamic_batch": self.dynamic_batch, **self.tolerances()}

    def folder_flags(self, precision: str) -> list[str]:
        return ["dynbatch"] if self.dynamic_batch else []


def _export_dynamo(model: torch.nn.Module, x: torch.Tensor, path: Path, opset: int, dynamic: bool) -> None:
    import torch

    kwargs: dict[str, Any] = {}
    if dynamic:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], external_data=False, verbose=False, **kwargs)


def _export_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path, opset: int, dynamic: bool) -> None:
    import torch

    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=min(opset, 20), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], dynamic_axes=axes, do_constant_folding=True)


def run_parity(path: Path, model: torch.nn.Module, x: torch.Tensor, atol: float, rtol: float,
               batch2: bool = False) -> dict[str, Any]:
    """Run the ONNX file with onnxruntime (CPU) and compare with PyTorch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from mobileone_bench.reparameterization import compare_outputs

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(x)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    result = compare_outputs(ref, torch.from_numpy(np.asarray(got)), atol=atol, rtol=rtol).as_dict()
    if batch2:
        x2 = torch.cat([x, x.flip(0)], 0) if x.shape[0] == 1 else x
        got2 = session.run(None, {session.get_inputs()[0].name: x2.numpy()})[0]
        result["dynamic_batch_checked"] = tuple(got2.shape)[0] == x2.shape[0]
        result["passed"] = result["passed"] and result["dynamic_batch_checked"]
    result["method"] = "onnxruntime CPUExecutionProvider vs PyTorch, random input"
    result["summary"] = (f"max abs {result['max_abs_err']:.2g}, rel {result['max_rel_err']:.2g}"
                         + ("" if result["passed"] else " (above tolerance)"))
    return result


#: The prefix of every module and parameter name in the fp16 graph (the attribute :func:`_half_model` wraps with).
HALF_PREFIX = "inner."


def _half_model(model: torch.nn.Module) -> torch.nn.Module:
    """A half-precision copy of ``model`` (the caller's is untouched) that takes and returns float32: the graph
    casts its input to fp16 first and its output to fp32 last, so its inputs and outputs stay fp32."""
    import copy

    import torch

    class _HalfInside(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = copy.deepcopy(inner).eval().half()  # the attribute HALF_PREFIX names

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.half()).float()

    return _HalfInside(model).eval()


def _elem_type(value_info: Any) -> str:
    import onnx

    return onnx.TensorProto.DataType.Name(value_info.type.tensor_type.elem_type).lower()


def export_fp16(model: torch.nn.Module, input_shape: tuple[int, ...], path: Path, opset: int,
                dynamic_batch: bool = False) -> dict[str, Any]:
    """Write a half-precision ONNX graph of ``model`` to ``path``: weights and every operation in fp16, the input
    and output float32 (a ``Cast`` at each end), for a strongly typed TensorRT build whose precision is the graph's.

    Returns:
        Facts for a manifest: the exporter, opset, input/output element types, and how many initializers are fp16.

    Raises:
        ExportError: Neither exporter could write the graph, or it is not a single file.
    """
    import onnx
    import torch

    half = _half_model(model)
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    path = Path(path)
    exporter, first_error = "dynamo", None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            _export_dynamo(half, x, path, opset, dynamic_batch)
        except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter, remember why
            first_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            exporter = "torchscript"
            try:
                _export_torchscript(half, x, path, opset, dynamic_batch)
            except Exception as exc2:  # noqa: BLE001
                raise ExportError(f"fp16 ONNX export failed (dynamo: {first_error}; torchscript: "
                                  f"{type(exc2).__name__}: {' '.join(str(exc2).split())[:200]})") from exc2
    extra = [p.name for p in path.parent.iterdir() if p.name.startswith(path.name) and p.name != path.name]
    if extra:
        raise ExportError(f"fp16 ONNX export wrote external data files ({', '.join(extra)})")
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    floats = [t for t in proto.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
    return {
        "exporter": exporter,
        "exporter_fallback_reason": first_error,
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
        "dtype": "float16",
        "input_dtype": _elem_type(proto.graph.input[0]),
        "output_dtype": _elem_type(proto.graph.output[0]),
        "fp16_initializers": sum(t.data_type == onnx.TensorProto.FLOAT16 for t in floats),
        "fp32_initializers": sum(t.data_type == onnx.TensorProto.FLOAT for t in floats),
        # the wrapper's attribute: modules and parameters are named "inner.<name>" in this graph
        "module_prefix": HALF_PREFIX,
    }


def export(prepared: Any, workdir: Path, precision: str, options: Options, context: dict[str, Any]) -> FormatOutput:
    """Export ``prepared.model`` to ``workdir/model.onnx`` and check it."""
    import onnx
    import torch

    model = prepared.model.eval()
    x = torch.randn(prepared.input_shape, generator=torch.Generator().manual_seed(0))
    path = workdir / "model.onnx"
    exporter, first_error = "dynamo", None
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        try:
            _export_dynamo(model, x, path, options.opset, options.dynamic_batch)
            extra = sorted(p.name for p in workdir.iterdir() if p.name != "model.onnx")
            if extra:  # e.g. an opset the dynamo exporter cannot write directly: it converts and externalises data
                raise ExportError(f"dynamo exporter wrote external data ({', '.join(extra)})")
        except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter, remember why
            first_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            exporter = "torchscript"
            for stray in workdir.iterdir():
                if stray.is_file():
                    stray.unlink()
            try:
                _export_torchscript(model, x, path, options.opset, options.dynamic_batch)
            except Exception as exc2:  # noqa: BLE001
                raise ExportError(f"ONNX export failed (dynamo: {first_error}; torchscript: {type(exc2).__name__}: "
                                  f"{' '.join(str(exc2).split())[:200]})") from exc2
    extra = [p.name for p in workdir.iterdir() if p.name != "model.onnx"]
    if extra:
        raise ExportError(f"ONNX export wrote external data files ({', '.join(extra)}); the model is too large for a "
                          "single file")
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    parity = run_parity(path, model, x, options.atol, options.rtol, batch2=options.dynamic_batch)
    meta = {
        "exporter": exporter,
        "exporter_fallback_reason": first_error,
        "opset": opset,
        "ir_version": proto.ir_version,
        "nodes": len(proto.graph.node),
        "input_name": proto.graph.input[0].name,
        "output_name": proto.graph.output[0].name,
    }
    return FormatOutput("model.onnx", parity, meta)
