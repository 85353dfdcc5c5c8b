"""Runs ``mobileone-bench`` with one phase of the pipeline held open, for the signal tests (tests/test_signals.py).

Usage: ``python tests/phase_launcher.py PHASE NTH -- ARGS...``: the NTH time the pipeline enters PHASE, the launcher
prints ``PHASE <name> <nth>`` on stderr and waits there for a signal, so the test sends SIGINT or SIGTERM exactly in
that phase, however fast or slow this machine is. A phase inside a deferred section (``finish``: turning finished
rounds into records) waits until the signal is held, then goes on, as the real code would.

The phases: ``build`` (a model built and re-parameterized), ``profile``, ``export``, ``session`` (a runtime session
loaded), ``rounds`` (inside a timed block: NTH counts blocks), ``finish`` and ``analysis`` (the table after the
measurements).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable


def run_until(phase: str, nth: int, args: list[str], action: Callable[[subprocess.Popen], None]) -> tuple[int, str]:
    """Start the CLI with ``args`` through this launcher, call ``action(proc)`` (send a signal, kill it) when it reaches
    ``phase`` for the ``nth`` time, and return ``(exit status, stderr)``.

    Raises:
        AssertionError: The run ended before it reached the phase.
    """
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), phase, str(nth), "--", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks until the phase is reached (or the process ends)
            seen.append(line)
            if line.strip() == f"PHASE {phase} {nth}":
                action(proc)
                break
        else:
            proc.wait(timeout=60)
            raise AssertionError(f"the run ended (status {proc.returncode}) before phase {phase} {nth}: "
                                 f"{''.join(seen)[-2000:]}")
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(seen) + rest


def _hold(phase: str, nth: int, *, deferred: bool = False) -> None:
    """Say the phase is reached, then block until SIGINT or SIGTERM arrives (no polling, no sleep).

    The wait is a read of Python's signal wake-up pipe (``signal.set_wakeup_fd``): whichever thread the kernel
    delivers the signal to (onnxruntime's and torch's workers included), the C-level handler writes to it, the read
    returns, and the tool's handler then runs in this thread: outside a deferred section it raises ``Interrupted``
    here; inside one it holds the signal and the section goes on, as the real code would. A signal that came before
    the read has already written its byte, so the read returns at once.
    """
    import os
    import signal

    from mobileone_bench import _interrupt

    r, w = os.pipe()
    os.set_blocking(w, False)
    previous = signal.set_wakeup_fd(w)
    try:
        sys.stderr.write(f"PHASE {phase} {nth}\n")
        sys.stderr.flush()
        if _interrupt.pending() is None:
            os.read(r, 1)
    finally:
        signal.set_wakeup_fd(previous)
        os.close(r)
        os.close(w)
    if deferred:
        while _interrupt.pending() is None:  # the handler of the signal just read runs at the next bytecode
            pass
        return
    raise AssertionError(f"phase {phase} went on after a signal outside a deferred section")


def _wrap(owner: object, name: str, phase: str, nth: int, *, deferred: bool = False,
          also: tuple[object, ...] = ()) -> None:
    """Hold the NTH call of ``owner.name``; ``also``: other modules that bound the same function by name (one count
    for all of them)."""
    real = getattr(owner, name)
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            _hold(phase, nth, deferred=deferred)
        return real(*args, **kwargs)

    for module in (owner, *also):
        if getattr(module, name, None) is real:
            setattr(module, name, wrapped)


def _install(phase: str, nth: int) -> None:
    from mobileone_bench import pipeline
    from mobileone_bench.pipeline import loading, preparing, run

    if phase == "build":
        _wrap(preparing, "prepare", phase, nth, also=(pipeline, loading, run))
    elif phase == "profile":
        _wrap(preparing, "profile", phase, nth, also=(pipeline,))
    elif phase == "export":
        from mobileone_bench.formats import _base

        _wrap(_base, "export_one", phase, nth)
    elif phase == "session":
        from mobileone_bench.devices import onnxruntime

        _wrap(onnxruntime, "make_runner", phase, nth)
    elif phase == "rounds":
        from mobileone_bench.pipeline import loading

        real_block = loading.block_timer
        calls = [0]

        def block(runner):
            timed = real_block(runner)

            def run(warmup, runs):
                calls[0] += 1
                if calls[0] == nth:
                    _hold(phase, nth)
                return timed(warmup, runs)

            return run

        loading.block_timer = block
    elif phase == "finish":
        from mobileone_bench.pipeline import interleaved

        _wrap(interleaved, "_rounds_fields", phase, nth, deferred=True)
    elif phase == "analysis":
        from mobileone_bench.analysis import tables

        _wrap(tables, "build_table", phase, nth)
    else:
        raise SystemExit(f"unknown phase {phase!r}")


if __name__ == "__main__":
    phase, nth, sep, *args = sys.argv[1:]
    assert sep == "--"
    _install(phase, int(nth))
    from mobileone_bench.cli import cli

    cli(args=args, prog_name="mobileone-bench")
