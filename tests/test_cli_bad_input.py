"""Every bad input is one line on stderr and exit status 2, before any work starts (nothing is written)."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def bad_weights(tmp_path):
    tmp_path = tmp_path / ("long_folder_name_" * 6) / ("deeper_" * 12)  # the message must survive a long path
    tmp_path.mkdir(parents=True)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("garbage\n")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    folder = tmp_path / "ckpt.pth"
    folder.mkdir()
    whole = tmp_path / "whole_model.pth"
    torch.save(nn.Linear(2, 2), whole)  # a pickled module, not a state dict: weights_only=True refuses it
    truncated = tmp_path / "truncated.pth"
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "ok.pth")
    truncated.write_bytes((tmp_path / "ok.pth").read_bytes()[:64])
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(print, protocol=2))  # a pickle that would call a global
    return {
        "missing": (tmp_path / "nope.pth", "weights file not found"),
        "folder": (folder, "is a folder"),
        "empty": (empty, "is empty"),
        "garbage": (garbage, "not a PyTorch or safetensors checkpoint"),
        "whole-model pickle": (whole, "refuses to load"),
        "global-calling pickle": (evil, "refuses to load"),
        "truncated": (truncated, "corrupt or truncated"),
    }


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "garbage", "whole-model pickle",
                                  "global-calling pickle", "truncated"])
@pytest.mark.parametrize("command", [["export", "mobileone_tiny"], ["latency", "mobileone_tiny"],
                                     ["profile", "mobileone_tiny"], ["reparam", "mobileone_tiny"]])
def test_bad_weights_file_is_one_line_before_any_work(runner, cli, tmp_path, bad_weights, kind, command):
    path, fragment = bad_weights[kind]
    extra = ["--results", str(tmp_path / "r"), "--models-dir", str(tmp_path / "m")] if command[0] == "latency" else []
    extra += ["--out", str(tmp_path / "m")] if command[0] == "export" else []
    result = runner.invoke(cli, [*command, "--weights", str(path), *extra])
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert fragment in line and "--weights" in line
    assert "weights_only=False" not in result.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


@pytest.mark.parametrize("args, fragment", [
    (["latency", "mobileone_tiny", "--threads", "0"], "--threads"),
    (["latency", "mobileone_tiny", "--threads", "-1"], "--threads"),
    (["latency", "mobileone_tiny", "--runs", "0"], "--runs"),
    (["latency", "mobileone_tiny", "--warmup", "-1"], "--warmup"),
    (["latency", "mobileone_tiny", "--threads", "two"], "not a valid integer"),
    (["run", "--threads", "0"], "--threads"),
    (["run", "--runs", "-5"], "--runs"),
    (["ablate", "activations", "--threads", "0"], "--threads"),
    (["export", "mobileone_tiny", "--opset", "0"], "--opset"),
    (["export", "mobileone_tiny", "--trt-workspace", "0"], "--trt-workspace"),
    (["reparam", "mobileone_tiny", "--atol", "-1e-3"], "--atol"),
    (["reparam", "mobileone_tiny", "--rtol", "nan"], "--rtol"),
    (["profile", "mobileone_tiny", "--input-size", "0", "224"], "out of range"),
    (["correlate", "--threads", "0"], "--threads"),
    (["table", "--threads", "-3"], "--threads"),
    (["roofline", "--threads", "0"], "--threads"),
    (["roofline", "--peak-gflops", "0"], "--peak-gflops"),
    (["latency", "mobileone_tiny", "--no-such-flag"], "No such option"),
    (["--no-such-flag"], "No such option"),
])
def test_bad_numbers_and_options_are_one_line(runner, cli, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert fragment in line
    assert "--help" in line  # where to look next
    assert not (tmp_path / "results").exists() and not (tmp_path / "models").exists()


def test_a_good_weights_file_still_loads(runner, cli, tmp_path):
    from mobileone_bench.models import factory

    path = tmp_path / "tiny.pth"
    torch.save(factory.create_model("mobileone_tiny").state_dict(), path)
    result = runner.invoke(cli, ["profile", "mobileone_tiny", "--weights", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output


def test_warnings_are_one_clean_line_each_once(runner, cli, tmp_path):
    import json

    store = tmp_path / "r"
    store.mkdir()
    good = {"key": "k1", "kind": "profile", "status": "ok", "model": "mobileone_tiny", "input_shape": [1, 3, 64, 64],
            "params": 1, "flops": 1}
    (store / "records.jsonl").write_text(json.dumps(good) + "\n" + '{"broken\n')
    for command in (["table", "--results", str(store)], ["correlate", "--results", str(store)]):
        result = runner.invoke(cli, command)
        warning_lines = [line for line in result.stderr.splitlines() if "unreadable line" in line]
        assert len(warning_lines) == 1, result.stderr
        assert warning_lines[0].startswith("warning: ") and "records.py" not in result.stderr
        assert "UserWarning" not in result.stderr
