"""A benchmark's scratch folder: the user's own (kept) or a temporary one removed when the benchmark ends.

Benchmarks export every model of a zoo (tens to hundreds of MB each, a Core ML package about 80 MB); a temporary
folder left behind by every run filled a disk here, so a temporary one is removed however the benchmark ends
(normally, by an exception or by Ctrl-C). Pass a folder to keep the exports and records.
"""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def scratch(prefix: str, given: str | Path | None = None) -> Iterator[Path]:
    """``Path(given)`` (created, kept) or a fresh temporary folder, removed on leaving the block."""
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        print(f"removed the temporary folder {path} (pass a folder to keep the exports and records)",
              file=sys.stderr)
