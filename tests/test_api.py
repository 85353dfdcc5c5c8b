"""The Python API (mobileone_bench.api, lazy at the package top level): every public function on the tiny model,
the values and DataFrame columns it returns, and the CLI giving the same records for the same call."""

from __future__ import annotations

import doctest
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mobileone_bench as mb
from mobileone_bench import api
from mobileone_bench.errors import AnalysisError, BenchError, UnknownModelError, UsageError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["mobileone_tiny", "mobileone_mu0"]
FAST = dict(runtime="torch", warmup=1, runs=4, threads=1, input_size=(32, 32))
FAST_ARGS = ["--runtime", "torch", "--warmup", "1", "--runs", "4", "--threads", "1", "--input-size", "32", "32"]


def test_import_does_not_import_torch_or_pandas():
    code = ("import sys, mobileone_bench, mobileone_bench.api; "
            "print(sorted(m for m in ('torch', 'pandas', 'timm', 'onnxruntime', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_top_level_names_are_the_api():
    assert list(mb.__all__) == ["__version__", *api.__all__]
    for name in mb.__all__:
        if name == "__version__":
            continue
        fn = getattr(mb, name)
        assert fn is getattr(api, name) and callable(fn)
        assert fn.__doc__ and len(fn.__doc__.splitlines()) > 2, name
        assert name in dir(mb)
    assert set(mb.__all__) - {"__version__"} == set(api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mb.nope  # noqa: B018


def test_list_models_is_the_cli_list(runner, cli):
    frame = mb.list_models("mobileone*")
    assert list(frame.columns[:7]) == list(api.MODEL_COLUMNS)
    assert {"mobileone_s0", "mobileone_tiny"} <= set(frame["name"])
    assert frame.loc[frame["name"] == "mobileone_s0", "branches"].item() == "yes"
    result = runner.invoke(cli, ["list", "mobileone*", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == mb.list_models("mobileone*", as_frame=False)
    zoos = mb.list_zoos()
    assert list(zoos.columns) == ["zoo", "models", "description"]
    assert zoos.loc[zoos["zoo"] == "quick", "models"].item() == 10


def test_create_model_is_the_verified_inference_time_module():
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    from mobileone_bench.models.archs.mobileone import MobileOneBlock

    model = mb.create_model("mobileone_tiny")
    assert not model.training
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert all(b.reparam_conv is not None for b in model.modules() if isinstance(b, MobileOneBlock))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    train = mb.create_model("mobileone_tiny", reparameterize=False)
    assert any(isinstance(m, _BatchNorm) for m in train.modules())
    with pytest.raises(UnknownModelError):
        mb.create_model("no_such_model_anywhere")


def test_export_and_reparam_are_the_api_functions_whatever_was_imported_before():
    import importlib
    import inspect

    importlib.import_module("mobileone_bench.formats")
    importlib.import_module("mobileone_bench.reparameterization")
    for name in ("export", "reparam"):
        assert inspect.isfunction(getattr(mb, name)) and getattr(mb, name) is getattr(api, name)
    from mobileone_bench.formats import parse_formats  # an ordinary package

    assert parse_formats("onnx")[0].name == "onnx"


def test_reparam_row(tmp_path):
    row = mb.reparam("mobileone_tiny", input_size=(32, 32), save=str(tmp_path / "fused.pth"))
    assert row["check"] == "passed" and row["params_infer"] < row["params_train"]
    assert row["input"] == "32x32" and Path(row["saved"]).is_file()


def test_profile_counts_like_the_complexity_module(capsys):
    from mobileone_bench.complexity import profile_model

    frame = mb.profile("mobileone_tiny", input_size=(64, 64))
    assert list(frame.columns[:len(api.PROFILE_COLUMNS)]) == list(api.PROFILE_COLUMNS)
    row = frame.iloc[0]
    expected = profile_model(mb.create_model("mobileone_tiny"), (1, 3, 64, 64), reparameterized=True)
    assert (row["status"], row["flops"], row["params"], row["input"]) == ("ok", expected.flops, expected.params,
                                                                          "64x64")
    assert capsys.readouterr() == ("", "")  # nothing is printed unless progress=True
    mb.profile("mobileone_tiny", input_size=(32, 32), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # a progress bar goes to stderr, never into the results


def test_errors_are_typed_never_exit():
    with pytest.raises(UnknownModelError):
        mb.profile("no_such_model_anywhere")
    with pytest.raises(UsageError, match="iphone or mac"):
        mb.latency("mobileone_tiny", destination="my-phone")
    with pytest.raises(UsageError, match="MODEL"):
        mb.export()
    with pytest.raises(UsageError, match="unknown study"):
        mb.ablate("nothing")
    assert issubclass(UnknownModelError, BenchError)


def test_export_rows(tmp_path):
    frame = mb.export("mobileone_tiny", formats="onnx", out=tmp_path / "models", input_size=(32, 32))
    assert list(frame.columns[:8]) == list(api.EXPORT_COLUMNS)
    row = frame.iloc[0]
    assert (row["model"], row["format"], row["precision"], row["status"]) == ("mobileone_tiny", "onnx", "fp32", "exported")
    assert Path(row["path"]).exists() and frame.attrs["out"] == str(tmp_path / "models")
    again = mb.export("mobileone_tiny", formats="onnx", out=tmp_path / "models", input_size=(32, 32))
    assert again.iloc[0]["status"] == "cached"


def _identity(rec):
    drop = ("record_id", "created", "samples_file")
    return {k: v for k, v in rec.items() if k not in drop and not k.startswith(("env_", "contention_"))
            and k.endswith(("model", "device", "runtime", "precision", "threads", "runs", "warmup", "report",
                            "input_shape", "protocol", "key", "runtime_options"))}


def test_latency_api_and_cli_make_the_same_records(runner, cli, tmp_path, quiet_machine):
    frame = mb.latency(TINY, results=tmp_path / "api", models_dir=tmp_path / "models", **FAST)
    assert list(frame["model"]) == TINY and set(frame["status"]) == {"ok"}
    for col in ("latency_ms", "median_ms", "cv", "n", "threads", "protocol", "env_torch"):
        assert col in frame.columns
    assert frame["protocol"].tolist() == ["interleaved"] * 2 and frame.attrs["reused"] == []
    assert (frame["n"] == 4).all()

    result = runner.invoke(cli, ["latency", *TINY, *FAST_ARGS, "--results", str(tmp_path / "cli"),
                                 "--models-dir", str(tmp_path / "models"), "--format", "json"])
    assert result.exit_code == 0, result.output
    by_cli = json.loads(result.stdout)
    assert [_identity(r) for r in by_cli] == [_identity(r) for r in frame.to_dict("records")]
    assert set(by_cli[0]) == set(frame.columns)

    # the same call again reuses what either of them stored: the same records, by id
    reused = mb.latency(TINY, results=tmp_path / "cli", models_dir=tmp_path / "models", as_frame=False, **FAST)
    assert [r["record_id"] for r in reused] == [r["record_id"] for r in by_cli]


def test_run_then_every_analysis_function(runner, cli, tmp_path, quiet_machine):
    import matplotlib.figure

    results, models = tmp_path / "results", tmp_path / "models"
    out = mb.run(TINY, results=results, models_dir=models, **FAST)
    assert set(out) == {"models", "records", "table", "agreement", "correlation", "notes"}
    summary = out["models"]
    assert list(summary.columns) == list(api.SUMMARY_COLUMNS) and list(summary["model"]) == TINY
    assert summary["status"].str.startswith("ok").all() and (summary["flops_m"] > 0).all()
    assert list(out["records"]["model"]) == TINY

    # the CLI's `run --format json` on the same call reuses the records the API stored, and says the same
    result = runner.invoke(cli, ["run", *TINY, *FAST_ARGS, "--results", str(results), "--models-dir", str(models),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    by_cli = json.loads(result.stdout)
    assert [m["latency_ms"] for m in by_cli["models"]] == summary["latency_ms"].tolist()
    assert all(m["status"].startswith("ok (stored)") for m in by_cli["models"])

    stored = mb.load_results(results)
    assert sorted(stored["model"]) == sorted(TINY) and {"record_id", "kind", "key"} <= set(stored.columns)
    assert set(mb.load_results(results, "profile")["model"]) == set(TINY)
    assert len(mb.load_results(results, None, latest=False)) >= 4

    with pytest.raises(AnalysisError, match="at least 5"):  # two models: no rank correlation, one clear error
        mb.correlate(results)
    corr = mb.correlate(results, reference="paper")  # the paper's rows, and a note on ours
    assert {"type", "runtime", "n", "flops_rho", "flops_p", "params_rho"} <= set(corr.columns)
    assert corr.attrs["title"] and any("at least 5" in n for n in corr.attrs["notes"])
    rows = mb.correlate(results, reference="paper", as_frame=False)["rows"]
    assert [(r["type"], r["n"], r["flops_rho"]) for r in rows] == list(zip(corr["type"], corr["n"], corr["flops_rho"]))

    tab = mb.table("table9", results=results, models=["mobileone_mu0"], all_rows=False)
    assert "footnotes" in tab.attrs and tab.attrs["title"]

    figs = mb.plot("latency-vs-flops", results=results, out=tmp_path / "figures")
    assert figs and all(isinstance(f, matplotlib.figure.Figure) for f in figs.values())
    name = next(iter(figs))
    assert name.startswith("latency-vs-flops_cpu-torch")
    assert (tmp_path / "figures" / f"{name}.png").is_file() and (tmp_path / "figures" / f"{name}.svg").is_file()

    roof = mb.roofline(results, peak_gflops=100.0)
    assert set(roof["model"]) == set(TINY) and roof.attrs["peaks"][0]["gflops"] == 100.0


def test_analysis_of_an_empty_folder_is_one_error(tmp_path):
    with pytest.raises(AnalysisError):
        mb.correlate(tmp_path / "empty")
    with pytest.raises(AnalysisError):
        mb.roofline(tmp_path / "empty")
    assert mb.load_results(tmp_path / "empty").empty


def test_the_docstring_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs_on_the_tiny_models(tmp_path, monkeypatch, quiet_machine):
    code = _readme_example()
    assert "MODELS = [" in code and "mb.correlate" in code
    # the README's models and runs, made small; everything else runs as written
    small = ["mobileone_tiny", "mobileone_mu0", "mobileone_mu1", "mobileone_mu2", "mobileone_s0"]
    code = re.sub(r"MODELS = \[.*?\]", f"MODELS = {small!r}", code, flags=re.S)
    code = re.sub(r"RUNS = \d+", "RUNS = 4", code)
    code = code.replace("mb.run(MODELS,", "mb.run(MODELS, input_size=(32, 32), runtime='torch', threads=1,")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert list(scope["summary"]["model"]) == small
    table1 = scope["table1"]
    assert table1.loc[0, "n"] == 5 and -1 <= table1.loc[0, "flops_rho"] <= 1
    assert len(scope["records"]) == 5 and scope["figures"]
