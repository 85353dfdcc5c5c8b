"""The interleaved protocol through the pipeline and the CLI: records carry the rounds and the contention fields."""

from __future__ import annotations

import json

import pytest

from mobileone_bench import pipeline
from mobileone_bench.devices._rounds import plan_rounds
from mobileone_bench.store.records import ResultsStore, as_list

MODELS = ["mobileone_tiny", "mobileone_mu0", "torchvision:squeezenet1_1"]


class ScriptedSampler:
    """A contention sampler whose n-th block reads as contended when ``n`` is in ``contended``."""

    def __init__(self, contended=()):
        self.contended = set(contended)
        self.calls = 0

    def start(self):
        return self.calls

    def stop(self, token):
        self.calls += 1
        busy = token in self.contended
        return {"seconds": 0.01, "other_cpu": 0.6 if busy else 0.01, "other_cpu_s": 0.0, "steal": 0.0,
                "contended": busy, "load_1m_start": 0.1, "load_1m_end": 0.1, "mhz_start": None, "mhz_end": None}


def _job(tmp_path, **kw):
    base = dict(device="cpu", runtime="torch", warmup=1, runs=6, rounds=3, threads=1, input_size=(32, 32),
                models_dir=str(tmp_path / "models"), seed=5)
    return pipeline.LatencyJob(**{**base, **kw})


@pytest.fixture(scope="module")
def specs():
    from mobileone_bench.models import registry

    return [registry.resolve(m) for m in MODELS]


def test_several_models_are_measured_in_seeded_rounds(tmp_path, specs):
    """Flag only (no replacement rounds): every block counts and its reading is recorded."""
    store = ResultsStore(tmp_path / "results")
    sampler = ScriptedSampler(contended={3, 4, 5})  # the whole second round: a third of every model's runs
    results = pipeline.measure_models(specs, _job(tmp_path, max_extra_rounds=0), store, sampler=sampler)
    assert sampler.calls == 9  # 3 models x 3 rounds, one reading per block
    plan = plan_rounds(6, 1, 3, seed=5)
    for index, (rec, skipped) in enumerate(results):
        assert not skipped and rec["status"] == "ok", rec.get("error")
        assert rec["protocol"] == "interleaved" and rec["rounds"] == 3 and rec["round_seed"] == 5
        assert rec["models_in_rounds"] == 3 and rec["round_warmup"] == plan.round_warmup
        assert rec["n"] == 6 and as_list(rec["runs_per_round"]) == [2, 2, 2]
        assert as_list(rec["round_positions"]) == [plan.order(r, 3).index(index) for r in range(3)]
        assert len(as_list(rec["round_values_ms"])) == 3 and rec["round_cv"] is not None
        assert len(store.samples(rec)) == 6
        # exactly a third of the runs contended: recorded, not flagged (the flag needs more than a third)
        assert rec["contended_share"] == pytest.approx(1 / 3, abs=1e-3) and rec["contended"] is False
        assert as_list(rec["round_contended"]) == [False, True, False]
        assert rec["rounds_replaced"] == 0 and rec["max_extra_rounds"] == 0
        assert rec["other_cpu_max"] == 0.6
    again = pipeline.measure_models(specs, _job(tmp_path), store, sampler=ScriptedSampler())
    assert all(skipped for _, skipped in again)  # stored measurements are reused


def test_contended_rounds_are_replaced_and_the_statistics_come_from_clean_ones(tmp_path, specs):
    store = ResultsStore(tmp_path / "results")
    sampler = ScriptedSampler(contended={3, 4, 5})  # the whole second round
    job = _job(tmp_path, extra_time_share=100.0)  # the time budget is tested with a fake clock in test_rounds
    results = pipeline.measure_models(specs, job, store, sampler=sampler)
    assert sampler.calls == 12  # 9 planned blocks + one replacement per model
    for rec, _ in results:
        assert rec["status"] == "ok", rec.get("error")
        assert as_list(rec["runs_per_round"]) == [2, 2, 2, 2]
        assert as_list(rec["round_used"]) == [True, False, True, True]
        assert as_list(rec["round_contended"]) == [False, True, False, False]
        assert rec["rounds_replaced"] == 1 and rec["extra_rounds"] == 1
        assert rec["replacement_budget_exhausted"] is False
        assert rec["n"] == 6  # the requested runs, all from clean rounds
        assert rec["contended"] is False and rec["contended_share"] == 0.0
        samples = store.samples(rec)
        assert len(samples) == 8  # every round is kept, the replaced one too
        clean = samples[:2] + samples[4:]
        assert rec["median_ms"] == pytest.approx(sorted(clean)[2] / 2 + sorted(clean)[3] / 2)
        assert len(as_list(rec["round_values_ms"])) == 4
    assert not (tmp_path / "results" / "journal").exists() or \
        not list((tmp_path / "results" / "journal").iterdir())  # journals go once the records are stored


