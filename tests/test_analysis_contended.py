"""The analysis commands leave contended latency records out by default, say so, and keep them on request."""

from __future__ import annotations

import json

import pytest

from mobileone_bench.store.records import ResultsStore
from tests.conftest import flat
from tests.test_analysis_fixtures import add_latency, add_profile

MODELS = [("mobileone_s0", 100, 1.0, 1.0), ("mobileone_s1", 200, 2.0, 2.0), ("mobileone_s2", 300, 3.0, 3.0),
          ("mobileone_s3", 400, 4.0, 4.0),
          ("mobileone_s4", 500, 5.0, 5.0), ("repvgg-b1", 600, 6.0, 6.0)]


@pytest.fixture
def store(tmp_path):
    """Six models whose quiet latencies rank as their FLOPs; mobileone_s1's only record and mobileone_s4's newest
    are contended (and would break the ranking)."""
    store = ResultsStore(tmp_path / "results")
    for name, flops, params, _ in MODELS:
        add_profile(store, name, flops, params)
    for name, _, _, ms in MODELS:
        if name != "mobileone_s1":
            add_latency(store, name, ms, contended=False, created="2026-12-01T10:00:00+00:00")
    add_latency(store, "mobileone_s1", 40.0, contended=True, created="2026-12-01T10:00:00+00:00")
    add_latency(store, "mobileone_s4", 0.5, contended=True, created="2026-12-01T11:00:00+00:00")
    add_latency(store, "repvgg-b1", 6.1, created="2026-12-01T12:00:00+00:00")  # contention unknown: kept
    return store


def test_latency_frame_leaves_contended_records_out_and_says_so(store):
    from mobileone_bench.store.frames import latency_frame

    frame, notes = latency_frame(store)
    by_model = frame.set_index("model")["latency_ms"]
    assert "mobileone_s1" not in by_model  # its only record is contended
    assert by_model["mobileone_s4"] == pytest.approx(5.0)  # the older quiet record, not the newer contended one
    assert by_model["repvgg-b1"] == pytest.approx(6.1)  # unknown contention is not a flag
    note = next(n for n in notes if "contended" in n)
    assert "1 model(s) left out (mobileone_s1)" in note and "older uncontended record (mobileone_s4)" in note
    assert "--include-contended" in note

    kept, notes = latency_frame(store, include_contended=True)
    by_model = kept.set_index("model")["latency_ms"]
    assert by_model["mobileone_s1"] == pytest.approx(40.0) and by_model["mobileone_s4"] == pytest.approx(0.5)
    assert not any("contended" in n for n in notes)


def test_correlate_and_table_filter_by_default(runner, cli, store):
    args = ["--results", str(store.root), "--format", "json"]
    quiet = json.loads(runner.invoke(cli, ["correlate", *args]).stdout)
    loud = json.loads(runner.invoke(cli, ["correlate", *args, "--include-contended"]).stdout)
    q, lo = quiet["rows"][0], loud["rows"][0]
    assert q["n"] == 5 and lo["n"] == 6
    assert q["flops_rho"] == pytest.approx(1.0)  # the quiet records rank exactly as the FLOPs
    assert lo["flops_rho"] < 0.5
    assert any("contended" in n for n in quiet["notes"])

    table = runner.invoke(cli, ["table", "--results", str(store.root), "mobileone_s0", "mobileone_s1", "mobileone_s4"])
    assert table.exit_code == 0, table.output
    assert "1 model(s) left out (mobileone_s1)" in flat(table.stdout)


def test_roofline_and_plot_accept_the_option(runner, cli, store, tmp_path):
    result = runner.invoke(cli, ["roofline", "--results", str(store.root), "--peak-gflops", "100", "--format",
                                 "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert "mobileone_s1" not in {r["model"] for r in rows}
    result = runner.invoke(cli, ["roofline", "--results", str(store.root), "--peak-gflops", "100", "--format",
                                 "json", "--include-contended"])
    assert "mobileone_s1" in {r["model"] for r in json.loads(result.stdout)["rows"]}
    plot = runner.invoke(cli, ["plot", "--results", str(store.root), "--out", str(tmp_path / "figs"), "--format",
                               "json", "--include-contended"])
    assert plot.exit_code == 0, plot.output
