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

Replacement rounds: when a model's block is read as contended, the block is kept (samples and reading) but does not
count, and a replacement block of the same size is queued for that model after its planned ones; it is visited in the
seeded order of the round it falls in. Before a replacement block the scheduler waits, if given a quiet probe, until
the machine is quiet again (a burst is waited out rather than measured again). A model gets at most
``max_extra_rounds`` replacements, and the replacements, waits included, must start before a deadline set when the
first one is due: ``extra_time_share`` times the time the measurement had taken until then (``started``: for ``run``,
building and exporting included), so a burst makes the measurement at most ``1 + share`` times as long. When the
budget runs out, the contended block a replacement was for counts after all, and the record says so (its contended
share then decides whether it is flagged).

Resuming: ``resume`` gives an entry's state from the journal of an earlier, killed run with the same plan; its
finished blocks are kept and only what remains is timed (the first block in this process gets the full warm-up).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["RoundPlan", "plan_rounds", "Entry", "EntryResult", "run_rounds", "DEFAULT_ROUNDS", "ROUND_WARMUP",
           "DEFAULT_EXTRA_TIME_SHARE"]

DEFAULT_ROUNDS = 5
ROUND_WARMUP = 2  # untimed runs before each block after the first: refills caches evicted by the other models
#: Replacement blocks (and the waits for a quiet machine before them) may take this share of the time the measurement
#: had taken when they became due, so a burst makes it at most 1.6x as long; benchmarks/README.md has the measurement.
DEFAULT_EXTRA_TIME_SHARE = 0.6

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
        max_extra_rounds: Replacement blocks a model may get for its contended ones (0: flag only, never replace).
        extra_time_share: Time the replacement blocks and the waits before them may take, as a share of the time the
            measurement had taken when the first replacement became due.
    """

    rounds: int
    runs: int
    warmup: int
    round_warmup: int = ROUND_WARMUP
    seed: int = 0
    max_extra_rounds: int = 0
    extra_time_share: float = DEFAULT_EXTRA_TIME_SHARE

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
                "round_seed": self.seed, "max_extra_rounds": self.max_extra_rounds,
                "extra_time_share": self.extra_time_share}

    def same_blocks(self, other: dict[str, Any]) -> bool:
        """Whether a journal written under the plan ``other`` (:meth:`as_dict`) holds blocks of this plan."""
        mine = self.as_dict()
        return all(other.get(k) == mine[k] for k in ("rounds", "runs", "warmup", "round_warmup", "round_seed"))


def plan_rounds(runs: int, warmup: int, rounds: int = DEFAULT_ROUNDS, *, round_warmup: int = ROUND_WARMUP,
                seed: int = 0, max_extra_rounds: int = 0,
                extra_time_share: float = DEFAULT_EXTRA_TIME_SHARE) -> RoundPlan:
    """A :class:`RoundPlan`, with ``rounds`` capped at ``runs`` (every block times at least one run).

    Raises:
        ValueError: ``runs < 1``, ``warmup < 0``, ``rounds < 1``, ``round_warmup < 0``, ``max_extra_rounds < 0`` or
            ``extra_time_share < 0``.
    """
    if runs < 1 or warmup < 0 or rounds < 1 or round_warmup < 0 or max_extra_rounds < 0 or extra_time_share < 0:
        raise ValueError("runs >= 1, warmup >= 0, rounds >= 1, round_warmup >= 0, max_extra_rounds >= 0 and "
                         "extra_time_share >= 0 are required")
    return RoundPlan(min(rounds, runs), runs, warmup, round_warmup, seed, max_extra_rounds, extra_time_share)


@dataclass
class Entry:
    """One model in the rounds: its name and how to time a block of it."""

    name: str
    block: Block


@dataclass
class EntryResult:
    """What the rounds measured for one entry.

    Attributes:
        samples: Every timed run in milliseconds, in time order (block by block), replaced blocks included.
        block_sizes: Samples of each completed block (``samples`` splits into these).
        positions: The entry's place in each block's round (0 = first visited).
        contention: The sampler's reading of each completed block (empty without a sampler).
        used: Whether each block counts for the statistics (``False``: contended and replaced).
        extra_rounds: Replacement blocks run.
        budget_exhausted: A contended block could not be replaced (``max_extra_rounds`` or the time budget).
        resumed_blocks: Blocks taken from an earlier run's journal.
        queue: Blocks still to time: ``[size, index of the block it replaces or None]``.
        error: Why the entry stopped early (it is then left out of the later rounds), or ``None``.
    """

    samples: list[float] = field(default_factory=list)
    block_sizes: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    contention: list[dict[str, Any]] = field(default_factory=list)
    used: list[bool] = field(default_factory=list)
    extra_rounds: int = 0
    budget_exhausted: bool = False
    resumed_blocks: int = 0
    queue: list[list[Any]] = field(default_factory=list)
    error: str | None = None

    def round_samples(self) -> list[list[float]]:
        """``samples`` split into its blocks."""
        out, start = [], 0
        for size in self.block_sizes:
            out.append(self.samples[start:start + size])
            start += size
        return out

    def used_samples(self) -> list[float]:
        """The samples of the blocks that count (every block when none was replaced)."""
        blocks = self.round_samples()
        return [x for block, keep in zip(blocks, self.used_flags()) if keep for x in block]

    def used_flags(self) -> list[bool]:
        """:attr:`used`, padded with ``True`` for blocks recorded without a flag."""
        return list(self.used) + [True] * (len(self.block_sizes) - len(self.used))

    def complete(self) -> bool:
        return not self.queue and self.error is None

    def as_journal(self) -> dict[str, Any]:
        """A JSON-ready copy (what the journal keeps)."""
        return {"samples": self.samples, "block_sizes": self.block_sizes, "positions": self.positions,
                "contention": self.contention, "used": self.used, "extra_rounds": self.extra_rounds,
                "budget_exhausted": self.budget_exhausted, "queue": self.queue}

    @classmethod
    def from_journal(cls, entry: dict[str, Any]) -> "EntryResult":
        """The state a journal kept (:meth:`as_journal`); raises ``ValueError`` when it is not consistent."""
        res = cls(samples=[float(x) for x in entry["samples"]], block_sizes=[int(n) for n in entry["block_sizes"]],
                  positions=[int(p) for p in entry["positions"]], contention=list(entry.get("contention") or []),
                  used=[bool(u) for u in entry["used"]], extra_rounds=int(entry.get("extra_rounds") or 0),
                  budget_exhausted=bool(entry.get("budget_exhausted")),
                  queue=[[int(q[0]), None if q[1] is None else int(q[1])] for q in entry["queue"]])
        if sum(res.block_sizes) != len(res.samples) or len(res.used) != len(res.block_sizes):
            raise ValueError("journal blocks and samples disagree")
        res.resumed_blocks = len(res.block_sizes)
        return res


def run_rounds(entries: Sequence[Entry], plan: RoundPlan, *, sampler: Any = None,
               on_progress: Callable[[int, str], None] | None = None,
               on_block: Callable[[str, EntryResult], None] | None = None,
               resume: dict[str, EntryResult] | None = None,
               clock: Callable[[], float] = time.perf_counter, started: float | None = None,
               is_quiet: Callable[[], bool] | None = None) -> dict[str, EntryResult]:
    """Time every entry in ``plan.rounds`` interleaved rounds, replacing contended blocks within the plan's budget.

    An entry whose block raises is recorded with the error and its samples so far, and left out of the later
    rounds; the others go on. A ``KeyboardInterrupt`` stops the rounds and propagates, with what was measured
    until then kept in ``partial`` of the exception (``exc.partial``), so a caller can store it.

    Args:
        entries: The models (names must be unique).
        plan: The rounds.
        sampler: Optional contention sampler with ``start() -> token`` and ``stop(token) -> dict`` (its
            ``contended`` decides replacements: ``True`` replaces, ``False`` or ``None`` (unknown) does not).
        on_progress: Called with ``(round index, entry name)`` before each block.
        on_block: Called with ``(entry name, its result so far)`` after each finished block (the journal).
        resume: Entries' states from an earlier run's journal (:meth:`EntryResult.from_journal`).
        clock: Seconds, for the time budget of the replacements.
        started: When the measurement began on ``clock`` (default: now); the budget is a share of the time since.
        is_quiet: Blocks for a short window and says whether the machine was quiet in it; called before a
            replacement block until it says so or the budget is spent (``None``: replace without waiting).

    Returns:
        One :class:`EntryResult` per entry name.
    """
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("entry names must be unique")
    resume = resume or {}
    results: dict[str, EntryResult] = {}
    for e in entries:
        if e.name in resume:
            results[e.name] = resume[e.name]
        else:
            results[e.name] = EntryResult(queue=[[size, None] for size in plan.block_sizes()])
    warmed: set[str] = set()
    began = clock() if started is None else started
    deadline: float | None = None
    block_s: dict[str, float] = {}
    r = 0
    try:
        while any(results[n].queue and results[n].error is None for n in names):
            for position, index in enumerate(plan.order(r, len(entries))):
                entry = entries[index]
                res = results[entry.name]
                if res.error is not None or not res.queue:
                    continue
                size, replaces = res.queue[0]
                if replaces is not None:
                    now = clock()
                    if deadline is None:
                        deadline = now + plan.extra_time_share * max(0.0, now - began)
                    expected = block_s.get(entry.name, 0.0)
                    if is_quiet is not None:
                        while clock() + expected <= deadline and not is_quiet():
                            pass  # wait out the burst (each probe blocks for its window)
                    in_time = clock() + expected <= deadline
                else:
                    in_time = True
                if not in_time:
                    # out of time: the contended blocks still waiting for a replacement count after all
                    for _, idx in res.queue:
                        if idx is not None:
                            res.used[idx] = True
                    res.queue.clear()
                    res.budget_exhausted = True
                    if on_block is not None:
                        on_block(entry.name, res)
                    continue
                if on_progress is not None:
                    on_progress(r, entry.name)
                warmup = plan.round_warmup if entry.name in warmed else plan.warmup
                token = sampler.start() if sampler is not None else None
                block_started = clock()
                try:
                    samples = list(entry.block(warmup, size))
                except Exception as exc:  # noqa: BLE001 - one model's failure is data; the others go on
                    res.error = f"round {r + 1} of {plan.rounds}: {type(exc).__name__}: {' '.join(str(exc).split())}"
                    continue
                seconds = clock() - block_started
                reading = sampler.stop(token) if sampler is not None else None
                warmed.add(entry.name)
                res.queue.pop(0)
                if replaces is not None:
                    res.extra_rounds += 1
                block_s[entry.name] = seconds
                index_here = len(res.block_sizes)
                res.samples.extend(samples)
                res.block_sizes.append(len(samples))
                res.positions.append(position)
                if reading is not None:
                    res.contention.append(reading)
                contended = bool(reading is not None and reading.get("contended") is True)
                queued = res.extra_rounds + sum(1 for _, idx in res.queue if idx is not None)
                if contended and queued < plan.max_extra_rounds:
                    res.used.append(False)
                    res.queue.append([size, index_here])
                else:
                    res.used.append(True)
                    if contended and plan.max_extra_rounds > 0:
                        res.budget_exhausted = True
                if on_block is not None:
                    on_block(entry.name, res)
            r += 1
    except KeyboardInterrupt as exc:
        exc.partial = results  # type: ignore[attr-defined]
        raise
    return results
