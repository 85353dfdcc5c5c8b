"""``reparam --save`` checks its file before any work and says in one line why it cannot be written, never torch's
"enforce fail at inline_container.cc"; a failed write leaves no partial or temporary file (issue 26, item 6)."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
import torch
from torch import nn

from mobileone_bench import pipeline
from mobileone_bench.errors import UsageError
from mobileone_bench.reparameterization import check_save_path, save_state_dict


@contextlib.contextmanager
def _read_only_folder(tmp_path):
    """A folder nothing can be written to: a read-only bind mount as root, a permission change otherwise (skipped
    where neither is possible)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    src = tmp_path / "src"
    src.mkdir()
    done = subprocess.run(["mount", "--bind", str(src), str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()[:100]}): needs root with CAP_SYS_ADMIN")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if anything is built: the check must come before the work."""
    def prepare(*args, **kwargs):
        raise AssertionError("a model was built before --save was checked")

    monkeypatch.setattr(pipeline, "prepare", prepare)


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: --save: "), result.output
    assert "inline_container" not in result.output and "Traceback" not in result.output
    return lines[0]


def test_a_read_only_folder_is_one_line_before_anything_is_built(runner, cli, tmp_path, nothing_built):
    with _read_only_folder(tmp_path) as folder:
        target = folder / "fused.pth"
        line = _one_line(runner.invoke(cli, ["reparam", "mobileone_tiny", "--save", str(target)]))
        assert f"cannot write {target}: " in line
        assert line.endswith(("Read-only file system", "Permission denied"))
        assert not target.exists()


def test_a_parent_that_is_a_file_is_named(runner, cli, tmp_path, nothing_built):
    (tmp_path / "plain").write_text("a file")
    target = tmp_path / "plain" / "sub" / "fused.pth"
    line = _one_line(runner.invoke(cli, ["reparam", "mobileone_tiny", "--save", str(target)]))
    assert line.endswith(f"cannot write {target}: {tmp_path / 'plain'} is a file, not a folder")


def test_check_save_path_accepts_new_folders_and_creates_nothing(tmp_path):
    target = tmp_path / "new" / "deeper" / "fused.pth"
    assert check_save_path(str(target)) == target
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []  # the probe is removed
    with pytest.raises(UsageError, match="it is a folder"):
        check_save_path(tmp_path)
    with pytest.raises(UsageError, match="expected a file path"):
        check_save_path(42)  # type: ignore[arg-type]


def test_save_state_dict_writes_a_whole_file_that_loads_back(tmp_path):
    model = nn.Conv2d(3, 4, 3)
    target = save_state_dict(model, tmp_path / "out" / "conv.pth")
    loaded = torch.load(target, weights_only=True)
    assert torch.equal(loaded["weight"], model.weight.detach())
    assert sorted(p.name for p in target.parent.iterdir()) == ["conv.pth"]


def test_a_full_disk_is_the_reason_given_and_leaves_no_file(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, mounted as root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()[:100]}): needs root with CAP_SYS_ADMIN")
    try:
        with pytest.raises(UsageError) as info:
            save_state_dict(nn.Linear(512, 512), small / "fused.pth")  # 1 MB of weights into 64 kB
        assert str(info.value) == f"cannot write {small / 'fused.pth'}: No space left on device"
        assert list(small.iterdir()) == []  # neither the file nor its temporary
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_a_write_that_fails_without_a_reason_is_still_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK half a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:664] .\n unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", failing_save)
    target = tmp_path / "fused.pth"
    with pytest.raises(UsageError, match=r"^cannot write .*fused\.pth: ") as info:
        save_state_dict(nn.Conv2d(3, 4, 3), target)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_folder_through_the_api_is_a_usage_error(tmp_path):
    with _read_only_folder(tmp_path) as folder:
        with pytest.raises(UsageError, match="cannot write"):
            save_state_dict(nn.Conv2d(3, 4, 3), folder / "fused.pth")
        assert list(folder.iterdir()) == []


def test_the_api_checks_the_save_path_before_building(tmp_path, monkeypatch):
    """mb.reparam(save=...) follows the CLI's rule: a parent that is a file is one UsageError before any build."""
    import mobileone_bench as mb
    from mobileone_bench import pipeline
    from mobileone_bench.errors import UsageError

    (tmp_path / "plain").write_text("a file")
    monkeypatch.setattr(pipeline, "prepare", lambda *a, **k: pytest.fail("built before the save path was checked"))
    with pytest.raises(UsageError):
        mb.reparam("mobileone_tiny", input_size=(32, 32), save=str(tmp_path / "plain" / "fused.pth"))
