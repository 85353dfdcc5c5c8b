"""CLI contract of correlate / table / plot / roofline: help, and bad input as one clear line with a non-zero exit."""

from __future__ import annotations

import pytest

from mobileone_bench.store.records import ResultsStore
from tests.test_analysis_fixtures import add_latency, add_profile, build_store


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return str(build_store(tmp_path_factory.mktemp("cli") / "results").root)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Four models only: too few for a rank correlation."""
    store = ResultsStore(tmp_path_factory.mktemp("tiny") / "results")
    for i, m in enumerate(["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv1"]):
        add_profile(store, m, 100.0 * (i + 1), 1.0 + i)
        add_latency(store, m, 1.0 + i)
    return str(store.root)


def test_help_lists_and_explains(runner, cli):
    result = runner.invoke(cli, ["--help"])
    for command in ("correlate", "table", "plot", "roofline"):
        assert command in result.output
    result = runner.invoke(cli, ["roofline", "--help"])
    assert result.exit_code == 0 and "compute-bound" in result.output and "overhead-bound" in result.output
    result = runner.invoke(cli, ["table", "--help"])
    assert "--compare" in result.output and "rank agreement" in result.output


def _one_line(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, code, fragment", [
    (["correlate", "--device", "tpu"], 2, "unknown device 'tpu'; choose from cpu, gpu, iphone, mac"),
    (["correlate", "--against", "latency"], 2, "cannot correlate latency against 'latency'"),
    (["correlate", "--format", "xml"], 2, "unknown format 'xml'"),
    (["correlate", "--reference", "arxiv"], 2, "unknown reference 'arxiv'"),
    (["correlate", "--zoo", "nozoo"], 2, "unknown zoo"),
    (["correlate", "--device", "mac"], 1, "no latency to correlate"),
    (["table", "--layout", "table99"], 2, "unknown layout 'table99'; choose from table9, table14"),
    (["table", "--format", "xlsx"], 2, "unknown format 'xlsx'"),
    (["table", "resnet-51"], 2, "unknown model 'resnet-51'"),
    (["table", "mobileone_s4"], 1, "no records for mobileone_s4"),
    (["plot", "--device", "tpu"], 2, "unknown device 'tpu'"),
    (["plot", "--figure", "pie"], 2, "unknown figure 'pie'"),
    (["roofline", "--format", "xml"], 2, "unknown format 'xml'"),
])
def test_bad_input_is_one_clear_line(runner, cli, results, args, code, fragment):
    _one_line(runner.invoke(cli, args + ["--results", results]), code, fragment)


@pytest.mark.parametrize("command", [["correlate"], ["table"], ["plot"], ["roofline"]])
def test_empty_results_say_what_to_run(runner, cli, tmp_path, command):
    _one_line(runner.invoke(cli, command + ["--results", str(tmp_path / "nothing")]), 1, "run `mobileone-bench run`")


def test_too_few_models(runner, cli, tiny):
    _one_line(runner.invoke(cli, ["correlate", "--results", tiny]), 1, "needs at least 5")
    # the table itself works with four models
    result = runner.invoke(cli, ["table", "--results", tiny, "--compare"])
    assert result.exit_code == 0 and "needs at least 5" in result.output  # rank agreement: a note, not an error


def test_debug_shows_the_traceback(runner, cli, tmp_path):
    result = runner.invoke(cli, ["--debug", "correlate", "--results", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and result.exception is not None
    assert type(result.exception).__name__ == "AnalysisError"


def test_correlate_zoo_selects_models(runner, cli, results):
    import json

    result = runner.invoke(cli, ["correlate", "--results", results, "--zoo", "quick", "--device", "cpu",
                                 "--runtime", "onnxruntime", "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["rows"]
    from mobileone_bench.models.registry import zoo_models

    assert row["models"] == sorted(zoo_models("quick")) and row["n"] == 10  # not repvgg-a0, deit-tiny...
