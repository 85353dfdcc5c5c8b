"""ExecuTorch's Python runtime as both its exporter and its runtime use it: the quiet native log, loading a ``.pte``'s
``forward`` method, and how to install the extra.

The runtime (:mod:`mobileone_bench.devices.executorch`) and the exporter's parity check
(:mod:`mobileone_bench.formats.executorch`) both load programs through :func:`load_method`; this module imports
neither of them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from mobileone_bench.errors import MissingDependencyError
from mobileone_bench.errors import one_line as _one_line

__all__ = ["INSTALL_HINT", "native_quiet", "last_native_line", "load_method", "one_line"]

INSTALL_HINT = "pip install 'mobileone-bench[executorch]'"


@contextlib.contextmanager
def native_quiet(sink: list[str] | None = None) -> Iterator[list[str] | None]:
    """Keep ExecuTorch's native log lines (cpuinfo probing, "Resetting threadpool...") and torch's import-time
    pytree notice off the terminal: file descriptor 2 goes to a temporary file for the duration, and its text is
    appended to ``sink`` (callers put the last line into their error message when something fails)."""
    import logging
    import os
    import sys
    import tempfile

    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            pytree.setLevel(level)
            if sink is not None:
                tmp.seek(0)
                sink.append(tmp.read().decode(errors="replace"))


def last_native_line(sink: list[str]) -> str:
    """The last non-empty line ExecuTorch wrote while :func:`native_quiet` held its output ('' if none)."""
    lines = [line.strip() for text in sink for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters, no type name (:func:`errors.one_line`)."""
    return _one_line(exc, limit=200, typed=False)


def load_method(path: Path) -> tuple[Any, Any]:
    """Load ``forward`` of a ``.pte`` with ExecuTorch's Python runtime; returns ``(program, method)``.

    The program is returned too: the method must not outlive it. ExecuTorch's native log lines are kept off the
    terminal; the last of them is put into the error when loading fails.
    """
    import torch

    sink: list[str] = []
    try:
        with native_quiet(sink):
            from executorch.runtime import Runtime
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(f"the executorch runtime (Python module '{exc.name}')", INSTALL_HINT) from None
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            "the executorch runtime",
            f"its native library does not load beside torch {torch.__version__} ({one_line(exc)}); "
            f"{INSTALL_HINT}") from None
    try:
        with native_quiet(sink):
            program = Runtime.get().load_program(Path(path))
            method = program.load_method("forward")
    except Exception as exc:
        native = last_native_line(sink)
        raise RuntimeError(f"{one_line(exc)}" + (f" ({native})" if native else "")) from exc
    if method is None:
        raise RuntimeError(f"{path} has no method 'forward'")
    return program, method
