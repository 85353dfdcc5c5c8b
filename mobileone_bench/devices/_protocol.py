"""The timing protocol of Section 3.5, shared by every host-timed runtime.

Load the model, preallocate the input (the runner's job), run ``warmup`` untimed iterations, then time each of
``runs`` iterations separately with a monotonic clock. The loop does nothing but call the runner between two clock
reads: no allocation, no bookkeeping beyond storing an integer.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

__all__ = ["Runner", "time_runs"]


class Runner(Protocol):
    """What a runtime implementation hands the protocol."""

    def __call__(self) -> Any:
        """One inference on the preallocated input (the full round trip the device allows)."""

    def settings(self) -> dict[str, Any]:
        """Runtime settings worth recording (threads, optimisation level, CUDA graphs...)."""

    def close(self) -> None:
        """Release the session/engine."""


def time_runs(step: Callable[[], Any], warmup: int, runs: int,
              clock: Callable[[], int] = time.perf_counter_ns) -> list[float]:
    """Time ``runs`` calls of ``step`` after ``warmup`` untimed ones.

    Args:
        step: One inference.
        warmup: Untimed calls first.
        runs: Timed calls.
        clock: Monotonic nanosecond clock (injectable for tests).

    Returns:
        One duration per timed call, in milliseconds.
    """
    if warmup < 0 or runs < 1:
        raise ValueError("warmup must be >= 0 and runs >= 1")
    for _ in range(warmup):
        step()
    stamps = [0] * (runs + 1)
    # one clock read per boundary: the end of run i is the start of run i + 1
    stamps[0] = clock()
    for i in range(1, runs + 1):
        step()
        stamps[i] = clock()
    return [(stamps[i] - stamps[i - 1]) / 1e6 for i in range(1, runs + 1)]
