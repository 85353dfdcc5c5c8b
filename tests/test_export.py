"""Export: ONNX and Core ML artifacts, parity, manifests, the cache, failure recording, CLI bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobileone_bench import pipeline
from mobileone_bench.formats import FORMATS, parse_formats
from mobileone_bench.formats._base import (
    CACHED,
    EXPORTED,
    FAILED,
    PARITY_FAILED,
    ExportOptions,
    export_one,
    read_manifest,
    tree_sha256,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny():
    return pipeline.prepare("mobileone_tiny")


def test_onnx_export_manifest_and_parity(tmp_path, tiny):
    result = export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions())
    assert result.status == EXPORTED, result.error
    folder = tmp_path / "mobileone_tiny" / "onnx-fp32-64x64"
    manifest = read_manifest(folder)
    assert manifest["model"] == "mobileone_tiny" and manifest["input_shape"] == [1, 3, 64, 64]
    assert manifest["precision"] == "fp32" and manifest["reparameterized"] is True
    assert manifest["format_meta"]["opset"] == 18 and manifest["format_meta"]["exporter"] in ("dynamo", "torchscript")
    assert manifest["parity"]["passed"] and manifest["parity"]["max_rel_err"] < 1e-3
    assert manifest["sha256"] == tree_sha256(folder / "model.onnx")
    assert manifest["versions"]["onnxruntime"] and manifest["versions"]["torch"]
    assert manifest["reparam_check"]["passed"] and manifest["weights_sha256"] is None
    assert {"export_seconds", "created", "files", "cache_key"} <= set(manifest)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx"]


def test_cache_hit_miss_and_force(tmp_path, tiny):
    first = export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions())
    again = export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions())
    assert (first.status, again.status) == (EXPORTED, CACHED)
    assert again.manifest["created"] == first.manifest["created"]
    forced = export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions(), force=True)
    assert forced.status == EXPORTED
    # a different setting is a different artifact
    dyn = export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions(dynamic_batch=True))
    assert dyn.status == EXPORTED and "dynbatch" in dyn.path and dyn.manifest["parity"]["dynamic_batch_checked"]
    # a tampered artifact is not trusted
    (tmp_path / "mobileone_tiny" / "onnx-fp32-64x64" / "model.onnx").write_bytes(b"garbage")
    assert export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions()).status == EXPORTED


def test_timm_model_onnx_export(tmp_path):
    prepared = pipeline.prepare("timm:mobilenetv3_small_050", input_size=(64, 64))
    result = export_one(prepared, FORMATS["onnx"], tmp_path, ExportOptions())
    assert result.status == EXPORTED and result.manifest["parity"]["passed"]
    assert result.manifest["target"] == "timm:mobilenetv3_small_050"


def test_coreml_mlprogram_fp16_spec_is_validated(tmp_path, tiny):
    result = export_one(tiny, FORMATS["coreml"], tmp_path, ExportOptions())
    assert result.status == EXPORTED, result.error
    assert result.path.endswith("coreml-fp16-64x64-mlprogram/model.mlpackage")
    spec = result.manifest["format_meta"]["spec"]
    assert spec["model_type"] == "mlProgram" and spec["fp16_ops"] > 0
    assert spec["inputs"] == [{"name": "input", "kind": "multiarray", "shape": [1, 3, 64, 64], "data_type": 65568}]
    assert [o["name"] for o in spec["outputs"]] == ["logits"]
    assert result.manifest["settings"]["deployment_target"] == "iOS16"
    import sys

    assert result.manifest["parity"]["prediction"] is (sys.platform == "darwin")


def test_coreml_export_leaves_no_temporary_package(tmp_path, tiny, monkeypatch):
    """coremltools converts into a temporary .mlpackage and removes it only at exit: the export removes it at once."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = export_one(tiny, FORMATS["coreml"], tmp_path / "out", ExportOptions())
    assert result.status == EXPORTED, result.error
    assert (Path(result.path) / "Manifest.json").is_file()  # the saved package is where it belongs
    assert sorted(p.name for p in scratch.rglob("*.mlpackage")) == []


