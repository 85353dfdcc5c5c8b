"""The machine's real peak (issue 30, point 4): the best of several probes (a GEMM, a 1x1 convolution through
oneDNN and through onnxruntime), the winner named, the theoretical peak of the ISA, FMA units, cores and clock beside
it with where each factor comes from, and no roofline row above the peak without a note. No rate is asserted: the
probes run once, small, to check they work."""

from __future__ import annotations

import pytest

from mobileone_bench.environment import _fma_units, theoretical_peak
from mobileone_bench.pipeline import peak
from mobileone_bench.store.records import ResultsStore, new_record


def test_every_probe_runs_and_the_best_one_wins():
    result = peak.measure_peak(1, size=128, budget_s=0.0)
    names = [p["name"] for p in result["probes"]]
    assert names == list(peak.PROBES)
    rates = {p["name"]: p["gflops"] for p in result["probes"] if p.get("gflops")}
    assert set(rates) == set(peak.PROBES)  # onnxruntime and torch are installed here
    assert result["winner"] == max(rates, key=rates.get) and result["gflops"] == max(rates.values())
    assert all(p["reps"] >= 3 for p in result["probes"])
    assert result["theoretical"]["sources"]


def test_the_winner_is_decided_by_the_clock_it_is_given(monkeypatch):
    fake = {"gemm": 10.0, "conv1x1-torch": 30.0, "conv1x1-onnxruntime": 20.0}
    monkeypatch.setattr(peak, "measure_peak_gflops", lambda t, **k: {"gflops": fake["gemm"], "reps": 3, "best_s": 1,
                                                                     "method": "gemm"})
    for name, fn in (("conv1x1-torch", "probe_conv_torch"), ("conv1x1-onnxruntime", "probe_conv_onnxruntime")):
        monkeypatch.setattr(peak, fn, lambda t, name=name, **k: {"name": name, "gflops": fake[name], "reps": 3,
                                                                  "best_s": 1, "method": name})
    result = peak.measure_peak(2)
    assert result["winner"] == "conv1x1-torch" and result["gflops"] == 30.0


def test_a_missing_library_skips_its_probe_and_says_so(monkeypatch):
    def missing(*a, **k):
        raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")

    monkeypatch.setattr(peak, "probe_conv_onnxruntime", missing)
    result = peak.measure_peak(1, size=64, budget_s=0.0, probes=["gemm", "conv1x1-onnxruntime"])
    assert result["winner"] == "gemm"
    assert result["probes"][1] == {"name": "conv1x1-onnxruntime", "error": "not installed: onnxruntime"}


def test_the_stored_peak_keeps_the_probes_the_winner_and_the_theoretical_peak(tmp_path):
    def fake(threads, **kw):
        return {"gflops": 300.0, "winner": "conv1x1-torch", "method": "best of gemm, conv1x1-torch", "reps": 3,
                "best_s": 0.01, "size": kw["size"],
                "probes": [{"name": "gemm", "gflops": 200.0}, {"name": "conv1x1-torch", "gflops": 300.0}],
                "theoretical": {"gflops": 400.0, "sources": {"lanes": "flags"}}}

    store = ResultsStore(tmp_path)
    rec = peak.peak_gflops(store, 2, measure=fake)
    assert rec["winner"] == "conv1x1-torch" and rec["theoretical_gflops"] == 400.0
    (entry,) = peak.peaks(store, [(rec["machine"], 2)])
    assert entry["winner"] == "conv1x1-torch" and entry["theoretical_gflops"] == 400.0 and entry["source"] == "stored"


@pytest.mark.parametrize("vendor, family, isa, name, expected", [
    ("AuthenticAMD", 0x1A, "AVX-512", "AMD EPYC 9755", 2.0),
    ("AuthenticAMD", 0x19, "AVX-512", "AMD EPYC 9654", 1.0),
    ("AuthenticAMD", 0x17, "AVX2", "AMD EPYC 7742", 2.0),
    ("GenuineIntel", 6, "AVX-512", "Intel(R) Xeon(R) Gold 5118 CPU @ 2.30GHz", 1.0),  # the paper's CPU
    ("GenuineIntel", 6, "AVX-512", "Intel(R) Xeon(R) Platinum 8380", 2.0),
    ("Weird", None, "", "mystery", None),
])
def test_fma_units_come_from_a_table_that_says_why(vendor, family, isa, name, expected):
    units, why = _fma_units(vendor, family, isa, name, "x86_64")
    assert units == expected and why


def test_the_theoretical_peak_names_each_factor_s_source():
    t = theoretical_peak(1)
    assert set(t["sources"]) == {"lanes", "fma_per_cycle", "cores", "clock_ghz"} and t["cores"] == 1
    if t["unknown"]:
        assert t["gflops"] is None
    else:
        assert t["gflops"] == pytest.approx(t["lanes"] * t["fma_per_cycle"] * 2 * t["cores"] * t["clock_ghz"])


def _store_with(tmp_path, latency_ms, peak_fields):
    from mobileone_bench.environment import machine_fingerprint

    store = ResultsStore(tmp_path)
    here = machine_fingerprint()
    store.append(new_record("profile", {"model": "a", "input_shape": [1, 3, 224, 224]},
                            {"status": "ok", "flops_m": 1000.0, "params_m": 5.0}, {}))
    store.append(new_record("latency", {"model": "a", "device": "cpu", "runtime": "torch", "threads": 2,
                                        "machine": here, "input_shape": [1, 3, 224, 224], "precision": "fp32"},
                            {"status": "ok", "latency_ms": latency_ms, "median_ms": latency_ms, "report": "median",
                             "n": 10}, {}))
    store.append(new_record("peak", {"machine": here, "threads": 2, "method": "best of gemm, conv1x1-torch"},
                            {"status": "ok", **peak_fields}, {"env_cpu": "cpu"}))
    return store


def test_no_row_above_the_peak_without_a_note_naming_the_winner(tmp_path):
    _store_with(tmp_path, 5.0, {"gflops": 200.0, "winner": "conv1x1-torch", "theoretical_gflops": 300.0})
    result = __import__("mobileone_bench").roofline(results=tmp_path, as_frame=False)
    (row,) = result["rows"]
    assert row["achieved_gflops"] == pytest.approx(400.0) and row["fraction"] > 1
    assert "conv1x1-torch won" in row["note"] and "theoretical 300" in row["note"]
    assert all(r["note"] for r in result["rows"] if r["fraction"] and r["fraction"] > 1)


def test_a_measured_peak_above_the_theoretical_one_is_explained(tmp_path):
    _store_with(tmp_path, 50.0, {"gflops": 500.0, "winner": "gemm", "theoretical_gflops": 300.0})
    result = __import__("mobileone_bench").roofline(results=tmp_path, as_frame=False)
    assert any("above the theoretical" in n for n in result["notes"])