def test_mostly_contended_records_are_flagged_when_the_budget_runs_out(tmp_path, specs):
    store = ResultsStore(tmp_path / "results")
    results = pipeline.measure_models(specs[:2], _job(tmp_path, runs=4, rounds=2, extra_time_share=100.0), store,
                                      sampler=ScriptedSampler(contended=set(range(100))))
    for rec, _ in results:
        assert rec["status"] == "ok" and rec["contended"] is True
        assert rec["extra_rounds"] == 2 and rec["replacement_budget_exhausted"] is True
        assert pipeline.flagged(rec)
    assert len(store.records("latency")) == 2


def test_mostly_contended_records_are_flagged_and_kept_without_replacement(tmp_path, specs):
    store = ResultsStore(tmp_path / "results")
    results = pipeline.measure_models(specs[:2], _job(tmp_path, runs=4, rounds=2, max_extra_rounds=0), store,
                                      sampler=ScriptedSampler(contended={0, 1}))
    for rec, _ in results:
        assert rec["status"] == "ok" and rec["contended"] is True and rec["contended_share"] == 0.5
        assert pipeline.flagged(rec)
    assert len(store.records("latency")) == 2


def test_one_model_keeps_the_blocked_protocol_and_its_identity(tmp_path, specs):
    store = ResultsStore(tmp_path / "results")
    (rec, _), = pipeline.measure_models(specs[:1], _job(tmp_path), store, sampler=ScriptedSampler())
    assert rec["protocol"] == "blocked" and "runs_per_round" not in rec and rec["contended"] is False
    blocked, _ = pipeline.measure_latency(specs[0], _job(tmp_path), store, sampler=ScriptedSampler())
    assert blocked["record_id"] == rec["record_id"]  # the same measurement as the single-model path
    # the same model in rounds is another measurement (another key), stored beside it
    results = pipeline.measure_models(specs[:2], _job(tmp_path), store, sampler=ScriptedSampler())
    assert results[0][0]["key"] != rec["key"] and results[0][0]["protocol"] == "interleaved"


def test_blocked_protocol_for_several_models_times_each_in_one_block(tmp_path, specs):
    store = ResultsStore(tmp_path / "results")
    sampler = ScriptedSampler()
    results = pipeline.measure_models(specs[:2], _job(tmp_path, protocol="blocked"), store, sampler=sampler)
    assert sampler.calls == 2
    assert [r["protocol"] for r, _ in results] == ["blocked", "blocked"]


def test_a_failing_model_in_the_rounds_is_recorded_and_the_others_go_on(tmp_path, specs, monkeypatch, unavailable_model):
    from mobileone_bench.models import registry

    store = ResultsStore(tmp_path / "results")
    from mobileone_bench.pipeline import loading

    real = loading.block_timer

    def flaky(runner):
        block = real(runner)
        calls = []

        def run(warmup, runs):
            calls.append(1)
            if getattr(runner, "_flaky", False) and len(calls) == 2:
                raise RuntimeError("session lost")
            return block(warmup, runs)
        return run

    from mobileone_bench.devices import torch_cpu

    real_make = torch_cpu.make_runner

    def make_runner(runtime, **kw):
        r = real_make(runtime, **kw)
        r._flaky = kw["input_shape"] and len(make_runner.seen) == 1
        make_runner.seen.append(r)
        return r
    make_runner.seen = []
    monkeypatch.setattr(loading, "block_timer", flaky)
    monkeypatch.setattr(torch_cpu, "make_runner", make_runner)
    all_specs = [*specs, registry.resolve(unavailable_model)]
    results = pipeline.measure_models(all_specs, _job(tmp_path), store, sampler=ScriptedSampler())
    by_model = {r["model"]: r for r, _ in results}
    assert by_model[unavailable_model]["status"] == "failed" and pipeline.is_unavailable(by_model[unavailable_model])
    failed = by_model[specs[1].name]  # the second runner made fails in its second round
    assert failed["status"] == "failed" and "round 2 of 3: RuntimeError: session lost" in failed["error"]
    assert len(store.samples(failed)) == 2  # the samples of its first round are kept
    assert by_model[specs[0].name]["status"] == by_model[specs[2].name]["status"] == "ok"
    assert by_model[specs[0].name]["models_in_rounds"] == 3


