"""CLI: list, profile, reparam, and the one-line error contract."""

from __future__ import annotations

import json

import pytest
import torch

from mobileone_bench._version import __version__


def test_version_and_help(runner, cli):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("list", "profile", "reparam"):
        assert command in result.output


def test_list_json_has_sources_sizes_and_branches(runner, cli):
    result = runner.invoke(cli, ["list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["mobileone_s0"]["source"] == "own" and rows["mobileone_s0"]["reparameterizable"] is True
    assert rows["mobilenetv2-x1.4"]["target"] == "timm:mobilenetv2_140"
    assert rows["shufflenetv2-2.0"]["source"] == "torchvision"
    assert rows["mobileformer-96"]["source"] == "own" and rows["mobileformer-96"]["available"] is True


def test_list_zoo_keeps_unavailable_rows(runner, cli):
    result = runner.invoke(cli, ["list", "--zoo", "paper-table9", "--format", "json"])
    rows = json.loads(result.output)
    assert len(rows) == 30
    assert all(r["available"] for r in rows)


def test_list_outside_zoo_pattern_and_zoos(runner, cli):
    result = runner.invoke(cli, ["list", "timm:repvgg_a*", "--format", "json"])
    assert {"timm:repvgg_a0", "timm:repvgg_a1"} <= {r["name"] for r in json.loads(result.output)}
    result = runner.invoke(cli, ["list", "--zoos", "--format", "json"])
    assert {"paper-table9", "paper-table13", "mobileone", "quick"} <= {r["zoo"] for r in json.loads(result.output)}


@pytest.mark.parametrize("args, code, fragment", [
    (["list", "mobilenetv9"], 2, "did you mean mobilenetv1"),
    (["profile", "resnet-51"], 2, "unknown model 'resnet-51'"),
    (["profile", "--zoo", "paper-table99"], 2, "unknown zoo"),
    (["profile"], 2, "name at least one MODEL"),
    (["profile", "mobileone_tiny", "--input-size", "2", "2"], 2, "out of range"),
    (["reparam", "mobileone_tiny", "--weights", "missing.pth"], 2, "weights file not found"),
    (["reparam", "notbuilt-x1"], 1, "cannot be built"),
    (["reparam", "mobileone_tiny", "--rtol", "-1"], 2, "not in the range x>=0"),
])
def test_bad_input_is_one_clear_line(runner, cli, unavailable_model, args, code, fragment):
    result = runner.invoke(cli, args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert any(fragment in line for line in lines), result.output
    assert "Traceback" not in result.output
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("Error: ")


def test_debug_flag_shows_the_exception(runner, cli, unavailable_model):
    result = runner.invoke(cli, ["--debug", "reparam", unavailable_model])
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "ModelUnavailableError"


def test_profile_json_and_paper_columns(runner, cli, unavailable_model):
    result = runner.invoke(cli, ["profile", "mobileone_tiny", "mobileone_s0", unavailable_model, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.output)}
    assert rows["mobileone_tiny"]["status"] == "ok" and rows["mobileone_tiny"]["params"] > 0
    assert rows["mobileone_s0"]["flops_m"] == pytest.approx(275, rel=0.01)
    assert rows["mobileone_s0"]["paper_flops_m"] == 275
    assert rows[unavailable_model]["status"] == "unavailable"


def test_profile_csv(runner, cli):
    result = runner.invoke(cli, ["profile", "mobileone_tiny", "--format", "csv", "--input-size", "32", "32"])
    assert result.exit_code == 0
    header, row = result.output.strip().splitlines()[:2]
    assert header.startswith("model,input,params_m,flops_m")
    assert row.startswith("mobileone_tiny,32x32,")


def test_reparam_check_and_save(runner, cli, tmp_path):
    out = tmp_path / "tiny_fused.pth"
    result = runner.invoke(cli, ["reparam", "mobileone_tiny", "--check", "--save", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["check"] == "passed" and row["max_rel_err"] < 1e-4
    assert row["params_infer"] < row["params_train"]
    state = torch.load(out, weights_only=True)
    assert "stage0.reparam_conv.weight" in state
    # the saved fused weights load back into the train-time model
    result = runner.invoke(cli, ["reparam", "mobileone_tiny", "--weights", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
