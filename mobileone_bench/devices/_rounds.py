"""Interleaved rounds: how several models are timed so that a burst of other work cannot pick them off one by one.

With the paper's protocol applied model after model ("blocked"), a process that takes the CPU for a minute corrupts
every run of the few models measured in that minute, and so the ranking. Interleaved, every model's ``runs`` are split
into ``R`` blocks; in each round every model gets a short warm-up and one block, and the models are visited in a fresh
random order each round (seeded, so the order is reproducible and recorded). A burst then touches a few rounds of
every model instead of all runs of a few, and the statistic over all of a model's samples (the median by default)
hardly moves.

The scheduler knows nothing of runtimes: an entry is a name and a ``block(warmup, runs) -> samples`` callable (the
protocol's :func:`~mobileone_bench.devices._protocol.time_runs` around a runner, or a runner's own clock such as CUDA
events). A contention sampler, if given, is started and stopped around every timed block.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["RoundPlan", "plan_rounds", "Entry", "EntryResult", "run_rounds", "DEFAULT_ROUNDS", "ROUND_WARMUP"]

DEFAULT_ROUNDS = 5
ROUND_WARMUP = 2  # untimed runs before each block after the first: refills caches evicted by the other models

Block = Callable[[int, int], list]


@dataclass(frozen=True)
class RoundPlan:
    """How the timed runs of every model are split into rounds.

    Attributes:
        rounds: Number of rounds ``R``.
        runs: Timed runs per model in all (the paper's 100 on CPU and GPU).
        warmup: Untimed runs before a model's first block (the paper's 10).
        round_warmup: Untimed runs before each of its later blocks.
        seed: Seed of the visiting orders.
    """

    rounds: int
    runs: int
    warmup: int
    round_warmup: int = ROUND_WARMUP
    seed: int = 0

    def block_sizes(self) -> list[int]:
        """Timed runs in each round: ``runs`` split as evenly as possible (earlier rounds take the remainder)."""
        base, extra = divmod(self.runs, self.rounds)
        return [base + (1 if i < extra else 0) for i in range(self.rounds)]

    def order(self, round_index: int, n: int) -> list[int]:
        """The visiting order of ``n`` models in round ``round_index`` (a permutation of ``range(n)``)."""
        order = list(range(n))
        random.Random(f"mobileone-bench:{self.seed}:{round_index}").shuffle(order)
        return order

    def as_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "runs": self.runs, "warmup": self.warmup, "round_warmup": self.round_warmup,
                "round_seed": self.seed}


def plan_rounds(runs: int, warmup: int, rounds: int = DEFAULT_ROUNDS, *, round_warmup: int = ROUND_WARMUP,
                seed: int = 0) -> RoundPlan:
    """A :class:`RoundPlan`, with ``rounds`` capped at ``runs`` (every block times at least one run).

    Raises:
        ValueError: ``runs < 1``, ``warmup < 0``, ``rounds < 1`` or ``round_warmup < 0``.
    """
    if runs < 1 or warmup < 0 or rounds < 1 or round_warmup < 0:
        raise ValueError("runs >= 1, warmup >= 0, rounds >= 1 and round_warmup >= 0 are required")
    return RoundPlan(min(rounds, runs), runs, warmup, round_warmup, seed)


@dataclass
class Entry:
    """One model in the rounds: its name and how to time a block of it."""

    name: str
    block: Block


@dataclass
class EntryResult:
    """What the rounds measured for one entry.

    Attributes:
        samples: Every timed run in milliseconds, in time order (round by round).
        block_sizes: Samples of each completed round (``samples`` splits into these).
        positions: The entry's place in each round's visiting order (0 = first).
        contention: The sampler's reading of each completed block (empty without a sampler).
        error: Why the entry stopped early (it is then left out of the later rounds), or ``None``.
    """

    samples: list[float] = field(default_factory=list)
    block_sizes: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    contention: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def round_samples(self) -> list[list[float]]:
        """``samples`` split into its rounds."""
        out, start = [], 0
        for size in self.block_sizes:
            out.append(self.samples[start:start + size])
            start += size
        return out


def run_rounds(entries: Sequence[Entry], plan: RoundPlan, *, sampler: Any = None,
               on_progress: Callable[[int, str], None] | None = None) -> dict[str, EntryResult]:
    """Time every entry in ``plan.rounds`` interleaved rounds.

    An entry whose block raises is recorded with the error and its samples so far, and left out of the later
    rounds; the others go on. A ``KeyboardInterrupt`` stops the rounds and propagates, with what was measured
    until then kept in ``partial`` of the exception (``exc.partial``), so a caller can store it.

    Args:
        entries: The models (names must be unique).
        plan: The rounds.
        sampler: Optional contention sampler with ``start() -> token`` and ``stop(token) -> dict``.
        on_progress: Called with ``(round index, entry name)`` before each block.

    Returns:
        One :class:`EntryResult` per entry name.
    """
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("entry names must be unique")
    results = {e.name: EntryResult() for e in entries}
    sizes = plan.block_sizes()
    try:
        for r, size in enumerate(sizes):
            for position, index in enumerate(plan.order(r, len(entries))):
                entry = entries[index]
                res = results[entry.name]
                if res.error is not None:
                    continue
                if on_progress is not None:
                    on_progress(r, entry.name)
                warmup = plan.warmup if r == 0 else plan.round_warmup
                token = sampler.start() if sampler is not None else None
                try:
                    samples = list(entry.block(warmup, size))
                except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
                    res.error = f"round {r + 1} of {plan.rounds}: {type(exc).__name__}: {' '.join(str(exc).split())}"
                    continue
                reading = sampler.stop(token) if sampler is not None else None
                res.samples.extend(samples)
                res.block_sizes.append(len(samples))
                res.positions.append(position)
                if reading is not None:
                    res.contention.append(reading)
    except KeyboardInterrupt as exc:
        exc.partial = results  # type: ignore[attr-defined]
        raise
    return results
