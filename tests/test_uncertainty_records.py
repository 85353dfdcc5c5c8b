"""Intervals and proxies end to end: what the pipeline stores, what `table --ci` prints, what the proxy figures plot.

One real interleaved run of two tiny models (torch runtime, 32x32, a few runs) feeds every test of this module.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.conftest import QuietSampler, flat

MODELS = ["mobileone_tiny", "mobileone_mu0"]
RUNS, ROUNDS = 12, 3
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import mobileone_bench as mb
    from mobileone_bench.devices import _contention
    from mobileone_bench.store.records import ResultsStore

    root = tmp_path_factory.mktemp("uncertainty")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_contention, "ContentionSampler", QuietSampler)  # as conftest.quiet_machine
        mb.run(MODELS, results=root / "results", models_dir=root / "models", runtime="torch", warmup=1, runs=RUNS,
               threads=1, input_size=(32, 32), rounds=ROUNDS)
    return root / "results", ResultsStore(root / "results")


def _latency(store, model):
    (rec,) = [r for r in store.records("latency") if r["model"] == model and r["status"] == "ok"]
    return rec


@pytest.mark.parametrize("model", MODELS)
def test_stored_records_carry_both_intervals(study, model):
    from mobileone_bench.stats import interval_ci, rounds_ci

    _, store = study
    rec = _latency(store, model)
    samples = store.samples(rec)
    assert len(samples) == RUNS
    assert rec["ci_low_ms"] <= rec["median_ms"] <= rec["ci_high_ms"]
    assert (rec["ci_level"], rec["ci_method"], rec["ci_resamples"], rec["ci_seed"]) == \
        (0.95, "order statistics (exact binomial)", None, None)
    again = interval_ci(samples, "median")  # the stored interval is the one its own samples give
    assert (again["ci_low_ms"], again["ci_high_ms"]) == pytest.approx((rec["ci_low_ms"], rec["ci_high_ms"]))
    per_round = json.loads(rec["round_values_ms"])
    assert len(per_round) == ROUNDS
    expected = rounds_ci(per_round)
    # (the per-round values are stored rounded to 1e-5 ms, the interval from the unrounded ones)
    assert rec["round_ci_low_ms"] == pytest.approx(expected["round_ci_low_ms"], abs=1e-4)
    assert rec["round_ci_high_ms"] == pytest.approx(expected["round_ci_high_ms"], abs=1e-4)
    assert rec["round_ci_low_ms"] < np.mean(per_round) < rec["round_ci_high_ms"]
    assert rec["round_ci_method"] == f"Student t over {ROUNDS} round statistics"


def test_stored_profiles_carry_the_proxies(study):
    from mobileone_bench.models import factory
    from mobileone_bench.proxies import count_proxies
    from mobileone_bench.reparameterization import reparameterize

    _, store = study
    for model in MODELS:
        (prof,) = [r for r in store.records("profile") if r["model"] == model]
        inference = reparameterize(factory.create_model(model), input_shape=(1, 3, 32, 32))  # what is counted
        mine = count_proxies(inference, (1, 3, 32, 32))
        assert prof["activations"] == mine.activations and prof["depth"] == mine.depth > 0
        assert prof["activations_m"] == round(mine.activations / 1e6, 4)
        assert prof["memory_mb_fp32"] == round(mine.memory_bytes(4) / 1e6, 3)
        assert prof["memory_mb_fp16"] == round(mine.memory_bytes(2) / 1e6, 3)


def test_table_ci_shows_the_stored_bounds(study, runner, cli):
    results, store = study
    plain = runner.invoke(cli, ["table", *MODELS, "--results", str(results), "--format", "md"])
    assert plain.exit_code == 0, plain.output
    with_ci = runner.invoke(cli, ["table", *MODELS, "--results", str(results), "--format", "md", "--ci"])
    assert with_ci.exit_code == 0, with_ci.output
    for model in MODELS:
        rec = _latency(store, model)
        value, low, high = (f"{rec[k]:.2f}" for k in ("median_ms", "ci_low_ms", "ci_high_ms"))
        assert f"{value} ({low}-{high})" in with_ci.stdout
        assert f"({low}-{high})" not in plain.stdout
    rows = [line for line in with_ci.stdout.splitlines() if line.startswith("| ") and "obile" in line]
    assert rows and all(re.search(r"\d+\.\d+ \(\d+\.\d+-\d+\.\d+\)", line) for line in rows)


def test_table_json_always_has_the_bounds(study, runner, cli):
    results, store = study
    out = runner.invoke(cli, ["table", *MODELS, "--results", str(results), "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)["rows"]
    by = {r["model"]: r for r in rows}
    for model in MODELS:
        rec = _latency(store, model)
        assert (by[model]["cpu_ci_low_ms"], by[model]["cpu_ci_high_ms"]) == pytest.approx(
            (rec["ci_low_ms"], rec["ci_high_ms"]))


@pytest.mark.parametrize("figure, field", [("latency-vs-activations", "activations_m"),
                                           ("latency-vs-memory", "memory_mb_fp32"), ("latency-vs-depth", "depth")])
def test_proxy_figures_plot_the_stored_proxies(study, tmp_path, figure, field):
    from mobileone_bench.analysis.plots import OURS_GID, make_plots

    results, store = study
    (written,) = make_plots(store, tmp_path / "fig", figures=[figure], devices=["cpu"])
    assert written["points"] == len(MODELS)
    assert written["png"].endswith(f"{figure}_cpu-torch.png")
    root = ET.parse(written["svg"]).getroot()
    group = next(g for g in root.iter(f"{SVG}g") if g.get("id") == OURS_GID)
    assert sum(1 for _ in group.iter(f"{SVG}use")) == len(MODELS)

    from mobileone_bench.analysis.plots import figure_panels

    (panel,) = figure_panels(store, [figure], devices=["cpu"])
    profiles = {r["model"]: r for r in store.records("profile")}
    xs = {p["model"]: p["x"] for p in panel["points"]}
    assert xs == pytest.approx({m: profiles[m][field] for m in MODELS})
    ys = {p["model"]: p["y"] for p in panel["points"]}
    assert ys == pytest.approx({m: _latency(store, m)["median_ms"] for m in MODELS})


def test_plot_cli_names_the_proxy_figures(study, runner, cli, tmp_path):
    results, _ = study
    out = runner.invoke(cli, ["plot", "--results", str(results), "--figure", "latency-vs-depth",
                              "--out", str(tmp_path / "figs")])
    assert out.exit_code == 0, out.output
    assert "latency-vs-depth_cpu-torch" in flat(out.output)
    bad = runner.invoke(cli, ["plot", "--results", str(results), "--figure", "latency-vs-colour"])
    assert bad.exit_code == 2 and "latency-vs-depth" in bad.output
