"""Writing the inference-time weights: the path checked before any work, the file written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobileone_bench.errors import UsageError

__all__ = ["check_save_path", "save_state_dict"]


def check_save_path(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a state dict can be written to ``path``: a real write and remove in the folder
    that will hold it (or in its nearest existing ancestor, the missing folders being created at save time).

    Args:
        path: The file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UsageError: ``path`` is a folder, one of its parents is a file, or the folder cannot be written (read-only
            file system, no permission), in one line that says which.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise UsageError(f"save: expected a file path, got {path!r}")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder; name a file such as {target / 'fused.pth'}")
    folder = target.parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {target}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"cannot write {target}: the file is read-only")
    return target


class _RecordedWrites:
    """A file whose ``write`` remembers the :class:`OSError` it raised: torch's zip writer reports a failed write
    (a full disk) as ``enforce fail at inline_container.cc ... unexpected pos``, without the reason."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def save_state_dict(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model.state_dict()`` to ``path`` with :func:`torch.save`, whole or not at all.

    The path is checked first (:func:`check_save_path`), missing folders are created, and the file is written under
    a temporary name in the same folder and renamed into place, so a failure (a full disk) leaves neither a partial
    file nor the temporary one.

    Raises:
        UsageError: The file cannot be written, in one line that gives the system's reason (never torch's
            ``enforce fail at inline_container.cc``).
    """
    target = check_save_path(path)
    tmp: Path | None = None
    writer: _RecordedWrites | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        with open(tmp, "wb") as handle:
            writer = _RecordedWrites(handle)
            torch.save(model.state_dict(), writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
    except (OSError, RuntimeError) as exc:
        cause: BaseException = writer.error if writer is not None and writer.error is not None else exc
        reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror
                  else " ".join(str(cause).split())[:200])
        raise UsageError(f"cannot write {target}: {reason}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return target
