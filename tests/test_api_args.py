"""One argument rule for the CLI and the API (issue 26, item 3, and the two surprises of item 7 it owns).

Every public function refuses a wrong type or a value out of range with a :class:`UsageError` whose one line names
the argument, before anything is built, exported, measured or written; the API's rules are the CLI's ranges; more
threads than logical cores is a warning that the record can show; a wildcard that selects more than a screenful of
models stops with the count unless confirmed.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings

import click
import pytest

import mobileone_bench as mb
from mobileone_bench import _args, api
from mobileone_bench.errors import BenchWarning, UsageError

#: What ``mb.__all__`` exports that is not a function taking arguments (none of the API is a class or a constant).
NOT_FUNCTIONS = {"__version__": "the version string"}

#: The functions that take ``**options``, and the options each takes (checked by their names too).
FORWARDS = api.OPTIONS

#: Good values of the arguments a function cannot be called without.
REQUIRED = {"create_model": {"name": "mobileone_tiny"}, "reparam": {"name": "mobileone_tiny"},
            "ablate": {"study": "activations"}, "merge": {"sources": "a", "into": "b"}, "evaluate": {"data": "images"}}


class Built(Exception):
    """Raised by the patched steps: something would have been built, measured or merged."""


@pytest.fixture
def nothing_runs(monkeypatch, tmp_path):
    """Every step that builds, measures, merges or reads a store raises :class:`Built`; the test runs in an empty
    folder, which must stay empty."""
    from mobileone_bench import pipeline
    from mobileone_bench.models import factory
    from mobileone_bench.pipeline import study
    from mobileone_bench.store import merging

    def built(*args, **kwargs):
        raise Built("a model was built, measured or merged")

    for module, name in [(pipeline, "prepare"), (study, "prepare"), (study, "measure_models"), (study, "run_models"),
                         (factory, "create_model"), (merging, "merge"), (merging, "open_results")]:
        monkeypatch.setattr(module, name, built)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    assert list(work.iterdir()) == []


def _public_functions() -> list[str]:
    names = [n for n in mb.__all__ if n not in NOT_FUNCTIONS]
    assert set(names) == set(api.__all__)
    return names


def _arguments(name: str) -> list[str]:
    """Every argument of a public function: its own, and the options it forwards."""
    params = inspect.signature(getattr(api, name)).parameters
    own = [p for p, v in params.items() if v.kind is not inspect.Parameter.VAR_KEYWORD]
    if any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values()):
        own += [p for p in FORWARDS[name] if p not in own]
    return own


CASES = [(name, arg) for name in _public_functions() for arg in _arguments(name)]


def test_the_cases_cover_every_public_function_and_its_forwarded_options():
    assert {name for name, _ in CASES} == set(api.__all__)
    assert set(FORWARDS) == {n for n in api.__all__ if any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(getattr(api, n)).parameters.values())}
    assert len(CASES) > 150  # every argument of 16 functions, not a sample


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, repr(text)
    return text


@pytest.mark.parametrize("name, arg", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_every_argument_refuses_a_wrong_type_in_one_line_naming_it(name, arg, nothing_runs):
    call = {**REQUIRED.get(name, {}), arg: object()}  # a value no argument takes
    with pytest.raises(UsageError) as info:
        getattr(api, name)(**call)
    line = _one_line(info.value)
    assert line.startswith(f"{arg} must be "), line


@pytest.mark.parametrize("call, fragment", [
    (lambda: mb.latency("mobileone_tiny", runs=2.5, input_size=(64, 64)), "runs must be an integer >= 1"),
    (lambda: mb.latency("mobileone_tiny", runs=True), "runs must be an integer >= 1 or None, not True (a bool)"),
    (lambda: mb.latency("mobileone_tiny", warmup=-1), "warmup must be an integer >= 0"),
    (lambda: mb.latency("mobileone_tiny", threads=0), "threads must be an integer >= 1"),
    (lambda: mb.run("mobileone_tiny", rounds=0), "rounds must be an integer >= 1"),
    (lambda: mb.latency("mobileone_tiny", extra_time=math.nan), "extra_time must be a number >= 0"),
    (lambda: mb.profile("mobileone_tiny", input_size=(64,)), "input_size must be (height, width)"),
    (lambda: mb.profile("mobileone_tiny", input_size=("a", 1)), "input_size must be (height, width)"),
    (lambda: mb.profile("mobileone_tiny", input_size=(4, 4)), "two integers from 8 to 4096"),
    (lambda: mb.profile("mobileone_tiny", results=3), "results must be a folder"),
    (lambda: mb.export("mobileone_tiny", input_size=(64, 64.0)), "input_size must be (height, width)"),
    (lambda: mb.export("mobileone_tiny", opset=6), "opset must be an integer >= 7"),
    (lambda: mb.latency(123), "models must be a string or a list of strings"),
    (lambda: mb.profile(["mobileone_tiny", 1]), "models must be a string or a list of strings or None, not a list "
                                                "holding 1"),
    (lambda: mb.load_results(123), "results must be a folder"),
    (lambda: mb.load_results("results", kind="latencies"), "kind must be one of 'latency', 'profile', 'peak'"),
    (lambda: mb.correlate(results=5), "results must be a folder"),
    (lambda: mb.correlate(results=None), "results must be a folder (a str or pathlib.Path) or a list of folders, "
                                         "not None"),
    (lambda: mb.table(results=[]), "not an empty list"),
    (lambda: mb.latency("mobileone_tiny", results=None), "results must be a folder"),
    (lambda: mb.latency("mobileone_tiny", results=["a", "b"]), "results must be a folder"),  # one store is written
    (lambda: mb.create_model(42), "name must be a model name"),
    (lambda: mb.reparam("mobileone_tiny", atol=-1e-3), "atol must be a finite number >= 0"),
    (lambda: mb.reparam("mobileone_tiny", rtol=math.inf), "rtol must be a finite number >= 0"),
    (lambda: mb.roofline(peak_gflops=0), "peak_gflops must be a finite number > 0"),
    (lambda: mb.latency(device="iphone", from_reports="report.json"), "write ['report.json']"),
    (lambda: mb.list_models(5), "pattern must be a string or None"),
    (lambda: mb.plot(5), "figures must be a string or a list of strings"),
    (lambda: mb.merge(5, "into"), "sources must be a folder"),
    (lambda: mb.export_results(out=3), "out must be a path"),
    (lambda: mb.report(results=[]), "results must be a folder (a str or pathlib.Path) or a list of folders, not an "
                                    "empty list"),
    (lambda: mb.run(on=5, cluster="auto"), "on must be a string or a list of strings"),
    (lambda: mb.table(compare="yes"), "compare must be True or False, not 'yes'"),
    (lambda: mb.explain("mobileone_tiny", profiled_runs=0), "profiled_runs must be an integer >= 1, not 0"),
])
def test_the_issue_s_bad_calls_are_one_typed_line(call, fragment, nothing_runs):
    with pytest.raises(UsageError) as info:
        call()
    assert fragment in _one_line(info.value)


@pytest.mark.parametrize("call, option", [
    (lambda: mb.correlate(result="results"), "result"),
    (lambda: mb.table(threds=1), "threds"),
    (lambda: mb.plot(device="cpu"), "device"),
    (lambda: mb.roofline(peak=5.0), "peak"),
    (lambda: mb.ablate("activations", zoo="quick"), "zoo"),
    (lambda: mb.latency("mobileone_tiny", run=5), "run"),
])
def test_an_option_a_function_does_not_take_is_named_with_the_ones_it_does(call, option, nothing_runs):
    with pytest.raises(UsageError) as info:
        call()
    line = _one_line(info.value)
    assert line.startswith(f"unknown option {option!r}; the options are: "), line


def test_weights_never_opens_a_file_descriptor(tmp_path, nothing_runs):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 64)
    fd = os.open(path, os.O_RDONLY)
    try:
        for call in (lambda: mb.create_model("mobileone_tiny", weights=fd),
                     lambda: mb.profile("mobileone_tiny", weights=fd),
                     lambda: mb.latency("mobileone_tiny", weights=fd)):
            with pytest.raises(UsageError, match=r"^weights must be a checkpoint file \(a str or pathlib.Path\)"):
                call()
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # not read from, and still open (os.lseek raises if closed)
    finally:
        os.close(fd)


def test_the_api_s_ranges_are_the_cli_s_option_by_option(cli):
    """Every number option of every command has the rule of the API argument of the same name."""
    from mobileone_bench.cli._common import FiniteFloat

    cli_to_api = {"trt_workspace": "trt_workspace_mb"}
    seen = set()
    for command in cli.commands.values():
        for param in command.params:
            if not isinstance(param.type, (click.IntRange, click.FloatRange)):
                continue
            name = cli_to_api.get(param.name, param.name)
            rule = _args.RULES[name]
            where = f"{command.name} --{param.name}"
            assert (rule.min, rule.max) == (param.type.min, param.type.max), where
            if isinstance(param.type, click.FloatRange):
                assert isinstance(rule, _args.Real) and rule.min_open == param.type.min_open, where
                assert rule.finite == isinstance(param.type, FiniteFloat), where
            else:
                assert isinstance(rule, _args.Integer), where
            seen.add(name)
    assert {"runs", "warmup", "threads", "rounds", "seed", "opset", "atol", "peak_gflops", "extra_time"} <= seen


@pytest.mark.parametrize("side", [_args.INPUT_SIZE_MIN - 1, _args.INPUT_SIZE_MAX + 1])
def test_the_input_size_range_is_one_rule(runner, cli, side, nothing_runs):
    result = runner.invoke(cli, ["profile", "mobileone_tiny", "--input-size", str(side), "64"])
    assert result.exit_code == 2 and "out of range" in result.output
    with pytest.raises(UsageError, match="input_size must be"):
        mb.profile("mobileone_tiny", input_size=(side, 64))


# ---------------------------------------------------------------------------------------------- threads > cores


def _cores() -> int:
    from mobileone_bench.environment import cpu_info

    return int(cpu_info()["cores_logical"])


def test_more_threads_than_cores_is_a_python_warning_from_the_api():
    cores = _cores()
    with pytest.warns(BenchWarning, match=rf"^{cores + 1} threads on a machine with {cores} logical cores"):
        job = api.latency_job("cpu", threads=cores + 1)
    assert job.threads == cores + 1  # said, not changed: the user's number is measured and recorded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.latency_job("cpu", threads=cores)
        api.latency_job("cpu")  # the default (physical cores) never exceeds them
    assert not [w for w in caught if issubclass(w.category, BenchWarning)]


def test_more_threads_than_cores_is_one_warning_line_before_any_work(runner, cli, tmp_path):
    cores = _cores()
    result = runner.invoke(cli, ["latency", "mobileone_tiny", "no_such_model", "--threads", str(cores + 1),
                                 "--results", str(tmp_path / "r"), "--models-dir", str(tmp_path / "m")])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, result.stderr
    assert lines[0] == (f"warning: {cores + 1} threads on a machine with {cores} logical cores: the threads share "
                        f"cores, so the latency includes that oversubscription (the record keeps threads and "
                        f"env_cores_logical)")
    assert lines[1].startswith("Error: unknown model 'no_such_model'")
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_the_record_of_an_oversubscribed_measurement_says_so(runner, cli, tmp_path, quiet_machine):
    cores = _cores()
    result = runner.invoke(cli, ["latency", "mobileone_tiny", "--runtime", "torch", "--warmup", "0", "--runs", "2",
                                 "--threads", str(cores + 1), "--input-size", "32", "32", "--format", "json",
                                 "--results", str(tmp_path / "r"), "--models-dir", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(f"warning: {cores + 1} threads on a machine with {cores} logical cores") == 1
    (record,) = json.loads(result.stdout)
    assert record["status"] == "ok"
    assert (record["threads"], record["env_cores_logical"]) == (cores + 1, cores)


# ---------------------------------------------------------------------------------------------- a screenful


def _timm_count(pattern: str = "*") -> int:
    import timm

    return len(timm.list_models(pattern))


@pytest.mark.parametrize("function", ["profile", "export", "latency", "run"])
def test_a_wildcard_over_a_whole_library_shows_the_count_and_stops(function, nothing_runs):
    with pytest.raises(UsageError) as info:
        getattr(mb, function)("timm:*")
    line = _one_line(info.value)
    assert line == (f"{_timm_count()} models match 'timm:*', more than {_args.SELECTION_LIMIT}; nothing was built: "
                    f"narrow the selection, or confirm with --yes (yes=True in Python)")


@pytest.mark.parametrize("args", [["profile", "timm:*"], ["export", "timm:*", "--out", "m"],
                                  ["latency", "timm:*", "--results", "r", "--models-dir", "m"],
                                  ["run", "timm:*", "--results", "r", "--models-dir", "m"]])
def test_the_cli_asks_for_yes_in_one_line(runner, cli, args, nothing_runs):
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: {_timm_count()} models match 'timm:*', more than {_args.SELECTION_LIMIT}; nothing was "
                     f"built: narrow the selection, or confirm with --yes (yes=True in Python)"]


def test_yes_goes_on_to_build(runner, cli, nothing_runs):
    pattern = "resnet*"
    assert _timm_count(pattern) > _args.SELECTION_LIMIT, "the test needs a timm family above the limit"
    with pytest.raises(Built):
        mb.latency(f"timm:{pattern}", yes=True)
    result = runner.invoke(cli, ["latency", f"timm:{pattern}", "--yes"])
    assert "a model was built" in result.output and "models match" not in result.output


def test_a_screenful_or_less_needs_no_confirmation():
    assert len(api.select("mobileone*")) == len(mb.list_models("mobileone*"))
    assert len(api.select(zoo="paper-table9")) == 30  # the largest zoo
    import timm

    names = [f"timm:{n}" for n in timm.list_models("resnet*")]
    assert len(api.select(names)) == len(names)  # names given one by one are the user's own list
