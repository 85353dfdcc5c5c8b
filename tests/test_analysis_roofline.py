"""Roofline: achieved GFLOP/s = 2 x FLOPs / latency, fraction of a (fake) peak, peak caching per machine and
threads; one tiny real GEMM measurement."""

from __future__ import annotations

import json

import pytest

from mobileone_bench.store.records import ResultsStore
from tests.test_analysis_fixtures import MACHINE, add_latency, add_profile, build_store


def test_achieved_gflops_arithmetic():
    from mobileone_bench.analysis.roofline import achieved_gflops

    # 275 M multiply-adds in 2.75 ms = 550 M FLOP / 2.75e-3 s = 200 GFLOP/s
    assert achieved_gflops(275.0, 2.75) == pytest.approx(200.0)
    assert achieved_gflops(1000.0, 1.0) == pytest.approx(2000.0)


@pytest.mark.parametrize("fraction, verdict", [(0.9, "compute-bound"), (0.40, "compute-bound"),
                                               (0.2, "partly compute-bound"), (0.149, "overhead-bound"),
                                               (None, None)])
def test_verdict_thresholds(fraction, verdict):
    from mobileone_bench.analysis.roofline import verdict as v

    assert v(fraction) == verdict


def test_rows_with_a_fake_peak(tmp_path):
    from mobileone_bench.store.frames import measurements
    from mobileone_bench.analysis.roofline import roofline_rows

    store = ResultsStore(tmp_path)
    add_profile(store, "a", 500.0, 5.0)
    add_profile(store, "b", 100.0, 1.0)
    add_latency(store, "a", 10.0)  # 100 GFLOP/s
    add_latency(store, "b", 10.0)  # 20 GFLOP/s
    add_latency(store, "c", 10.0)  # no profile
    add_latency(store, "a", 1.0, threads=8)  # no peak for 8 threads
    add_latency(store, "a", 0.5, device="iphone", runtime="coreml", threads=None)  # not a CPU record
    frame, _ = measurements(store, by_threads=True)
    rows = {(r["model"], r["threads"]): r for r in roofline_rows(frame, {(MACHINE, 4): 250.0})}
    assert set(rows) == {("a", 4), ("b", 4), ("c", 4), ("a", 8)}
    a = rows[("a", 4)]
    assert a["achieved_gflops"] == pytest.approx(100.0) and a["fraction"] == pytest.approx(0.4)
    assert a["peak_gflops"] == 250.0 and a["verdict"] == "compute-bound"
    b = rows[("b", 4)]
    assert b["fraction"] == pytest.approx(0.08) and b["verdict"] == "overhead-bound"
    assert rows[("c", 4)]["achieved_gflops"] is None and "profile" in rows[("c", 4)]["note"]
    assert rows[("a", 8)]["achieved_gflops"] == pytest.approx(1000.0) and rows[("a", 8)]["fraction"] is None
    assert "no peak" in rows[("a", 8)]["note"]


def _roofline(store, **kw):
    """What ``roofline`` does: the pipeline gives the peaks of the records' (machine, threads) pairs, stored or
    measured now; the analysis computes from the records and those peaks, and writes nothing."""
    from mobileone_bench.analysis import roofline as rf
    from mobileone_bench.pipeline import peak

    filters = {k: kw.pop(k) for k in ("runtime", "threads", "models", "exclude") if k in kw}
    frame, notes = rf.cpu_latencies(store, **filters)
    return rf.report(frame, peak.peaks(store, rf.machines_and_threads(frame), **kw), notes)