def test_flagged():
    assert pipeline.flagged({"status": "ok", "contended": True})
    assert pipeline.flagged({"status": "ok", "contended": False, "noise_warning": "CV 0.4 > 0.1", "n": 100})
    assert not pipeline.flagged({"status": "ok", "contended": False, "noise_warning": None, "n": 100})
    # too few runs to judge: measuring again with as few changes nothing
    assert not pipeline.flagged({"status": "ok", "contended": False, "noise_warning": "only 3 runs", "n": 3})
    assert not pipeline.flagged({"status": "ok"})  # unknown contention is not a flag
    assert not pipeline.flagged({"status": "failed", "contended": True})


# ---------------------------------------------------------------------------------------------------------- CLI


def _cli_args(tmp_path, *extra):
    return ["latency", *MODELS[:2], "--runtime", "torch", "--warmup", "1", "--runs", "6", "--threads", "1",
            "--input-size", "32", "32", "--results", str(tmp_path / "results"), "--models-dir",
            str(tmp_path / "models"), *extra]


def test_cli_latency_interleaves_several_models(runner, cli, tmp_path):
    result = runner.invoke(cli, _cli_args(tmp_path, "--rounds", "2", "--seed", "9", "--format", "json"))
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["protocol"] for r in records] == ["interleaved", "interleaved"]
    assert {r["round_seed"] for r in records} == {9} and {r["rounds"] for r in records} == {2}
    for r in records:  # this machine's real contention readings: a contended round may have been replaced
        used = [n for n, keep in zip(as_list(r["runs_per_round"]), as_list(r["round_used"])) if keep]
        assert used == [3, 3] and r["n"] == 6
        assert len(as_list(r["runs_per_round"])) == 2 + r["rounds_replaced"]
        assert r["contention_source"]
    table = runner.invoke(cli, _cli_args(tmp_path, "--rounds", "2", "--seed", "9"))
    assert table.exit_code == 0 and "interleaved: 2 rounds x 3 runs over 2 models" in table.stdout
    blocked = runner.invoke(cli, _cli_args(tmp_path, "--protocol", "blocked", "--format", "json"))
    assert [r["protocol"] for r in json.loads(blocked.stdout)] == ["blocked", "blocked"]


@pytest.mark.parametrize("args,fragment", [(["--rounds", "0"], "--rounds"), (["--protocol", "zigzag"], "--protocol"),
                                           (["--wait-quiet", "soon"], "--wait-quiet"), (["--seed", "-3"], "--seed")])
def test_cli_protocol_options_are_checked(runner, cli, tmp_path, args, fragment):
    result = runner.invoke(cli, _cli_args(tmp_path, *args))
    assert result.exit_code == 2 and fragment in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_wait_quiet_gives_up_with_one_line(runner, cli, tmp_path, monkeypatch):
    from mobileone_bench.devices import _contention

    def busy(timeout, **kw):
        raise _contention.MeasurementError(f"--wait-quiet: the machine is still busy after {timeout:g} s")

    monkeypatch.setattr(_contention, "wait_quiet", busy)
    result = runner.invoke(cli, _cli_args(tmp_path, "--wait-quiet", "2"))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --wait-quiet: the machine is still busy after 2 s"
    assert not (tmp_path / "results").exists() or not ResultsStore(tmp_path / "results").records("latency")


def test_cli_wait_quiet_flag_alone_waits_60_s(runner, cli, tmp_path, monkeypatch):
    from mobileone_bench.devices import _contention

    seen = []
    monkeypatch.setattr(_contention, "wait_quiet", lambda timeout, **kw: seen.append(timeout) or 0.0)
    result = runner.invoke(cli, _cli_args(tmp_path, "--wait-quiet"))  # last: a bare flag takes no value
    assert result.exit_code == 0, result.output
    assert seen == [60.0]


