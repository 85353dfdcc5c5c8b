"""One interrupt rule for every command and every step.

SIGINT (Ctrl-C) and SIGTERM (``kill``, a CI time-out, a batch scheduler) both stop the work at the next safe point:

* anywhere a step can be abandoned without losing a measurement (building, profiling, exporting, loading a session,
  inside a timed block, the analysis), the signal raises :class:`Interrupted` at once: what was stored before stays
  stored, and the callers on the way up store what they hold (the rounds store every model's samples so far as an
  ``interrupted`` record; the journal keeps every finished round, see :mod:`mobileone_bench.store.records`);
* inside a :func:`deferred` section (writing a record and its samples, turning finished rounds into records) the
  signal is held and raised when the section ends, so a record is never half written and a finished measurement is
  never dropped for the sake of a few milliseconds. A second signal while one is held stops at once (press Ctrl-C
  twice to leave without waiting).

Exit status: 130 (128 + 2) after SIGINT, 143 (128 + 15) after SIGTERM, the shell's convention for "ended by this
signal": a supervisor (CI, systemd, Slurm, ``timeout``) that sent SIGTERM sees that its own signal ended the run,
and a person who pressed Ctrl-C sees 130 as from any other tool.

The handlers are installed by :func:`handling` (the CLI for the whole command; the pipeline's entry points for API
callers), only in the main thread, and only over Python's default handlers: a program that set its own keeps them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["Interrupted", "handling", "deferred", "pending", "check", "exit_status", "signal_name", "reclaim"]

_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)
_EXIT = {int(getattr(signal, "SIGINT", 2)): 130, int(getattr(signal, "SIGTERM", 15)): 143}


def signal_name(signum: int | None) -> str:
    """``SIGINT``, ``SIGTERM``... (``interrupt`` for ``None``: a plain ``KeyboardInterrupt``)."""
    if signum is None:
        return "interrupt"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_status(exc: BaseException | None) -> int:
    """The exit status for an interruption: 130 after SIGINT (or a plain ``KeyboardInterrupt``), 143 after SIGTERM."""
    signum = getattr(exc, "signum", None)
    return _EXIT.get(int(signum), 130) if signum is not None else 130


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (a ``KeyboardInterrupt``, so code that handles Ctrl-C handles it too).

    Attributes:
        signum: The signal's number.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal_name(signum)}")


class _State:
    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None
        self.installed = 0


_STATE = _State()


def _handler(signum: int, frame: Any) -> None:
    if _STATE.depth > 0 and _STATE.pending is None:
        _STATE.pending = signum  # raised when the deferred section ends
        return
    _STATE.pending = None
    raise Interrupted(signum)


def _is_default(handler: Any, signum: int) -> bool:
    if signum == getattr(signal, "SIGINT", None):
        return handler is signal.default_int_handler or handler is _handler
    return handler in (signal.SIG_DFL, None, _handler)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM follow the rule above (nested uses are harmless).

    Outside the main thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for signum in _SIGNALS:
        current = signal.getsignal(signum)
        if current is not _handler and _is_default(current, signum):
            previous[signum] = signal.signal(signum, _handler)
    _STATE.installed += 1
    try:
        yield
    finally:
        _STATE.installed -= 1
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the block runs; a signal that came meanwhile is raised as :class:`Interrupted` when
    the outermost deferred block ends normally (an exception already on its way keeps going, and the held signal is
    raised at the next :func:`check` or deferred block)."""
    _STATE.depth += 1
    try:
        yield
    finally:
        _STATE.depth -= 1
    if _STATE.depth == 0:
        check()


def pending() -> int | None:
    """The signal held by a deferred section, if any (for progress displays and tests)."""
    return _STATE.pending


def check() -> None:
    """Raise :class:`Interrupted` now if a signal is held (a safe point outside a deferred section)."""
    if _STATE.depth == 0 and _STATE.pending is not None:
        signum, _STATE.pending = _STATE.pending, None
        raise Interrupted(signum)


def reclaim() -> None:
    """Put this module's handlers back after a library replaced them while :func:`handling` is active (``ray.init``
    sets a SIGTERM handler that exits the process without a word)."""
    if _STATE.installed <= 0 or threading.current_thread() is not threading.main_thread():
        return
    for signum in _SIGNALS:
        signal.signal(signum, _handler)
