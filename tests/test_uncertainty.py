"""Intervals and proxies (issue: uncertainty on every figure): bootstrap intervals against independent seeded
resamplings written here, Kendall against scipy, and the proxies against hand counts on small models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from mobileone_bench.analysis.correlate import RESAMPLES, SEED, fisher_interval, rank_stats, spearman
from mobileone_bench.proxies import count_proxies
from mobileone_bench.stats import bootstrap_ci, rounds_ci


@pytest.mark.parametrize("report, fn", [("median", np.median), ("mean", np.mean), ("min", np.min),
                                        ("p90", lambda x: np.percentile(x, 90))])
def test_latency_interval_agrees_with_a_plain_resampling(report, fn):
    x = np.random.default_rng(7).gamma(4.0, 0.5, 300) + 1.0
    got = bootstrap_ci(x, report)
    rng = np.random.default_rng(123)  # independent: another seed, a loop, the percentile method
    boot = [fn(x[rng.integers(0, x.size, x.size)]) for _ in range(3000)]
    low, high = np.percentile(boot, [2.5, 97.5])
    assert got["ci_low_ms"] <= fn(x) <= got["ci_high_ms"] or report == "min"
    width = high - low
    assert abs(got["ci_low_ms"] - low) < 0.25 * width + 1e-9 and abs(got["ci_high_ms"] - high) < 0.25 * width + 1e-9
    assert (got["ci_level"], got["ci_resamples"], got["ci_seed"]) == (0.95, 2000, 0)
    assert got["ci_method"] == ("percentile" if report == "min" else "BCa")


def test_latency_interval_edge_cases():
    assert bootstrap_ci([1.0, 2.0], "median")["ci_low_ms"] is None
    same = bootstrap_ci([2.0] * 10, "median")
    assert same["ci_low_ms"] == same["ci_high_ms"] == 2.0
    assert bootstrap_ci([1.0, 1.2, 0.9, 1.1] * 5, "median") == bootstrap_ci([1.0, 1.2, 0.9, 1.1] * 5, "median")


def test_rounds_interval_is_students_t():
    v = [1.0, 1.2, 0.9, 1.1, 1.05]
    got = rounds_ci(v)
    half = sps.t.ppf(0.975, 4) * np.std(v, ddof=1) / np.sqrt(5)
    assert got["round_ci_low_ms"] == pytest.approx(np.mean(v) - half)
    assert got["round_ci_high_ms"] == pytest.approx(np.mean(v) + half)
    assert rounds_ci([1.0])["round_ci_low_ms"] is None


def test_correlation_interval_is_the_documented_resampling():
    rng = np.random.default_rng(3)
    x = rng.normal(size=20)
    y = x + rng.normal(scale=1.0, size=20)
    got = rank_stats(x, y)
    idx = np.random.default_rng(SEED).integers(0, 20, size=(RESAMPLES, 20))
    rhos = []
    for row in idx:
        xs, ys = x[row], y[row]
        if len(set(xs)) > 1 and len(set(ys)) > 1:
            rhos.append(sps.spearmanr(xs, ys).statistic)
    low, high = np.percentile(rhos, [2.5, 97.5])
    assert got["rho_low"] == pytest.approx(low, abs=1e-9) and got["rho_high"] == pytest.approx(high, abs=1e-9)
    tau = sps.kendalltau(x, y)
    assert got["tau"] == pytest.approx(tau.statistic) and got["tau_p"] == pytest.approx(tau.pvalue)
    s = spearman(x, y)
    assert s["rho_low"] <= s["rho"] <= s["rho_high"]


def test_fisher_interval_for_a_published_rho():
    low, high = fisher_interval(0.47, 20)
    z, half = np.arctanh(0.47), 1.959964 * np.sqrt(1.06 / 17)
    assert (low, high) == pytest.approx((np.tanh(z - half), np.tanh(z + half)), abs=1e-5)
    assert fisher_interval(None, 20) == (None, None)


def test_correlate_reference_has_intervals_for_all_four_table1_cells(runner, cli):
    import json

    result = runner.invoke(cli, ["correlate", "--reference", "paper", "--exclude", "repvgg*,mobileone*",
                                 "--device", "iphone,cpu", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["device"]: r for r in json.loads(result.stdout)["rows"]}
    for device in ("iphone", "cpu"):
        for a in ("flops", "params"):
            r = rows[device]
            assert r[f"{a}_rho_low"] < r[f"{a}_rho"] < r[f"{a}_rho_high"]
            assert r[f"paper_{a}_rho_low"] < r[f"paper_{a}_rho"] < r[f"paper_{a}_rho_high"]
            assert -1 <= r[f"{a}_tau"] <= 1


def test_proxies_of_a_conv():
    p = count_proxies(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 16, 16))
    assert p.activations == 8 * 16 * 16 and p.weight_elements == 8 * 3 * 9 + 8 and p.input_elements == 3 * 16 * 16
    assert p.depth == 1 and p.memory_bytes(4) == 4 * (2048 + 224 + 768)


def test_proxies_of_a_depthwise_conv_and_a_linear():
    dw = count_proxies(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), (1, 8, 8, 8))
    assert (dw.activations, dw.weight_elements, dw.input_elements) == (512, 72, 512)
    fc = count_proxies(nn.Linear(10, 5), (2, 10))
    assert (fc.activations, fc.weight_elements, fc.input_elements, fc.depth) == (10, 55, 20, 1)


def test_proxies_of_a_two_branch_block():
    class TwoBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return torch.relu(self.c(self.a(x)) + self.b(x))  # long branch a -> c, short branch b

    p = count_proxies(TwoBranch(), (1, 4, 8, 8))
    assert p.depth == 2 and p.compute_ops == 3  # the longest chain, not the number of layers
    assert p.activations == 3 * 4 * 64 and p.input_elements == 3 * 4 * 64
    assert p.weight_elements == (4 * 4 * 9 + 4) + 2 * (4 * 4 + 4)
    assert p.as_dict()["memory_mb_fp16"] == pytest.approx(2 * (768 + 188 + 768) / 1e6, abs=1e-3)
