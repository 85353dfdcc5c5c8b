"""TensorRT export: the builder driven as each real release allows (strict fakes of 8.6, 10.x and 11.4 built from the
committed API lists), precision from the ONNX graph, TF32 a visible choice, opsets checked per version; the real build
needs an NVIDIA GPU and the extra (marked ``gpu``, skipped here)."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest
import torch

from mobileone_bench.devices import _tensorrt
from mobileone_bench.errors import DeviceUnavailableError, ExportError
from mobileone_bench.formats import tensorrt as trt_format
from mobileone_bench.formats.tensorrt import build_engine, build_plan, network_flags, require_gpu, timing_cache_path
from tests.test_tensorrt_fake import VERSIONS, FakeTensorRT, gpu_behaviour, install, surface

STRONG = [v for v in VERSIONS if int(v.split(".")[0]) >= 10]


def _plan(tmp_path, version, precision="fp16", **kw):
    kw.setdefault("onnx_dtype", "float16" if precision == "fp16" and version in STRONG else "float32")
    kw.setdefault("opset", 17)
    return build_plan(tmp_path / "m.onnx", "input", (1, 3, 64, 64), precision, 256, tmp_path / "cache" / "t.cache",
                      kw.pop("dynamic", False), trt_version=surface(version)["module"]["__version__"], **kw)


def _fake(version, **kw):
    from tests.test_tensorrt_fake import FakeCuda

    return FakeTensorRT(version, gpu_behaviour(FakeCuda(), **kw))


@pytest.mark.parametrize("version", VERSIONS)
def test_fp16_is_built_as_each_release_allows(tmp_path, version):
    trt = _fake(version)
    engine, facts = build_engine(trt, _plan(tmp_path, version, dynamic=True))
    assert engine == b"ENGINE"
    flags = [a[0] for a, _ in trt.called("IBuilderConfig.set_flag")]
    cleared = [a[0] for a, _ in trt.called("IBuilderConfig.clear_flag")]
    (network_flag,), _ = trt.called("Builder.create_network")[0]
    major = int(version.split(".")[0])
    if major == 8:  # weak typing: the fp32 graph, the builder may choose fp16
        assert facts["typing"] == "weak" and trt.BuilderFlag.FP16 in flags
        assert network_flag == 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    else:  # strongly typed: the graph's types are the precision; no FP16 flag (11 has none)
        assert facts["typing"] == "strong" and all(f.name != "FP16" for f in flags)
        expected = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if major == 10 else 0
        assert network_flag == expected
    assert trt.BuilderFlag.TF32 in cleared and facts["builder_flags"] == (["FP16"] if major == 8 else [])
    assert trt.called("IBuilderConfig.profiling_verbosity=")[0][0] == (trt.ProfilingVerbosity.DETAILED,)
    assert facts["platform_has_fast_fp16"] is (None if major >= 11 else True)  # never a default True on 11
    assert facts["tensorrt"] == surface(version)["module"]["__version__"]


@pytest.mark.parametrize("version", VERSIONS)
def test_tf32_is_set_only_when_asked(tmp_path, version):
    trt = _fake(version)
    _, facts = build_engine(trt, _plan(tmp_path, version, "fp32", tf32=True))
    assert [a[0].name for a, _ in trt.called("IBuilderConfig.set_flag")] == ["TF32"]
    assert not trt.called("IBuilderConfig.clear_flag") and facts["builder_flags"] == ["TF32"]


def test_the_old_fp16_call_fails_on_tensorrt_11_and_the_new_path_never_makes_it(tmp_path):
    trt = _fake(VERSIONS[-1])
    config = trt.IBuilderConfig()
    with pytest.raises(AttributeError):  # what export/tensorrt.py did before: config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.FP16)
    with pytest.raises(AttributeError):
        trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH  # noqa: B018
    build_engine(trt, _plan(tmp_path, VERSIONS[-1]))
    assert all(a[0].name != "FP16" for a, _ in trt.called("IBuilderConfig.set_flag"))


@pytest.mark.parametrize("version", STRONG)
def test_a_strongly_typed_fp16_engine_needs_the_fp16_graph(tmp_path, version):
    with pytest.raises(ExportError, match="fp16 ONNX graph"):
        _plan(tmp_path, version, onnx_dtype="float32")
    with pytest.raises(ExportError, match="fp32 ONNX graph"):
        _plan(tmp_path, version, "fp32", onnx_dtype="float16")


@pytest.mark.parametrize("version, opset, ok", [("8.6", 17, True), ("8.6", 18, False), ("10.16", 22, True),
                                                 ("10.16", 23, False), ("11.4", 23, True), ("11.4", 26, False)])
def test_the_opset_is_checked_against_each_parser(tmp_path, version, opset, ok):
    if ok:
        _plan(tmp_path, version, opset=opset)
    else:
        with pytest.raises(ExportError, match=r"reads opsets .* --opset \d+"):
            _plan(tmp_path, version, opset=opset)


@pytest.mark.parametrize("version", VERSIONS)
def test_timing_cache_is_written_then_reused(tmp_path, version):
    trt = _fake(version)
    plan = _plan(tmp_path, version)
    _, facts = build_engine(trt, plan)
    assert Path(plan["timing_cache"]).read_bytes() == b"CACHE" and facts["timing_cache_reused"] is False
    _, facts2 = build_engine(trt, plan)
    assert trt.called("IBuilderConfig.create_timing_cache")[-1][0] == (b"CACHE",) and facts2["timing_cache_reused"]


@pytest.mark.parametrize("version", VERSIONS)
def test_parser_and_builder_failures_are_export_errors(tmp_path, version):
    with pytest.raises(ExportError, match="GridSample"):
        build_engine(_fake(version, parse_ok=False), _plan(tmp_path, version))
    with pytest.raises(ExportError, match="built no engine"):
        build_engine(_fake(version, engine=None), _plan(tmp_path, version))


def test_a_plan_for_another_major_version_is_refused(tmp_path):
    with pytest.raises(ExportError, match="imported"):
        build_engine(_fake(VERSIONS[-1]), _plan(tmp_path, VERSIONS[1]))


def test_network_flags_per_release():
    for version in VERSIONS:
        trt = _fake(version)
        assert isinstance(network_flags(trt, trt.__version__), int)


def test_timing_cache_path_is_per_gpu_and_version(tmp_path):
    a = timing_cache_path(tmp_path, "NVIDIA H100 80GB HBM3", "10.3.0")
    b = timing_cache_path(tmp_path, "NVIDIA GeForce RTX 2080 Ti", "10.3.0")
    assert a != b and a.parent == b.parent and " " not in a.name


@pytest.mark.parametrize("dists, expected", [
    ({"tensorrt": "11.4.0.106", "tensorrt-cu13": "11.4.0.106"}, ("tensorrt", "11.4.0.106")),
    ({"tensorrt-cu12": "10.16.1.11"}, ("tensorrt-cu12", "10.16.1.11")),
    ({"tensorrt-cu13-bindings": "11.4.0.106"}, ("tensorrt-cu13-bindings", "11.4.0.106")),
    ({}, None)])
def test_the_version_comes_from_whichever_distribution_provides_it(monkeypatch, dists, expected):
    from importlib import metadata

    def version(name):
        if name not in dists:
            raise metadata.PackageNotFoundError(name)
        return dists[name]

    from mobileone_bench import environment

    monkeypatch.setattr(environment.metadata, "version", version)
    found = _tensorrt.installed_tensorrt()
    assert (None if found is None else (found["distribution"], found["version"])) == expected
    # every record's library versions say the same (environment.library_versions)
    assert environment.library_versions(("tensorrt",))["tensorrt"] == (expected[1] if expected else None)
    settings = trt_format.Options().settings()  # what the manifest and the cache key hold
    assert settings["tensorrt_distribution"] == (expected[0] if expected else None)
    if expected:
        strong = int(expected[1].split(".")[0]) >= 10
        assert settings["typing"] == ("strong" if strong else "weak")
        assert settings["fp16_onnx_dtype"] == ("float16" if strong else "float32")


def test_tf32_enters_the_cache_key_and_the_folder_name():
    off, on = trt_format.Options(), trt_format.Options(tf32=True)
    assert off.settings()["tf32"] is False and on.settings()["tf32"] is True
    assert on.folder_flags("fp32") == ["tf32"] and off.folder_flags("fp32") == []


def test_the_fp16_graph_is_half_inside_with_float32_io(tmp_path):
    import onnx as onnx_lib

    from mobileone_bench.formats.onnx import export_fp16

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    facts = export_fp16(model, (1, 3, 16, 16), tmp_path / "m.fp16.onnx", 17)
    assert facts["input_dtype"] == facts["output_dtype"] == "float" and facts["dtype"] == "float16"
    assert facts["fp16_initializers"] >= 4 and facts["fp32_initializers"] == 0
    ops = [n.op_type for n in onnx_lib.load(str(tmp_path / "m.fp16.onnx")).graph.node]
    assert ops[0] == "Cast" and ops[-1] == "Cast"
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is untouched


@pytest.mark.parametrize("version", VERSIONS)
def test_export_builds_from_the_right_graph_and_records_it(tmp_path, monkeypatch, version):
    fake, world = install(monkeypatch, version)
    monkeypatch.setattr(trt_format, "require_gpu", lambda: "NVIDIA Fake GPU")
    written = []
    monkeypatch.setattr(trt_format.onnx, "export_fp16", lambda model, shape, path, opset, dyn: (
        written.append(path), Path(path).write_bytes(b"fp16"), {"opset": opset, "dtype": "float16"})[-1])
    monkeypatch.setattr("mobileone_bench.devices._tensorrt.installed_tensorrt",
                        lambda: {"distribution": "tensorrt-cu13", "version": fake.__version__})
    monkeypatch.setattr(trt_format, "installed_tensorrt",
                        lambda: {"distribution": "tensorrt-cu13", "version": fake.__version__})
    src = tmp_path / "onnx" / "model.onnx"
    src.parent.mkdir()
    src.write_bytes(b"fp32")
    model = _Engineish()
    prepared = types.SimpleNamespace(model=model, input_shape=(1, 3, 8, 8))
    work = tmp_path / "work"
    work.mkdir()
    options = trt_format.Options(opset=17)
    out = trt_format.export(prepared, work, "fp16", options,
                            {"onnx": str(src), "onnx_manifest": {"format_meta": {"opset": 17}}, "out": str(tmp_path)})
    strong = version in STRONG
    assert out.meta["onnx_dtype"] == ("float16" if strong else "float32")
    assert out.meta["builder"]["onnx"] == str(work / "model.fp16.onnx" if strong else src)
    assert bool(written) is strong
    assert out.meta["layer_precisions"] == {"fp16": 2, "fp32": 1} and out.meta["tensorrt_distribution"]
    assert out.parity["top5_overlap"] == 5 and out.parity["passed"]


class _Engineish(torch.nn.Module):
    """A model computing what the fake engine computes, so the parity check has something to agree with."""

    def forward(self, x):
        from tests.test_tensorrt_fake import engine_output

        return engine_output(x)


def test_no_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(DeviceUnavailableError, match="NVIDIA GPU"):
        require_gpu()


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="needs the tensorrt extra (NVIDIA's "
                    "wheel) and an NVIDIA GPU")
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_real_engine_build_and_parity(tmp_path, precision):
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU")
    from mobileone_bench import pipeline
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import ExportOptions, export_one

    prepared = pipeline.prepare("mobileone_tiny")
    onnx = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions(opset=17))
    result = export_one(prepared, FORMATS["tensorrt"], tmp_path, ExportOptions(precision=precision, opset=17),
                        context={"onnx": onnx.path, "onnx_manifest": onnx.manifest, "out": str(tmp_path)})
    assert result.ok, result.error
    meta = result.manifest["format_meta"]
    assert result.manifest["parity"]["top5_overlap"] == 5
    if precision == "fp16":
        assert meta["layer_precisions"].get("fp16", 0) > 0  # fp16 really ran
    assert result.manifest["settings"]["tensorrt"] == meta["tensorrt"]


def test_tf32_flows_from_the_job_to_the_engines_export(monkeypatch, tmp_path):
    """``--tf32`` on a GPU latency job is a runtime option, in the record's identity, and TensorRT's export gets it."""
    from mobileone_bench import _args
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats import _base
    from mobileone_bench.pipeline import artifacts

    job = _args.latency_job(device="gpu", tf32=True, models_dir=tmp_path, check_available=False)
    assert dict(job.runtime_options)["tf32"] is True and dict(job.runtime_options)["cuda_graphs"] is True
    seen = {}

    def export_one(prepared, fmt, out, options, force=False, context=None):
        seen[fmt.name] = options.for_format(fmt)
        return _base.ExportResult("m", fmt.name, "fp16", _base.EXPORTED, str(tmp_path / fmt.name), {})

    monkeypatch.setattr(_base, "export_one", export_one)
    artifacts.artifact_for(types.SimpleNamespace(), job, force=False)
    assert seen["tensorrt"].tf32 is True and not hasattr(seen["onnx"], "tf32")
    assert _base.ExportOptions(tf32=True).for_format(FORMATS["tensorrt"]).settings()["tf32"] is True


def test_the_cli_offers_tf32_for_latency_and_export(runner, cli):
    for command in ("latency", "export"):
        out = runner.invoke(cli, [command, "--help"])
        assert out.exit_code == 0 and "--tf32 / --no-tf32" in out.output
