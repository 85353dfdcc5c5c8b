"""A store that cannot be written is found before anything is built or timed; if writing still fails at the end, the
finished measurement goes to a recovery file the message names; no temporary file is left behind (issue 26, item 1)."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

from mobileone_bench.errors import RecordsError
from mobileone_bench.store.records import ResultsStore

MODELS = ["mobileone_tiny", "mobileone_mu0"]


def _latency(tmp_path, results, *extra):
    return ["latency", *MODELS, "--input-size", "32", "32", "--warmup", "1", "--runs", "4", "--threads", "1",
            "--runtime", "torch", "--results", str(results), "--models-dir", str(tmp_path / "models"), *extra]


def _one_line_error(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("fault,expected", [
    ("samples-is-a-file", "samples is a file, not a folder"),
    ("lock-is-a-folder", ".lock is a folder, not the store's lock file"),
    ("results-under-a-file", "is a file, not a folder"),
])
def test_a_store_that_cannot_be_written_is_refused_before_anything_is_built(runner, cli, tmp_path, fault, expected):
    results = tmp_path / "results"
    if fault == "samples-is-a-file":
        results.mkdir()
        (results / "samples").write_text("not a folder")
    elif fault == "lock-is-a-folder":
        (results / "samples").mkdir(parents=True)
        (results / ".lock").mkdir()
    else:
        (tmp_path / "plain").write_text("a file")
        results = tmp_path / "plain" / "results"
    line = _one_line_error(runner.invoke(cli, _latency(tmp_path, results)))
    assert expected in line
    assert not (tmp_path / "models").exists()  # nothing was built or exported, let alone timed


@contextlib.contextmanager
def _mounted(*args):
    """Mount as asked, or skip the test where this machine does not let the tests mount (not root, no privilege)."""
    target = args[-1]
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()[:100]}): needs root with CAP_SYS_ADMIN")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_a_read_only_store_is_refused_before_measuring(runner, cli, tmp_path):
    src, ro = tmp_path / "src", tmp_path / "ro"
    (src / "samples").mkdir(parents=True)
    ro.mkdir()
    with _mounted("--bind", str(src), str(ro)):
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only here")
        line = _one_line_error(runner.invoke(cli, _latency(tmp_path, ro)))
    assert "Read-only file system" in line
    assert not (tmp_path / "models").exists()


def test_a_store_without_room_for_the_run_is_refused_before_measuring(runner, cli, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    with _mounted("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)):
        line = _one_line_error(runner.invoke(cli, _latency(tmp_path, small / "results", "--runs", "20000")))
        assert "not enough room" in line and "MB free" in line
        assert not any(p.name.startswith(".probe") or ".tmp-" in p.name for p in small.rglob("*"))
    assert not (tmp_path / "models").exists()


def test_records_that_cannot_be_stored_at_the_end_go_to_recovery_files(tmp_path, monkeypatch, quiet_machine):
    from mobileone_bench import pipeline
    from mobileone_bench.models import registry

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    store = ResultsStore(tmp_path / "results")

    def full(self, lines):
        raise RecordsError(f"cannot append to {self.records_path}: No space left on device")

    monkeypatch.setattr(ResultsStore, "append_lines_locked", full)
    job = pipeline.LatencyJob(device="cpu", runtime="torch", warmup=1, runs=6, rounds=2, threads=1,
                              input_size=(32, 32), models_dir=str(tmp_path / "models"))
    with pytest.raises(RecordsError) as info:
        pipeline.measure_models([registry.resolve(m) for m in MODELS], job, store)
    message = str(info.value)
    assert message.startswith("2 of 2 records could not be stored")
    saved = sorted((tmp_path / "tmp").glob("mobileone-bench-recovery-*.json"))
    assert len(saved) == 2 and all(str(p) in message for p in saved)
    for path in saved:
        body = json.loads(path.read_text())
        assert body["record"]["model"] in MODELS and body["record"]["status"] == "ok"
        assert len(body["samples"]) == 6  # every measured sample survived
    root = tmp_path / "results"
    assert list((root / "samples").iterdir()) == []  # no samples file without its record, no temporary file
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name or p.name.startswith(".probe")]
    assert len(list((root / "journal").glob("*.json"))) == 2  # the journals stay until the records are stored


def test_roofline_does_not_measure_the_peak_when_the_store_cannot_be_locked(tmp_path):
    from mobileone_bench.pipeline.peak import peak_gflops

    (tmp_path / "results" / "samples").mkdir(parents=True)
    (tmp_path / "results" / ".lock").mkdir()
    calls = []
    with pytest.raises(RecordsError, match="is a folder"):
        peak_gflops(ResultsStore(tmp_path / "results"), 1,
                    measure=lambda *a, **k: calls.append(1) or {"gflops": 1.0, "method": "x", "reps": 1,
                                                               "best_s": 1.0, "size": 8})
    assert calls == []