def test_coreml_neuralnetwork_image_input_fp32(tmp_path, tiny):
    options = ExportOptions(precision="fp32", coreml_type="neuralnetwork", coreml_input="image")
    result = export_one(tiny, FORMATS["coreml"], tmp_path, options)
    assert result.status == EXPORTED, result.error
    assert result.path.endswith(".mlmodel")
    meta = result.manifest["format_meta"]
    assert meta["spec"]["inputs"][0] == {"name": "image", "kind": "image", "shape": [64, 64]}
    assert meta["spec"]["fp16_weight_layers"] == 0
    assert meta["image_preprocessing"]["scale"] == pytest.approx(1 / (255 * 0.226), rel=1e-3)
    assert result.manifest["settings"]["deployment_target"] == "iOS14"


def test_converter_failure_is_recorded_not_raised(tmp_path, tiny, monkeypatch):
    from mobileone_bench.formats import coreml

    def boom(*args, **kwargs):
        raise RuntimeError("unsupported op 'select_scatter'")

    monkeypatch.setattr(coreml, "_convert", boom)
    result = export_one(tiny, FORMATS["coreml"], tmp_path, ExportOptions())
    assert result.status == FAILED and "select_scatter" in result.error
    assert not (tmp_path / "mobileone_tiny" / "coreml-fp16-64x64-mlprogram").exists()
    assert not [p for p in (tmp_path / "mobileone_tiny").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_parity_failure_keeps_artifact_and_says_so(tmp_path, tiny, monkeypatch):
    from mobileone_bench.formats import onnx as onnx_format

    real = onnx_format.run_parity

    def bad_parity(*args, **kwargs):
        result = real(*args, **kwargs)
        result.update(passed=False, summary="max abs 3.1 (above tolerance)")
        return result

    monkeypatch.setattr(onnx_format, "run_parity", bad_parity)
    result = export_one(tiny, FORMATS["onnx"], tmp_path, ExportOptions())
    assert result.status == PARITY_FAILED and "parity" in result.error
    assert read_manifest(tmp_path / "mobileone_tiny" / "onnx-fp32-64x64")["parity"]["passed"] is False


def test_format_parsing_and_precision_checks():
    assert [f.name for f in parse_formats("onnx, trt,coreml,onnx")] == ["onnx", "tensorrt", "coreml"]
    from mobileone_bench.errors import UsageError

    with pytest.raises(UsageError, match="unknown export format 'tflite'"):
        parse_formats("onnx,tflite")
    with pytest.raises(UsageError, match="onnx artifacts cannot be fp16"):
        ExportOptions(precision="fp16").precision_for(FORMATS["onnx"])
    assert ExportOptions().precision_for(FORMATS["coreml"]) == "fp16"
    with pytest.raises(UsageError, match="iOS15 or later"):
        ExportOptions(coreml_target="iOS14").validate()


def test_cli_export_summary_and_failure_exit(runner, cli, tmp_path, unavailable_model):
    out = tmp_path / "models"
    result = runner.invoke(cli, ["export", "mobileone_tiny", unavailable_model, "--format", "onnx", "--out", str(out),
                                 "--json"])
    rows = json.loads(result.stdout)
    by_model = {r["model"]: r for r in rows}
    assert by_model["mobileone_tiny"]["status"] == "exported"
    assert by_model[unavailable_model]["status"] == "unavailable"
    assert result.exit_code == 0  # unavailable rows are listed, not failures
    again = runner.invoke(cli, ["export", "mobileone_tiny", "--format", "onnx", "--out", str(out), "--json"])
    assert json.loads(again.stdout)[0]["status"] == "cached"


@pytest.mark.parametrize("args, fragment", [
    (["--format", "onnx,tflite"], "unknown export format 'tflite'"),
    (["--format", "onnx", "--precision", "fp16"], "onnx artifacts cannot be fp16"),
    (["--format", "tensorrt"], None),
    (["--format", "coreml", "--deployment-target", "iOS99"], "unknown deployment target"),
])
def test_cli_export_bad_inputs(runner, cli, tmp_path, args, fragment):
    result = runner.invoke(cli, ["export", "mobileone_tiny", "--out", str(tmp_path), *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    if fragment:
        assert fragment in lines[0]
    else:  # TensorRT: names the extra when missing, or says there is no GPU
        assert "mobileone-bench[tensorrt]" in lines[0] or "GPU" in lines[0]


def test_cli_export_unwritable_output(runner, cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(cli, ["export", "mobileone_tiny", "--out", str(blocker / "models")])
    assert result.exit_code == 2 and "cannot write to output directory" in result.output
