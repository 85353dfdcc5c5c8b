"""Issue 26, items 6 and 7 (part): lines that say what is true, and no silent surprise.

* ``table MODEL`` whose only latency record is contended (or filtered out, or failed) says so, not "measure them
  first";
* a checkpoint given through a pipe (``--weights <(cat w.pth)``, a named FIFO) is read once into memory and loads;
* integer and bool tensors that would be cast into a model's float weights are refused, naming them;
* ``export-results --out x.xlsx`` is refused instead of filled with CSV.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
from pathlib import Path

import pytest
import torch

import mobileone_bench as mb
from mobileone_bench.models import factory
from mobileone_bench.models.checkpoints import check_weights_file, file_sha256, load_weights, read_state_dict
from mobileone_bench.errors import AnalysisError, CheckpointError, UsageError
from mobileone_bench.store.records import ResultsStore
from tests.test_analysis_fixtures import add_latency, add_profile


def _one_error_line(result, code: int, *fragments: str) -> str:
    """The single ``Error: ...`` line of a CLI failure, checked for ``fragments``."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------------------ table


@pytest.fixture
def contended_only(tmp_path: Path) -> ResultsStore:
    """A store whose only latency record (mobileone_s1's) is contended."""
    store = ResultsStore(tmp_path / "results")
    add_latency(store, "mobileone_s1", 40.0, contended=True)
    return store


def test_table_of_a_model_whose_only_record_is_contended_says_so(runner, cli, contended_only):
    args = ["table", "mobileone_s1", "--results", str(contended_only.root)]
    line = _one_error_line(runner.invoke(cli, args), 1, "mobileone_s1", "flagged contended", "--include-contended",
                           "--remeasure-flagged")
    assert "measure them with" not in line
    kept = runner.invoke(cli, [*args, "--include-contended", "--format", "json"])
    assert kept.exit_code == 0, kept.output
    rows = json.loads(kept.stdout)["rows"]
    assert [(r["model"], r["cpu_ms"]) for r in rows] == [("mobileone_s1", pytest.approx(40.0))]


def test_table_of_a_contended_model_beside_quiet_ones_says_so(contended_only):
    from mobileone_bench.analysis.tables import build_table

    add_latency(contended_only, "mobileone_s0", 1.0, contended=False)
    with pytest.raises(AnalysisError, match="mobileone_s1 that matches is flagged contended") as info:
        build_table(contended_only, models=["mobileone_s1"])
    assert "measure them with" not in str(info.value)
    assert [r["model"] for g in build_table(contended_only, models=["mobileone_s0"])["groups"] for r in g["rows"]] \
        == ["mobileone_s0"]


def test_table_without_models_whose_only_records_are_contended_says_so(runner, cli, contended_only):
    result = runner.invoke(cli, ["table", "--results", str(contended_only.root)])
    _one_error_line(result, 1, "none of the table9 models", "flagged contended", "--include-contended")


def test_table_names_the_filter_that_left_the_records_out(runner, cli, tmp_path):
    store = ResultsStore(tmp_path / "results")
    add_latency(store, "mobileone_s0", 2.0, threads=4)
    result = runner.invoke(cli, ["table", "mobileone_s0", "--threads", "2", "--results", str(store.root)])
    _one_error_line(result, 1, "do not match --threads 2", "stored: threads 4")
    result = runner.invoke(cli, ["table", "mobileone_s0", "--precision", "fp16", "--results", str(store.root)])
    _one_error_line(result, 1, "do not match --precision fp16", "stored: precision fp32")


def test_table_of_a_model_whose_measurements_failed_gives_the_error(runner, cli, tmp_path):
    store = ResultsStore(tmp_path / "results")
    add_latency(store, "mobileone_s2", None, status="failed", error="onnxruntime: out of memory")
    add_latency(store, "mobileone_s0", 2.0)
    result = runner.invoke(cli, ["table", "mobileone_s2", "--results", str(store.root)])
    line = _one_error_line(result, 1, "every latency measurement of them failed", "onnxruntime: out of memory")
    assert "measure them with" not in line


