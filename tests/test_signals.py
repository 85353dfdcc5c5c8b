"""One interrupt rule for every step: SIGTERM or SIGINT in each phase of `run`, sent when the phase is reached (a
line on stderr from tests/phase_launcher.py), never after a fixed sleep. Whatever was finished is stored, one line
says so, the exit status is 143 (SIGTERM) or 130 (SIGINT), and the same command then finishes the work."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import pytest

from mobileone_bench.store.records import ResultsStore, as_list
from tests.phase_launcher import run_until

pytestmark = pytest.mark.slow

MODELS = ["mobileone_tiny", "mobileone_mu0"]


def _args(tmp_path):
    return ["run", *MODELS, "--input-size", "64", "64", "--warmup", "1", "--runs", "6", "--rounds", "3",
            "--threads", "1", "--results", str(tmp_path / "results"), "--models-dir", str(tmp_path / "models"),
            "--format", "json"]


def _interrupt_at(tmp_path, phase: str, nth: int, sig: int = signal.SIGTERM) -> tuple[int, str]:
    """Run `run` until it reaches ``phase`` for the ``nth`` time, send ``sig``, return (exit status, stderr)."""
    return run_until(phase, nth, _args(tmp_path), lambda proc: proc.send_signal(sig))


def _rerun(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mobileone_bench", *_args(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _interrupted_line(err: str, name: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(f"Interrupted ({name})")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@pytest.mark.parametrize("phase,nth,profiles", [
    ("build", 2, 1),    # the second model being built: the first one's profile is stored
    ("profile", 1, 0),  # the first profile being counted: nothing stored yet
    ("export", 2, 2),   # the second model's ONNX export: both profiles stored
    ("session", 1, 1),  # the first onnxruntime session being loaded
])
def test_sigterm_before_the_rounds_keeps_what_was_stored_and_the_rerun_finishes(tmp_path, phase, nth, profiles):
    status, err = _interrupt_at(tmp_path, phase, nth)
    assert status == 143, err[-3000:]
    line = _interrupted_line(err, "SIGTERM")
    assert "Traceback" not in err
    store = ResultsStore(tmp_path / "results")
    assert len(store.records("profile")) == profiles
    assert store.records("latency") == []  # nothing was timed, so nothing is claimed
    assert (f"stored {profiles} profile record" in line) if profiles else ("nothing new was stored" in line)
    summary = _rerun(tmp_path)
    assert {m["model"] for m in summary["models"]} == set(MODELS)
    assert {r["model"] for r in store.records("latency") if r["status"] == "ok"} == set(MODELS)
    assert len(store.records("profile")) == len(MODELS)  # each profile once: the stored ones were reused


@pytest.mark.parametrize("sig,status,name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_in_the_rounds_stores_every_models_finished_rounds_and_the_rerun_resumes(tmp_path, sig, status,
                                                                                        name):
    # 2 models x 3 rounds: the 4th block is the second round's second model
    code, err = _interrupt_at(tmp_path, "rounds", 4, sig)
    assert code == status, err[-3000:]
    line = _interrupted_line(err, name)
    assert "2 latency records (2 interrupted" in line
    store = ResultsStore(tmp_path / "results")
    latency = store.records("latency")
    assert sorted(r["model"] for r in latency) == sorted(MODELS)
    assert {r["status"] for r in latency} == {"interrupted"}
    blocks = sorted(len(as_list(r["runs_per_round"])) for r in latency)
    assert blocks == [1, 2]  # one model had finished its second round, the other was inside it
    for r in latency:
        assert len(store.samples(r)) == sum(as_list(r["runs_per_round"]))
        assert "journaled" in r["error"]
    journals = sorted((tmp_path / "results" / "journal").glob("*.json"))
    assert len(journals) == 2

    summary = _rerun(tmp_path)  # the same command goes on from the journal
    assert {m["model"] for m in summary["models"]} == set(MODELS)
    ok = [r for r in store.records("latency") if r["status"] == "ok"]
    assert sorted(r["model"] for r in ok) == sorted(MODELS)
    assert sorted(r["rounds_resumed"] for r in ok) == [1, 2]
    for r in ok:
        assert r["n"] == 6 and sum(n for n, u in zip(as_list(r["runs_per_round"]), as_list(r["round_used"]))
                                   if u) == 6
    assert not list((tmp_path / "results" / "journal").glob("*.json"))  # done: the journals are gone


def test_sigterm_while_finished_rounds_become_records_waits_until_they_are_stored(tmp_path):
    status, err = _interrupt_at(tmp_path, "finish", 1)
    assert status == 143, err[-3000:]
    line = _interrupted_line(err, "SIGTERM")
    store = ResultsStore(tmp_path / "results")
    latency = store.records("latency")
    assert sorted(r["model"] for r in latency) == sorted(MODELS)
    assert {r["status"] for r in latency} == {"ok"}  # finished measurements are never dropped
    assert "2 latency records" in line and "interrupted," not in line
    assert not list((tmp_path / "results" / "journal").glob("*.json"))


def test_sigterm_in_the_analysis_after_the_measurements(tmp_path):
    status, err = _interrupt_at(tmp_path, "analysis", 1)
    assert status == 143, err[-3000:]
    _interrupted_line(err, "SIGTERM")
    store = ResultsStore(tmp_path / "results")
    assert {r["status"] for r in store.records("latency")} == {"ok"} and len(store.records("latency")) == 2
    summary = _rerun(tmp_path)
    assert all(m["status"].startswith("ok (stored)") for m in summary["models"])  # nothing measured twice