def test_ort_spinning_is_set_and_recorded(runner, cli, tmp_path):
    base = ["latency", "mobileone_tiny", "--warmup", "1", "--runs", "3", "--threads", "1", "--input-size", "32",
            "32", "--results", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models"), "--format",
            "json"]
    on = json.loads(runner.invoke(cli, [*base, "--ort-spinning"]).stdout)[0]
    off = json.loads(runner.invoke(cli, [*base, "--no-ort-spinning"]).stdout)[0]
    assert json.loads(on["runtime_settings"])["allow_spinning"] is True
    assert json.loads(off["runtime_settings"])["allow_spinning"] is False
    assert json.loads(on["runtime_options"])["allow_spinning"] is True
    assert on["key"] != off["key"]  # the spin policy is part of what was measured


class AlwaysContended:
    def __init__(self, *a, **kw):
        pass

    def start(self):
        return None

    def stop(self, token):
        return {"seconds": 0.01, "other_cpu": 0.9, "other_cpu_s": 0.0, "steal": 0.0, "contended": True,
                "load_1m_start": 2.0, "load_1m_end": 2.0, "mhz_start": None, "mhz_end": None}


@pytest.mark.slow
def test_run_remeasure_flagged_appends_new_records(runner, cli, tmp_path, monkeypatch):
    from mobileone_bench.devices import _contention

    args = ["run", *MODELS[:2], "--runtime", "torch", "--warmup", "1", "--runs", "4", "--rounds", "2",
            "--threads", "1", "--input-size", "32", "32", "--results", str(tmp_path / "results"), "--models-dir",
            str(tmp_path / "models"), "--format", "json"]
    monkeypatch.setattr(_contention, "ContentionSampler", AlwaysContended)
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert all("contended 100%" in m["status"] for m in json.loads(first.stdout)["models"])
    store = ResultsStore(tmp_path / "results")
    assert len(store.records("latency")) == 2  # contended records are kept

    again = runner.invoke(cli, [*args, "--remeasure-flagged"])
    assert again.exit_code == 0, again.output
    assert "measured 2 flagged model(s) again" in again.stderr and "still flagged" in again.stderr
    assert len(store.records("latency")) == 4 and len(store.records("profile")) == 2

    monkeypatch.undo()
    monkeypatch.setattr(_contention, "ContentionSampler", lambda *a, **kw: type(
        "Quiet", (AlwaysContended,), {"stop": lambda self, t: {**AlwaysContended.stop(self, t), "other_cpu": 0.0,
                                                                "contended": False}})())
    quiet = runner.invoke(cli, [*args, "--remeasure-flagged"])
    assert quiet.exit_code == 0, quiet.output
    assert "still flagged" not in quiet.stderr
    assert all(m["status"].startswith("ok") and "contended" not in m["status"]
               for m in json.loads(quiet.stdout)["models"])
    assert len(store.records("latency")) == 6
    nothing = runner.invoke(cli, [*args, "--remeasure-flagged"])
    assert "no latency record is flagged" in nothing.stderr and len(store.records("latency")) == 6


def test_sessions_past_the_memory_budget_are_timed_as_a_group_and_released(tmp_path, specs, monkeypatch):
    """Each loaded model adds 1 GB (a fake reading of resident memory: the real one moves with the allocator) against
    a 0.5 GB budget: the models are timed two at a time (never alone while two are loaded); every model still gets
    its interleaved record, and each says its group and the models in it."""
    readings = iter(float(gb) for gb in range(1, 100))
    from mobileone_bench.pipeline import loading

    monkeypatch.setattr(loading, "resident_gb", lambda: next(readings))
    store = ResultsStore(tmp_path / "results")
    results = pipeline.measure_models(specs, _job(tmp_path, memory_budget_gb=0.5), store, sampler=ScriptedSampler())
    recs = [rec for rec, _ in results]
    assert [r["status"] for r in recs] == ["ok"] * 3
    assert sorted(r["round_group"] for r in recs) == [1, 1, 2]
    assert sorted(r["models_in_rounds"] for r in recs) == [1, 2, 2]
    assert all(r["protocol"] == "interleaved" and r["n"] == 6 for r in recs)
    one = pipeline.measure_models(specs, _job(tmp_path, memory_budget_gb=0), ResultsStore(tmp_path / "r2"),
                                  sampler=ScriptedSampler())
    assert {r["round_group"] for r, _ in one} == {1} and {r["models_in_rounds"] for r, _ in one} == {3}
