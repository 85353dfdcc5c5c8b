"""TensorRT export: a serialized engine built from an ONNX graph, fp16 by default as in the paper (fp32 option),
batch 1, with a timing cache shared by every build on the same GPU and TensorRT version.

**Precision lives in the ONNX graph.** TensorRT 10 and 11 build *strongly typed* networks (11 has nothing else: its
``BuilderFlag`` has no ``FP16``): each tensor's type is the graph's. So an fp16 engine is built from an fp16 ONNX
graph, written here next to the engine (``model.fp16.onnx``, :func:`mobileone_bench.formats.onnx.export_fp16`: a
half-precision copy of the inference-time model, the caller's untouched); its input and output stay **float32**, with
a ``Cast`` at each end, as a weakly typed fp16 engine of TensorRT 8 had, so every engine takes the same input. An fp32
engine is built from the fp32 ONNX artifact. TensorRT 8.6 (weak typing) builds fp16 from the fp32 graph with
``BuilderFlag.FP16`` (TensorRT may then keep layers in fp32 where it finds them faster; the manifest's per-layer
precisions say which). See :mod:`mobileone_bench.devices._tensorrt` for the table.

**TF32** (fp32 layers on tensor cores, TensorRT's default) is a visible choice: ``tf32=False`` (the default here, so
"fp32" means fp32) clears ``BuilderFlag.TF32``, ``True`` sets it. The manifest and the cache key carry the typing mode,
the ONNX dtype, TF32, the TensorRT version and the distribution that provides it, and the opset (checked against what
this TensorRT's parser reads). Engines are built with ``ProfilingVerbosity.DETAILED`` so the engine inspector can say
the precision each layer runs at (recorded in the manifest, and by the runtime in every record).

Needs an NVIDIA GPU and the ``tensorrt`` extra. :func:`build_plan` decides everything (a plain dict, recorded in the
manifest and testable anywhere), :func:`build_engine` performs the TensorRT calls, and the parity check runs the
engine through :class:`mobileone_bench.devices._tensorrt.TensorRTEngine`, the engine the TensorRT runtime measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobileone_bench.devices._tensorrt import check_opset, installed_tensorrt, major_version, typing_mode
from mobileone_bench.errors import DeviceUnavailableError, ExportError, UsageError
from mobileone_bench.formats import onnx
from mobileone_bench.formats._base import FormatOutput, safe_name

__all__ = ["Options", "export", "build_plan", "build_engine", "network_flags", "timing_cache_path", "require_gpu",
           "FP16_ONNX"]

#: The fp16 ONNX graph a strongly typed fp16 engine is built from, kept next to the engine.
FP16_ONNX = "model.fp16.onnx"


@dataclass(frozen=True)
class Options(onnx.Options):
    """TensorRT's settings: those of the ONNX graph it is built from, and the builder's.

    Attributes:
        trt_workspace_mb: TensorRT builder workspace limit.
        tf32: Let fp32 layers use TF32 tensor cores (``BuilderFlag.TF32``, on in TensorRT unless cleared).
    """

    trt_workspace_mb: int = 1024
    tf32: bool = False

    def validate(self) -> None:
        super().validate()
        if self.trt_workspace_mb < 16:
            raise UsageError("--trt-workspace must be at least 16 MB")

    def settings(self) -> dict[str, Any]:
        installed = installed_tensorrt()
        version = (installed or {}).get("version")
        typing = _typing_or_none(version)
        return {"opset": self.opset, "workspace_mb": self.trt_workspace_mb, "tf32": bool(self.tf32),
                "tensorrt": version, "tensorrt_distribution": (installed or {}).get("distribution"),
                "typing": typing, "fp16_onnx_dtype": "float16" if typing == "strong" else "float32",
                **self.tolerances()}

    def folder_flags(self, precision: str) -> list[str]:
        return ["tf32"] if self.tf32 else []


def _typing_or_none(version: str | None) -> str | None:
    try:
        return typing_mode(version) if version else None
    except ExportError:
        return None


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
               timing_cache: Path, dynamic_batch: bool, *, trt_version: str, tf32: bool = False,
               onnx_dtype: str = "float32", opset: int | None = None) -> dict[str, Any]:
    """Every builder setting of an engine, as plain values (they go into the manifest).

    ``typing`` is ``strong`` (10.x, 11.x: the ONNX graph's types are the precision; fp16 needs ``onnx_dtype``
    ``float16``) or ``weak`` (8.6: fp16 is ``BuilderFlag.FP16`` on the fp32 graph).

    Raises:
        ExportError: This TensorRT cannot parse the opset, or the graph's dtype cannot give ``precision``.
    """
    typing = typing_mode(trt_version)
    check_opset(trt_version, opset)
    if typing == "strong" and precision == "fp16" and onnx_dtype != "float16":
        raise ExportError(f"TensorRT {trt_version} builds strongly typed networks: an fp16 engine needs the fp16 "
                          f"ONNX graph, not a {onnx_dtype} one")
    if precision == "fp32" and onnx_dtype != "float32":
        raise ExportError(f"an fp32 engine is built from the fp32 ONNX graph, not a {onnx_dtype} one")
    return {
        "onnx": str(onnx_path),
        "onnx_dtype": onnx_dtype,
        "opset": opset,
        "input_name": input_name,
        "input_shape": [int(d) for d in input_shape],
        "optimization_profile": ({"min": [1, *input_shape[1:]], "opt": list(input_shape), "max": list(input_shape)}
                                 if dynamic_batch else None),
        "precision": precision,
        "tensorrt": str(trt_version),
        "typing": typing,
        "fp16_flag": typing == "weak" and precision == "fp16",
        "tf32": bool(tf32),
        "profiling_verbosity": "DETAILED",
        "io_dtype": "float32",
        "workspace_mb": int(workspace_mb),
        "timing_cache": str(timing_cache),
        "batch_size": int(input_shape[0]),
    }


def network_flags(trt: Any, version: str) -> int:
    """The network creation flags of a TensorRT version: 8.6 ``EXPLICIT_BATCH``; 10.x ``STRONGLY_TYPED``; 11.x
    none (strongly typed always; its ``STRONGLY_TYPED`` is deprecated and ignored, ``EXPLICIT_BATCH`` gone)."""
    major = major_version(version)
    if major >= 11:
        return 0
    if major == 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def build_engine(trt: Any, plan: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Parse the ONNX file and build a serialized engine following ``plan``.

    Returns:
        The engine bytes and facts about the build (TensorRT version, typing, flags set, timing-cache use).

    Raises:
        ExportError: The parser rejected the graph or the builder produced no engine.
    """
    version = str(trt.__version__)
    if major_version(version) != major_version(plan["tensorrt"]):
        raise ExportError(f"the plan is for TensorRT {plan['tensorrt']}, and TensorRT {version} is imported")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, version))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(plan["onnx"]):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError("TensorRT could not parse the ONNX graph: " + ("; ".join(errors)[:300] or "no details"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan["workspace_mb"] << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    flags = []
    if plan["fp16_flag"]:  # 8.6 only: weak typing, the builder may choose fp16
        config.set_flag(trt.BuilderFlag.FP16)
        flags.append("FP16")
    if plan["tf32"]:
        config.set_flag(trt.BuilderFlag.TF32)
        flags.append("TF32")
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
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
        "tensorrt": version,
        "typing": plan["typing"],
        "builder_flags": flags,
        # gone in TensorRT 11 (fp16 is the graph's there): None says "not asked", never a default True
        "platform_has_fast_fp16": getattr(builder, "platform_has_fast_fp16", None),
        "timing_cache_reused": bool(cache_in),
        "builder_optimization_level": getattr(config, "builder_optimization_level", None),
    }
    return bytes(memoryview(serialized)), facts


def _source_graph(prepared: Any, workdir: Path, precision: str, options: Options, context: dict[str, Any],
                  typing: str) -> tuple[Path, str, int | None, dict[str, Any] | None]:
    """The ONNX graph the engine is built from: ``(path, dtype, opset, facts of an fp16 export or None)``."""
    onnx_manifest = context.get("onnx_manifest") or {}
    onnx_path = context.get("onnx")
    if precision == "fp16" and typing == "strong":
        path = workdir / FP16_ONNX
        facts = onnx.export_fp16(prepared.model, prepared.input_shape, path, options.opset, options.dynamic_batch)
        return path, "float16", facts.get("opset"), facts
    if not onnx_path or not Path(onnx_path).is_file():
        raise ExportError("TensorRT builds from the ONNX artifact, which is missing (export onnx first)")
    opset = (onnx_manifest.get("format_meta") or {}).get("opset", onnx_manifest.get("opset"))
    return Path(onnx_path), "float32", opset, None


def export(prepared: Any, workdir: Path, precision: str, options: Options, context: dict[str, Any]) -> FormatOutput:
    """Build ``workdir/model.engine`` (from the fp16 graph written here, or the ONNX artifact in
    ``context["onnx"]``) and check it on the GPU."""
    gpu = require_gpu()
    import tensorrt as trt
    import torch

    from mobileone_bench.devices._tensorrt import TensorRTEngine, precision_counts
    from mobileone_bench.reparameterization import compare_outputs

    version = str(trt.__version__)
    typing = typing_mode(version)
    check_opset(version, options.opset)  # before any work: the fp16 graph is written at this opset
    graph, dtype, opset, fp16_facts = _source_graph(prepared, workdir, precision, options, context, typing)
    input_name = (context.get("onnx_manifest") or {}).get("input_name", onnx.INPUT_NAME)
    plan = build_plan(graph, input_name, prepared.input_shape, precision, options.trt_workspace_mb,
                      timing_cache_path(Path(context.get("out", workdir.parent)), gpu, version),
                      options.dynamic_batch, trt_version=version, tf32=options.tf32, onnx_dtype=dtype, opset=opset)
    engine_bytes, facts = build_engine(trt, plan)
    path = workdir / "model.engine"
    path.write_bytes(engine_bytes)

    x = torch.randn(prepared.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = prepared.model.eval()(x)
    engine = TensorRTEngine(path, cuda_graph=False)
    try:
        got = engine.infer(x)
        layers = engine.layers()
    finally:
        engine.close()
    parity = compare_outputs(ref, got, atol=options.atol, rtol=options.rtol).as_dict()
    top_ref = set(torch.topk(ref.flatten(), 5).indices.tolist())
    top_got = set(torch.topk(got.flatten().float(), 5).indices.tolist())
    parity["top5_overlap"] = len(top_ref & top_got)
    if precision == "fp16":
        parity["passed"] = parity["top5_overlap"] == 5
        parity["criterion"] = "fp16: same top-5 classes as PyTorch"
    parity["method"] = f"TensorRT engine on {gpu} vs PyTorch (CPU, fp32), random input"
    parity["summary"] = (f"top-5 {parity['top5_overlap']}/5, max abs {parity['max_abs_err']:.2g}"
                         + ("" if parity["passed"] else " (above tolerance)"))
    installed = installed_tensorrt() or {}
    meta = {"builder": plan, **facts, "tensorrt_distribution": installed.get("distribution"),
            "onnx_dtype": dtype, "fp16_onnx": fp16_facts, "layer_precisions": precision_counts(layers),
            "layers": [[layer["name"], layer["type"], layer["precision"]] for layer in layers],
            "gpu": gpu, "input_name": input_name, "output_name": onnx.OUTPUT_NAME}
    return FormatOutput("model.engine", parity, meta)
