"""``profile`` records a failing model as a row and goes on, as ``run`` and ``latency`` do, and names each model's
phase on its progress bar (issue 26, items 4 and 7)."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from torch import nn

import mobileone_bench as mb
from mobileone_bench.models import registry
from mobileone_bench.pipeline import study

BROKEN = "test-asserts-in-forward"


class _AssertsInForward(nn.Module):
    """Builds, then fails the way timm's fixed-size patch embedding does on another input size: a bare assert."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 224:  # as torch._assert, which timm calls: a bare AssertionError
            raise AssertionError(f"Input height ({x.shape[-1]}) doesn't match model (224).")
        return self.conv(x)


@pytest.fixture
def broken_model():
    """A registered model that builds and then raises an AssertionError (not a BenchError) in its forward pass."""
    registry.register_model(lambda num_classes=1000: _AssertsInForward(), name=BROKEN, input_size=32)
    yield BROKEN
    registry._OWN.pop(registry._key(BROKEN), None)


def test_profile_of_the_issue_records_the_failure_and_profiles_the_other_model(runner, cli):
    result = runner.invoke(cli, ["profile", "mobileone_tiny", "deit-tiny", "--input-size", "64", "64",
                                 "--format", "json"])
    assert result.exit_code == 1, result.output
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert rows["mobileone_tiny"]["status"] == "ok" and rows["mobileone_tiny"]["flops"] > 0
    deit = rows["deit-tiny"]
    assert deit["status"] == "failed" and deit["input"] == "64x64"
    assert deit["error"].startswith("AssertionError: ") and "64" in deit["error"]
    assert "1 of 2 models failed (deit-tiny)" in result.stderr
    assert "please report it" not in result.output and "Traceback" not in result.output


def test_a_failure_in_the_middle_of_a_sweep_is_a_row_and_the_rest_are_profiled(broken_model):
    rows = mb.profile(["mobileone_tiny", broken_model, "mobileone_mu0"], input_size=(32, 32), as_frame=False)
    assert [r["model"] for r in rows] == ["mobileone_tiny", broken_model, "mobileone_mu0"]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "AssertionError: Input height (32) doesn't match model (224)."
    assert rows[0]["error"] is None and rows[2]["flops"] > rows[0]["flops"] > 0


def test_a_single_failing_model_is_a_row_too_not_an_unexpected_error(runner, cli, broken_model):
    frame = mb.profile(broken_model)
    assert list(frame["status"]) == ["failed"] and "AssertionError" in frame["error"].iloc[0]
    result = runner.invoke(cli, ["profile", broken_model])
    assert result.exit_code == 1
    assert "1 of 1 models failed" in result.stderr and "unexpected" not in result.output


def test_a_sweep_where_nothing_fails_exits_0_without_a_failure_line(runner, cli, unavailable_model):
    result = runner.invoke(cli, ["profile", "mobileone_tiny", unavailable_model, "--input-size", "32", "32",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)] == ["ok", "unavailable"]
    assert "failed" not in result.stderr


def test_the_progress_bar_names_each_model_and_its_phase(monkeypatch, broken_model):
    seen: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def recording_bar(enabled, total, title):
        assert enabled and total == 2 and title == "profile"
        yield lambda status="", advance=0: seen.append((status, advance))

    monkeypatch.setattr(study, "bar", recording_bar)
    mb.profile(["mobileone_tiny", broken_model], input_size=(32, 32), progress=True, as_frame=False)
    statuses = [status for status, _ in seen]
    assert statuses == ["mobileone_tiny", "mobileone_tiny: build + re-parameterize",
                        "mobileone_tiny: count params and FLOPs", "mobileone_tiny",
                        broken_model, f"{broken_model}: build + re-parameterize",
                        f"{broken_model}: count params and FLOPs", broken_model]  # it fails while counting
    assert sum(advance for _, advance in seen) == 2  # one step per model, failed or not


def test_profile_with_results_stores_the_records_roofline_and_correlate_read(runner, cli, tmp_path, broken_model):
    """``latency`` stores no profile; ``profile --results`` does (as ``run``), once per identity, failures too."""
    from mobileone_bench.store.records import ResultsStore

    results = tmp_path / "results"
    args = ["profile", "mobileone_tiny", broken_model, "--input-size", "64", "64", "--results", str(results),
            "--format", "json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 1, first.output  # the broken model is a failed row
    rows = {r["model"]: r for r in json.loads(first.stdout)}
    stored = [r for r in ResultsStore(results).records() if r["kind"] == "profile"]
    ok = [r for r in stored if r["model"] == "mobileone_tiny"]
    assert len(ok) == 1 and ok[0]["status"] == "ok" and ok[0]["flops"] == rows["mobileone_tiny"]["flops"]
    assert rows["mobileone_tiny"]["record_id"] == ok[0]["record_id"]
    assert "record_id" not in rows[broken_model]  # nothing stored for a model that did not profile
    again = json.loads(runner.invoke(cli, args).stdout)  # the same identity: the stored record is reused
    assert {r["model"]: r.get("record_id") for r in again}["mobileone_tiny"] == ok[0]["record_id"]
    assert len([r for r in ResultsStore(results).records() if r["kind"] == "profile"]) == 1
    without = runner.invoke(cli, ["profile", "mobileone_tiny", "--input-size", "64", "64", "--format", "json"])
    assert without.exit_code == 0 and "record_id" not in json.loads(without.stdout)[0]