def test_peak_is_measured_once_per_machine_and_threads(tmp_path):
    from mobileone_bench.environment import machine_fingerprint

    store = ResultsStore(tmp_path)
    here = machine_fingerprint()
    add_profile(store, "a", 500.0, 5.0)
    add_latency(store, "a", 10.0, machine=here, threads=2)
    calls = []

    def fake(threads, **kw):
        calls.append(threads)
        return {"gflops": 400.0, "threads": threads, "size": kw.get("size"), "reps": 3, "best_s": 0.1,
                "method": "fake"}

    announced = []
    result = _roofline(store, measure=fake, announce=announced.append)
    assert calls == [2] and announced == [2]
    assert result["peaks"][0]["source"] == "measured now" and result["rows"][0]["fraction"] == pytest.approx(0.25)
    (peak,) = store.records("peak")
    assert (peak["machine"], peak["threads"], peak["gflops"]) == (here, 2, 400.0)
    result = _roofline(store, measure=fake)
    assert calls == [2] and result["peaks"][0]["source"] == "stored"  # cached
    _roofline(store, measure=fake, remeasure=True)
    assert calls == [2, 2] and len(store.records("peak")) == 2
    result = _roofline(store, given=100.0, measure=fake)
    assert calls == [2, 2] and result["rows"][0]["fraction"] == pytest.approx(1.0)


def test_the_analysis_only_reads(tmp_path):
    """Without peaks the analysis still computes what it can, and never measures or stores one."""
    from mobileone_bench.analysis.roofline import roofline
    from mobileone_bench.environment import machine_fingerprint

    store = ResultsStore(tmp_path)
    add_profile(store, "a", 500.0, 5.0)
    add_latency(store, "a", 10.0, machine=machine_fingerprint(), threads=2)
    before = store.records_path.read_bytes()
    result = roofline(store)
    assert result["rows"][0]["achieved_gflops"] == pytest.approx(100.0) and result["rows"][0]["fraction"] is None
    assert result["peaks"] == [] and store.records("peak") == [] and store.records_path.read_bytes() == before


def test_records_of_another_machine_use_its_stored_peak(tmp_path):
    from mobileone_bench.store.records import new_record

    store = build_store(tmp_path)
    result = _roofline(store, runtime="torch", measure=lambda *a, **k: pytest.fail("must not measure"))
    assert all(r["fraction"] is None for r in result["rows"])
    assert any("another machine" in n for n in result["notes"])
    store.append(new_record("peak", {"machine": MACHINE, "threads": 4, "method": "fake"},
                            {"status": "ok", "gflops": 1000.0}, {}))
    rows = {r["model"]: r for r in _roofline(store, runtime="torch")["rows"]}
    # mobilenetv1 on torch: 568.7 M MACs in 3.1 ms = 366.9 GFLOP/s = 36.7% of 1000
    assert rows["mobilenetv1"]["fraction"] == pytest.approx(2 * 568.7e6 / 3.1e-3 / 1e12)


def test_real_gemm_probe_is_quick_and_sane():
    from mobileone_bench.pipeline.peak import measure_peak_gflops

    ticks = iter(range(1000))
    result = measure_peak_gflops(1, size=128, budget_s=0.0, clock=lambda: float(next(ticks)))
    assert result["reps"] == 3 and result["size"] == 128 and result["best_s"] == 1.0
    assert result["gflops"] == pytest.approx(2 * 128 ** 3 / 1e9)
    real = measure_peak_gflops(1, size=256, budget_s=0.05)
    assert real["gflops"] > 0.1 and real["method"] == "torch.matmul float32 256x256"


def test_cli_roofline(tmp_path, runner, cli):
    store = build_store(tmp_path / "results")
    root = str(store.root)
    result = runner.invoke(cli, ["roofline", "--results", root, "--peak-gflops", "1000", "--runtime", "torch",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert len(out["rows"]) == 6 and out["peaks"][0]["source"] == "--peak-gflops"
    result = runner.invoke(cli, ["roofline", "--results", root, "--peak-gflops", "1000"])
    assert result.exit_code == 0, result.output
    for piece in ("Achieved GFLOP/s", "% of peak", "compute-bound", "overhead-bound", "peak 1000.0 GFLOP/s"):
        assert piece in result.output
    result = runner.invoke(cli, ["roofline", "--results", root, "--peak-gflops", "-5"])
    assert result.exit_code == 2 and "--peak-gflops" in result.output and "x>0" in result.output
    result = runner.invoke(cli, ["roofline", "--results", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "mobileone-bench run" in result.output
