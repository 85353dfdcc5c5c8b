"""TensorRT: everything around the builder call runs here; the real build needs an NVIDIA GPU and the extra."""

from __future__ import annotations

import importlib.util
import types

import pytest

from mobileone_bench.errors import DeviceUnavailableError, ExportError
from mobileone_bench.formats.tensorrt import build_engine, build_plan, require_gpu, timing_cache_path


def _fake_trt(parse_ok=True, engine=b"ENGINE", version="10.3.0"):
    """A stand-in for the tensorrt module that records how the builder is driven."""
    calls = {"flags": [], "pool": None, "profile": None, "cache_in": None, "network_flags": None}

    class Config:
        builder_optimization_level = 3

        def set_memory_pool_limit(self, pool, size):
            calls["pool"] = (pool, size)

        def set_flag(self, flag):
            calls["flags"].append(flag)

        def add_optimization_profile(self, profile):
            calls["profile"] = profile.shapes

        def create_timing_cache(self, data):
            calls["cache_in"] = data
            return types.SimpleNamespace(serialize=lambda: b"CACHE")

        def set_timing_cache(self, cache, ignore):
            calls["cache"] = cache

        def get_timing_cache(self):
            return calls["cache"]

    class Profile:
        def __init__(self):
            self.shapes = None

        def set_shape(self, name, mn, opt, mx):
            self.shapes = (name, mn, opt, mx)

    class Builder:
        platform_has_fast_fp16 = True

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls["network_flags"] = flags
            return "network"

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return engine

    class Parser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls["parsed"] = path
            return parse_ok

        def get_error(self, i):
            return "Unsupported ONNX op: GridSample"

    trt = types.SimpleNamespace(
        __version__=version, Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
        Builder=Builder, OnnxParser=Parser,
        NetworkDefinitionCreationFlag=types.SimpleNamespace(EXPLICIT_BATCH=0),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"), BuilderFlag=types.SimpleNamespace(FP16="fp16"))
    return trt, calls


def test_build_plan_is_the_papers_setting(tmp_path):
    plan = build_plan(tmp_path / "m.onnx", "input", (1, 3, 224, 224), "fp16", 1024, tmp_path / "t.cache", False)
    assert plan["fp16"] and plan["batch_size"] == 1 and plan["optimization_profile"] is None
    dyn = build_plan(tmp_path / "m.onnx", "input", (1, 3, 224, 224), "fp32", 512, tmp_path / "t.cache", True)
    assert not dyn["fp16"] and dyn["optimization_profile"]["min"] == [1, 3, 224, 224]


def test_timing_cache_path_is_per_gpu_and_version(tmp_path):
    a = timing_cache_path(tmp_path, "NVIDIA H100 80GB HBM3", "10.3.0")
    b = timing_cache_path(tmp_path, "NVIDIA GeForce RTX 2080 Ti", "10.3.0")
    assert a != b and a.parent == b.parent and " " not in a.name


def test_builder_is_driven_with_fp16_workspace_and_timing_cache(tmp_path):
    trt, calls = _fake_trt()
    cache = tmp_path / "cache" / "gpu.cache"
    plan = build_plan(tmp_path / "m.onnx", "input", (1, 3, 64, 64), "fp16", 256, cache, True)
    engine, facts = build_engine(trt, plan)
    assert engine == b"ENGINE" and calls["flags"] == ["fp16"] and calls["pool"] == ("workspace", 256 << 20)
    assert calls["profile"][0] == "input" and calls["network_flags"] == 0  # TensorRT 10: explicit batch implied
    assert cache.read_bytes() == b"CACHE" and facts["timing_cache_reused"] is False
    _, facts2 = build_engine(trt, plan)
    assert calls["cache_in"] == b"CACHE" and facts2["timing_cache_reused"] is True
    trt8, calls8 = _fake_trt(version="8.6.1")
    build_engine(trt8, plan)
    assert calls8["network_flags"] == 1


def test_parser_and_builder_failures_are_export_errors(tmp_path):
    plan = build_plan(tmp_path / "m.onnx", "input", (1, 3, 64, 64), "fp32", 256, tmp_path / "c", False)
    with pytest.raises(ExportError, match="GridSample"):
        build_engine(_fake_trt(parse_ok=False)[0], plan)
    with pytest.raises(ExportError, match="built no engine"):
        build_engine(_fake_trt(engine=None)[0], plan)


def test_no_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(DeviceUnavailableError, match="NVIDIA GPU"):
        require_gpu()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="needs the tensorrt extra (NVIDIA's "
                    "wheel) and an NVIDIA GPU; not installable in this workplace")
def test_real_engine_build_and_parity(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU")
    from mobileone_bench import pipeline
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one

    prepared = pipeline.prepare("mobileone_tiny")
    onnx = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions())
    result = export_one(prepared, FORMATS["tensorrt"], tmp_path, ExportOptions(),
                        context={"onnx": onnx.path, "onnx_manifest": onnx.manifest, "out": str(tmp_path)})
    assert result.ok and result.manifest["parity"]["top5_overlap"] == 5