def test_table_of_a_model_never_measured_still_says_measure_it(runner, cli, tmp_path):
    store = ResultsStore(tmp_path / "results")
    add_latency(store, "mobileone_s0", 2.0)
    add_profile(store, "mobileone_s0", 275.0, 2.1)
    result = runner.invoke(cli, ["table", "mobileone_s3", "--results", str(store.root)])
    _one_error_line(result, 1, "no records for mobileone_s3", "measure them with `mobileone-bench run MODEL...` first")


# ------------------------------------------------------------------------------------------------------ pipes


def _pipe_from_thread(data: bytes) -> tuple[int, threading.Thread]:
    """A pipe whose writer (a thread) writes ``data`` and closes: the read end's descriptor and the thread. The
    caller closes the read end, which ends a writer still blocked on a full pipe (BrokenPipeError)."""
    r, w = os.pipe()

    def write() -> None:
        with open(w, "wb") as f:
            try:
                f.write(data)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return r, writer


def _fd_path(fd: int) -> str:
    return f"/dev/fd/{fd}"  # what a shell's <(cat w.pth) hands the tool


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A real mobileone_s0 state dict (BatchNorm's int64 num_batches_tracked included), larger than a pipe's buffer."""
    torch.manual_seed(0)
    path = tmp_path / "w.pth"
    torch.save(factory.create_model("mobileone_s0").state_dict(), path)
    assert path.stat().st_size > 1 << 20
    return path


needs_dev_fd = pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="no /dev/fd on this platform")


@needs_dev_fd
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_checkpoint_through_a_pipe_loads(checkpoint, tmp_path, suffix):
    source = checkpoint
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        source = tmp_path / "w.safetensors"
        save_file(torch.load(checkpoint, weights_only=True), source)
    data = source.read_bytes()
    r, writer = _pipe_from_thread(data)
    try:
        path = _fd_path(r)
        assert check_weights_file(path) == ("safetensors" if suffix == ".safetensors" else "torch")
        state = read_state_dict(path)  # a second read of the same pipe: the kept bytes
        assert file_sha256(path) == hashlib.sha256(data).hexdigest() == file_sha256(source)
        model = load_weights(factory.create_model("mobileone_s0"), path)
    finally:
        os.close(r)
        writer.join()
    expected = torch.load(checkpoint, weights_only=True)
    assert set(state) == set(expected) and all(torch.equal(state[k], expected[k]) for k in expected)
    assert torch.equal(model.state_dict()["linear.weight"], expected["linear.weight"])


@needs_dev_fd
def test_cli_weights_through_a_pipe(runner, cli, checkpoint):
    r, writer = _pipe_from_thread(checkpoint.read_bytes())
    try:
        result = runner.invoke(cli, ["reparam", "mobileone_s0", "--weights", _fd_path(r), "--input-size", "64", "64",
                                     "--format", "json"])
    finally:
        os.close(r)
        writer.join()
    assert result.exit_code == 0, result.output
    assert "Illegal seek" not in result.output and json.loads(result.stdout)[0]["check"] == "passed"


def test_checkpoint_through_a_named_fifo_loads(checkpoint, tmp_path):
    fifo = tmp_path / "weights.fifo"
    os.mkfifo(fifo)
    data = checkpoint.read_bytes()

    def write() -> None:
        with open(fifo, "wb") as f:  # blocks until the tool opens the FIFO for reading
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    state = read_state_dict(fifo)  # the check reads the FIFO whole; the load then uses the kept bytes
    writer.join()
    assert file_sha256(fifo) == hashlib.sha256(data).hexdigest()
    assert torch.equal(state["linear.weight"], torch.load(checkpoint, weights_only=True)["linear.weight"])


@needs_dev_fd
def test_a_pipe_that_is_not_a_checkpoint_is_refused_after_its_first_bytes(tmp_path):
    # a stream that never ends (/dev/zero) must not be read whole: its first bytes already say it is no checkpoint
    with pytest.raises(CheckpointError, match="not a PyTorch or safetensors checkpoint"):
        check_weights_file("/dev/zero")
    r, writer = _pipe_from_thread(b"")
    try:
        with pytest.raises(CheckpointError, match="is empty"):
            read_state_dict(_fd_path(r))
    finally:
        os.close(r)
        writer.join()


# ------------------------------------------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_integer_and_bool_tensors_in_float_weights_are_refused(tmp_path, fmt):
    torch.manual_seed(0)
    state = {k: v.clone().contiguous() for k, v in factory.create_model("mobileone_s0").state_dict().items()}
    assert any(v.dtype == torch.int64 for v in state.values())  # num_batches_tracked: an integer buffer, fine
    weight, bias = "stage0.rbr_conv.0.conv.weight", "linear.bias"
    state[weight] = torch.randint(-2, 3, state[weight].shape, dtype=torch.int64)
    state[bias] = torch.ones(state[bias].shape, dtype=torch.bool)
    path = tmp_path / f"w.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, path)
    else:
        torch.save(state, path)
    model = factory.create_model("mobileone_s0")
    before = model.state_dict()[weight].clone()
    with pytest.raises(CheckpointError, match="2 tensors that are not floating point") as info:
        load_weights(model, path)
    assert f"{weight} (int64)" in str(info.value) and f"{bias} (bool)" in str(info.value)
    assert torch.equal(model.state_dict()[weight], before)  # nothing was loaded


def test_cli_refuses_integer_weights_in_one_line(runner, cli, tmp_path):
    from safetensors.torch import save_file

    state = {k: v.clone().contiguous() for k, v in factory.create_model("mobileone_s0").state_dict().items()}
    state["linear.weight"] = state["linear.weight"].to(torch.int64)
    save_file(state, tmp_path / "w.safetensors")
    result = runner.invoke(cli, ["reparam", "mobileone_s0", "--weights", str(tmp_path / "w.safetensors"),
                                 "--input-size", "64", "64"])
    _one_error_line(result, 1, "linear.weight (int64)", "not floating point")


def test_half_precision_weights_still_load(tmp_path):
    torch.manual_seed(0)
    state = {k: (v.half() if v.is_floating_point() else v)
             for k, v in factory.create_model("mobileone_s0").state_dict().items()}
    torch.save(state, tmp_path / "w.pth")
    model = load_weights(factory.create_model("mobileone_s0"), tmp_path / "w.pth")
    assert torch.equal(model.state_dict()["linear.weight"], state["linear.weight"].float())


# ------------------------------------------------------------------------------------------------------ export


@pytest.fixture
def one_record(tmp_path: Path) -> Path:
    store = ResultsStore(tmp_path / "results")
    add_latency(store, "mobileone_s0", 2.0)
    return store.root


def test_export_refuses_a_suffix_it_does_not_write(runner, cli, one_record, tmp_path):
    out = tmp_path / "x.xlsx"
    result = runner.invoke(cli, ["export-results", "--results", str(one_record), "--out", str(out)])
    _one_error_line(result, 2, "does not write .xlsx files", ".csv", ".parquet", ".json")
    result = runner.invoke(cli, ["export-results", "--results", str(one_record), "--format", "csv", "--out",
                                 str(out)])
    _one_error_line(result, 2, "does not write .xlsx files")
    assert not out.exists()
    with pytest.raises(UsageError, match="does not write .xlsx"):
        mb.export_results(one_record, out=out)
    assert not out.exists()


def test_export_refuses_a_suffix_that_names_another_format(runner, cli, one_record, tmp_path):
    out = tmp_path / "x.json"
    result = runner.invoke(cli, ["export-results", "--results", str(one_record), "--format", "csv", "--out",
                                 str(out)])
    _one_error_line(result, 2, "names a pytorch-benchmark file but the format is csv", ".csv")
    with pytest.raises(UsageError, match="names a parquet file but the format is csv"):
        mb.export_results(one_record, out=tmp_path / "x.parquet")  # the API's default format is csv
    assert not out.exists() and not (tmp_path / "x.parquet").exists()


def test_export_takes_the_format_from_a_known_suffix_and_csv_without_one(runner, cli, one_record, tmp_path):
    result = runner.invoke(cli, ["export-results", "--results", str(one_record), "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))[0]["model"]["name"] == "mobileone_s0"
    result = runner.invoke(cli, ["export-results", "--results", str(one_record), "--out", str(tmp_path / "study")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "study").read_text(encoding="utf-8"))))
    assert [r["model"] for r in rows] == ["mobileone_s0"]
    result = runner.invoke(cli, ["export-results", "--results", str(one_record), "--format", "CSV", "--out",
                                 str(tmp_path / "y.CSV")])
    assert result.exit_code == 0 and (tmp_path / "y.CSV").exists(), result.output
