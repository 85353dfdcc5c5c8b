"""Formats and runtimes are plugins: a table entry of plain data plus one module each, and no branch on their names."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

from mobileone_bench import devices, formats
from mobileone_bench.errors import UsageError
from mobileone_bench.formats import FORMATS
from mobileone_bench.formats._base import ExportOptions, FormatOptions

PACKAGE = Path(formats.__file__).resolve().parents[1]


def test_every_format_entry_is_data_that_names_real_formats_and_a_module_with_options():
    for name, spec in FORMATS.items():
        assert spec.name == name and spec.default_precision in spec.precisions
        assert spec.builds_from is None or spec.builds_from in FORMATS, name
        assert spec.builds_from != name and spec.libraries, name
        module = formats.format_module(spec)
        assert callable(module.export), name
        options = module.Options()
        assert isinstance(options, FormatOptions) and dataclasses.is_dataclass(options)
        options.validate()  # the defaults are valid
        assert {"atol", "rtol"} <= set(options.settings())
        assert isinstance(options.folder_flags(spec.default_precision), list)
    assert FORMATS["tensorrt"].builds_from == "onnx"  # the paper's engine is built from the ONNX graph
    for alias in ("trt", "pte", "mlpackage"):
        assert formats.get_format(alias).name in FORMATS


def test_export_options_hand_each_format_its_own_fields():
    options = ExportOptions(precision="fp32", opset=17, coreml_type="neuralnetwork", trt_workspace_mb=64,
                            calibration_samples=4)
    assert options.for_format(FORMATS["onnx"]).opset == 17
    trt = options.for_format(FORMATS["tensorrt"])
    assert (trt.opset, trt.trt_workspace_mb, trt.precision) == (17, 64, "fp32")  # TensorRT takes ONNX's opset too
    assert options.for_format(FORMATS["coreml"]).settings()["deployment_target"] == "iOS14"
    assert not hasattr(options.for_format(FORMATS["onnx"]), "coreml_type")
    assert dataclasses.replace(options, precision=None).for_format(FORMATS["onnx"]).opset == 17
    with pytest.raises(TypeError, match="unexpected keyword argument.*'coreml_colour'"):
        ExportOptions(coreml_colour="rgb")
    with pytest.raises(UsageError, match="ONNX opset 99 is out of range"):
        ExportOptions(opset=99).validate()
    with pytest.raises(UsageError, match="unknown precision 'bf16'; choose fp32, fp16 or int8"):
        ExportOptions(precision="bf16").validate()


def test_refused_precisions_name_the_format_that_carries_them():
    with pytest.raises(UsageError, match=r"coreml artifacts cannot be int8 .*int8 is the executorch format's"):
        ExportOptions(precision="int8").precision_for(FORMATS["coreml"])
    with pytest.raises(UsageError, match=r"onnx artifacts cannot be fp16 .*TensorRT 10/11 writes its own half-precision ONNX graph"):
        ExportOptions(precision="fp16").precision_for(FORMATS["onnx"])
    with pytest.raises(UsageError, match=r"cannot be fp16 \(supported: fp32, int8\)$"):
        ExportOptions(precision="fp16").precision_for(FORMATS["executorch"])


def test_no_code_outside_the_tables_branches_on_a_format_or_runtime_name():
    """`formats/_base.py` and `pipeline/artifacts.py` read the table (``builds_from``, ``libraries``...) instead."""
    names = set(FORMATS) | {spec.name for spec in devices.RUNTIMES.values()}
    for path in (PACKAGE / "formats" / "_base.py", PACKAGE / "pipeline" / "artifacts.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                literals = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)}
                assert not literals & names, f"{path.name}:{node.lineno} compares with {literals & names}"
    base = (PACKAGE / "formats" / "_base.py").read_text(encoding="utf-8")
    assert "formats.executorch" not in base and "formats import executorch" not in base


def test_every_runtime_entry_names_a_module_that_makes_runners():
    for (device, name), spec in devices.RUNTIMES.items():
        assert spec.device == device and spec.name == name and spec.default_precision in spec.precisions
        assert spec.artifact is None or spec.artifact in FORMATS, name
        assert spec.libraries, name
        module = importlib.import_module(f"mobileone_bench.devices.{spec.module}")
        if device in ("cpu", "gpu"):  # iPhone and Mac runs go through the Apple harness, not a runner here
            assert callable(module.make_runner), name
    modules = [spec.module for spec in devices.RUNTIMES.values() if spec.device in ("cpu", "gpu")]
    assert len(modules) == len(set(modules))  # one runtime per file


def test_runtime_modules_never_import_an_exporter():
    for path in sorted((PACKAGE / "devices").glob("*.py")):
        if path.name.startswith("apple"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            assert not module.startswith("mobileone_bench.formats"), f"{path.name} imports {module}"
            assert not any(n.startswith("mobileone_bench.formats") for n in names), f"{path.name} imports {names}"


def test_runtime_versions_carry_each_runtimes_libraries():
    expected = {"onnxruntime": ["onnxruntime", "onnx", "torch"], "torch": ["torch"],
                "executorch": ["executorch", "torchao", "torch"], "tensorrt": ["tensorrt", "torch", "gpu",
                                                                             "gpu_driver", "cuda"],
                "torch-cuda": ["torch", "gpu", "gpu_driver", "cuda"], "coreml": ["coremltools", "torch"]}
    for runtime, keys in expected.items():
        assert list(devices.runtime_versions(runtime)) == keys, runtime
    assert devices.runtime_versions("nope") == {}
    from mobileone_bench.environment import library_versions

    assert devices.runtime_versions("torch")["torch"] == library_versions()["torch"]


def test_cpu_runtime_options_are_table_data():
    assert devices.cpu_runtime_options(None) == (("allow_spinning", devices.ORT_SPINNING_DEFAULT),
                                                 ("graph_optimization", "all"))
    assert devices.cpu_runtime_options("torch", graph_optimization="basic") == (("graph_optimization", "basic"),)
    assert devices.cpu_runtime_options("executorch") == (("delegate", "xnnpack"),)


def _fake_exports(monkeypatch, fail: set[str] = frozenset()):
    """``export_one`` replaced by a recorder: each call's format, precision and context, and an ok result."""
    from mobileone_bench.formats import _base

    calls = []

    def export_one(prepared, fmt, out, options, *, force=False, context=None):
        calls.append((fmt.name, options.precision, dict(context or {})))
        status = _base.FAILED if fmt.name in fail else _base.EXPORTED
        return _base.ExportResult("m", fmt.name, options.precision_for(fmt), status, f"{out}/{fmt.name}.bin",
                                  {"input_name": "input"})

    monkeypatch.setattr(_base, "export_one", export_one)
    return calls


