"""TensorRT export: a serialized engine built from the ONNX artifact, fp16 by default as in the paper (fp32 option),
batch 1, with a timing cache shared by every build on the same GPU and TensorRT version.

Needs an NVIDIA GPU and the ``tensorrt`` extra. This module is deliberately thin: :func:`build_plan` decides
everything (a plain dict, recorded in the manifest and testable anywhere), :func:`build_engine` performs the TensorRT
calls, and the parity check runs the engine through :class:`mobileone_bench.devices._tensorrt.TensorRTEngine`, the
engine wrapper the TensorRT runtime measures too.

The engine is built from the ONNX artifact (the format table says so: ``builds_from="onnx"``), which the caller
exports first and hands over as ``context["onnx"]`` and ``context["onnx_manifest"]``. Its settings are
:class:`Options`: ONNX's (opset, dynamic batch) and the builder's workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobileone_bench.errors import DeviceUnavailableError, ExportError, UsageError
from mobileone_bench.formats import onnx
from mobileone_bench.formats._base import FormatOutput, safe_name

__all__ = ["Options", "export", "build_plan", "build_engine", "timing_cache_path", "require_gpu"]


@dataclass(frozen=True)
class Options(onnx.Options):
    """TensorRT's settings: those of the ONNX graph it is built from, and the builder's.

    Attributes:
        trt_workspace_mb: TensorRT builder workspace limit.
    """

    trt_workspace_mb: int = 1024

    def validate(self) -> None:
        super().validate()
        if self.trt_workspace_mb < 16:
            raise UsageError("--trt-workspace must be at least 16 MB")

    def settings(self) -> dict[str, Any]:
        return {"opset": self.opset, "workspace_mb": self.trt_workspace_mb, **self.tolerances()}

    def folder_flags(self, precision: str) -> list[str]:
        return []


def require_gpu() -> str:
    """Name of the CUDA GPU TensorRT will build for; a clear error when there is none."""
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "TensorRT needs an NVIDIA GPU with CUDA, and torch sees none here (torch.cuda.is_available() is False)")
    return torch.cuda.get_device_name(0)


def timing_cache_path(out: Path, gpu: str, trt_version: str) -> Path:
    """One timing cache per GPU model and TensorRT version, shared by every model exported under ``out``."""
    return Path(out) / ".tensorrt-timing-cache" / f"{safe_name(gpu)}-trt{trt_version}.cache"


def build_plan(onnx_path: Path, input_name: str, input_shape: tuple[int, ...], precision: str, workspace_mb: int,
               timing_cache: Path, dynamic_batch: bool) -> dict[str, Any]:
    """Every builder setting of an engine, as plain values (they go into the manifest)."""
    return {
        "onnx": str(onnx_path),
        "input_name": input_name,
        "input_shape": [int(d) for d in input_shape],
        "optimization_profile": ({"min": [1, *input_shape[1:]], "opt": list(input_shape), "max": list(input_shape)}
                                 if dynamic_batch else None),
        "precision": precision,
        "fp16": precision == "fp16",
        "workspace_mb": int(workspace_mb),
        "timing_cache": str(timing_cache),
        "batch_size": int(input_shape[0]),
    }


def build_engine(trt: Any, plan: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Parse the ONNX file and build a serialized engine following ``plan``.

    Returns:
        The engine bytes and facts about the build (TensorRT version, fp16 support, timing-cache use).

    Raises:
        ExportError: The parser rejected the graph or the builder produced no engine.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    major = int(str(getattr(trt, "__version__", "10")).split(".")[0] or 10)
    if explicit is not None and major < 10:
        flags = 1 << int(explicit)  # TensorRT 8.x needs it; 10.x networks are always explicit-batch
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(plan["onnx"]):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError("TensorRT could not parse the ONNX graph: " + ("; ".join(errors)[:300] or "no details"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan["workspace_mb"] << 20)
    fast_fp16 = bool(getattr(builder, "platform_has_fast_fp16", True))
    if plan["fp16"]:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = plan.get("optimization_profile")
    if profile:
        opt = builder.create_optimization_profile()
        opt.set_shape(plan["input_name"], profile["min"], profile["opt"], profile["max"])
        config.add_optimization_profile(opt)
    cache_file = Path(plan["timing_cache"])
    cache_in = cache_file.read_bytes() if cache_file.is_file() else b""
    cache = config.create_timing_cache(cache_in)
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT built no engine (the builder log above says why)")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    facts = {
        "tensorrt": getattr(trt, "__version__", None),
        "platform_has_fast_fp16": fast_fp16,
        "timing_cache_reused": bool(cache_in),
        "builder_optimization_level": getattr(config, "builder_optimization_level", None),
    }
    return bytes(memoryview(serialized)), facts


def export(prepared: Any, workdir: Path, precision: str, options: Options, context: dict[str, Any]) -> FormatOutput:
    """Build ``workdir/model.engine`` from the ONNX artifact named in ``context["onnx"]`` and check it on the GPU."""
    gpu = require_gpu()
    import tensorrt as trt
    import torch

    from mobileone_bench.devices._tensorrt import TensorRTEngine
    from mobileone_bench.reparameterization import compare_outputs

    onnx_manifest = context.get("onnx_manifest")
    onnx_path = context.get("onnx")
    if not onnx_path or not Path(onnx_path).is_file():
        raise ExportError("TensorRT builds from the ONNX artifact, which is missing (export onnx first)")
    input_name = (onnx_manifest or {}).get("input_name", "input")
    plan = build_plan(Path(onnx_path), input_name, prepared.input_shape, precision, options.trt_workspace_mb,
                      timing_cache_path(Path(context.get("out", workdir.parent)), gpu, trt.__version__),
                      options.dynamic_batch)
    engine_bytes, facts = build_engine(trt, plan)
    path = workdir / "model.engine"
    path.write_bytes(engine_bytes)

    x = torch.randn(prepared.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = prepared.model.eval()(x)
    engine = TensorRTEngine(path)
    try:
        got = engine.infer(x)
    finally:
        engine.close()
    parity = compare_outputs(ref, got, atol=options.atol, rtol=options.rtol).as_dict()
    top_ref = set(torch.topk(ref.flatten(), 5).indices.tolist())
    top_got = set(torch.topk(got.flatten().float(), 5).indices.tolist())
    parity["top5_overlap"] = len(top_ref & top_got)
    if precision == "fp16":
        parity["passed"] = parity["top5_overlap"] == 5
        parity["criterion"] = "fp16: same top-5 classes as PyTorch"
    parity["method"] = f"TensorRT engine on {gpu} vs PyTorch (CPU), random input"
    parity["summary"] = (f"top-5 {parity['top5_overlap']}/5, max abs {parity['max_abs_err']:.2g}"
                         + ("" if parity["passed"] else " (above tolerance)"))
    meta = {"builder": plan, **facts, "gpu": gpu, "input_name": input_name, "output_name": "logits"}
    return FormatOutput("model.engine", parity, meta)