def test_a_runtime_artifact_is_exported_after_the_one_it_builds_from(monkeypatch, tmp_path):
    from mobileone_bench.errors import ExportError
    from mobileone_bench.pipeline.artifacts import artifact_for
    from mobileone_bench.pipeline.job import LatencyJob

    calls = _fake_exports(monkeypatch)
    job = LatencyJob(device="gpu", runtime="tensorrt", precision="fp16", models_dir=str(tmp_path))
    result, path = artifact_for(object(), job, False)
    assert [(name, precision) for name, precision, _ in calls] == [("onnx", None), ("tensorrt", "fp16")]
    assert calls[1][2]["onnx"] == f"{tmp_path}/onnx.bin" and calls[1][2]["onnx_manifest"] == {"input_name": "input"}
    assert result.format == "tensorrt" and path == f"{tmp_path}/tensorrt.bin"
    calls.clear()
    assert artifact_for(object(), LatencyJob(device="cpu", runtime="torch"), False) == (None, None) and not calls
    _fake_exports(monkeypatch, fail={"onnx"})
    with pytest.raises(ExportError, match="^onnx export"):
        artifact_for(object(), job, False)


def test_an_export_sweep_reuses_a_source_it_exported_and_exports_one_it_was_not_asked_for(monkeypatch, tmp_path):
    from mobileone_bench.pipeline.artifacts import export_formats

    calls = _fake_exports(monkeypatch)
    options = ExportOptions(precision="fp16", opset=17)
    results = export_formats(object(), [FORMATS["coreml"], FORMATS["tensorrt"]], tmp_path, options)
    assert [r.format for r in results] == ["coreml", "tensorrt"]  # the ONNX source is not a result
    assert [(name, precision) for name, precision, _ in calls] == [("coreml", "fp16"), ("onnx", None),
                                                                   ("tensorrt", "fp16")]
    assert calls[2][2]["onnx"] == f"{tmp_path}/onnx.bin"
    calls.clear()
    results = export_formats(object(), [FORMATS["onnx"], FORMATS["tensorrt"]], tmp_path, ExportOptions())
    assert [name for name, _, _ in calls] == ["onnx", "tensorrt"]  # exported once
    calls = _fake_exports(monkeypatch, fail={"onnx"})
    results = export_formats(object(), [FORMATS["onnx"], FORMATS["tensorrt"]], tmp_path, ExportOptions())
    assert [name for name, _, _ in calls] == ["onnx", "tensorrt"] and "onnx" not in calls[1][2]
