"""The interleaved protocol: several loaded models timed in seeded rounds, contended rounds replaced, every
finished round journaled, one record each (see :mod:`mobileone_bench.devices._rounds` for the plan and the loop)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench._interrupt import deferred
from mobileone_bench.pipeline import loading
from mobileone_bench.pipeline.loading import Pending, contention_fields, finish

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.records import ResultsStore

__all__ = ["measure_in_rounds"]


def _round_plan(job: LatencyJob) -> Any:
    from mobileone_bench.devices._rounds import plan_rounds

    return plan_rounds(int(job.runs), int(job.warmup), int(job.rounds or 1), seed=job.seed,
                       max_extra_rounds=int(job.max_extra_rounds or 0),
                       extra_time_share=float(job.extra_time_share if job.extra_time_share is not None else 0.0))


def _resume_from_journal(pendings: list[Pending], plan: Any, store: ResultsStore) -> dict[str, Any]:
    """The journaled state of each model whose earlier run was killed with the same settings and plan (a warning
    line says what was found and whether it is used)."""
    import warnings

    from mobileone_bench.devices._rounds import EntryResult

    resume: dict[str, Any] = {}
    for p in pendings:
        entry = store.journal_read(p.key)
        if entry is None:
            continue
        if not plan.same_blocks(entry.get("plan") or {}):
            warnings.warn(f"{p.spec.name}: the journal of an earlier run has another round plan; measuring afresh",
                          stacklevel=2)
            continue
        try:
            res = EntryResult.from_journal(entry["state"])
        except (KeyError, TypeError, ValueError, IndexError):
            warnings.warn(f"{p.spec.name}: unreadable journal of an earlier run ignored; measuring afresh",
                          stacklevel=2)
            continue
        resume[p.spec.name] = res
        warnings.warn(f"{p.spec.name}: resumed from the journal of an earlier run that did not finish (pid "
                      f"{entry.get('pid')}, {entry.get('updated')}): {len(res.block_sizes)} round(s), "
                      f"{len(res.samples)} samples kept", stacklevel=2)
    return resume


def _rounds_fields(plan: Any, res: Any, job: LatencyJob, models_in_rounds: int, group: int = 1) -> dict[str, Any]:
    """The interleaved record's fields: per-round values, which rounds count, the contention of those, replacements."""
    from mobileone_bench.stats import rounds_ci, summarize

    blocks = res.round_samples()
    used = res.used_flags()
    values_all = [summarize(block).value(str(job.report)) if block else None for block in blocks]
    values = [v for v, keep in zip(values_all, used) if keep and v is not None]
    mean = sum(values) / len(values) if values else 0.0
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 / mean \
        if len(values) > 1 and mean > 0 else None
    kept = [(r, n) for r, n, keep in zip(res.contention, res.block_sizes, used) if keep]
    contention = contention_fields([r for r, _ in kept], [n for _, n in kept])
    contention["round_contended"] = [r.get("contended") for r in res.contention]
    # lists as JSON text (records are flat; read them back with records.as_list)
    return {**plan.as_dict(), "runs_per_round": json.dumps(res.block_sizes),
            "round_positions": json.dumps(res.positions),
            "round_values_ms": json.dumps([None if v is None else round(v, 5) for v in values_all]),
            "round_used": json.dumps(used), "rounds_replaced": used.count(False),
            "extra_rounds": res.extra_rounds, "replacement_budget_exhausted": res.budget_exhausted,
            "rounds_resumed": res.resumed_blocks,
            "round_cv": round(spread, 5) if spread is not None else None, "models_in_rounds": models_in_rounds,
            "round_group": group,
            **rounds_ci(values),
            **contention, "round_contended": json.dumps(contention["round_contended"])}


def measure_in_rounds(pendings: list[Pending], job: LatencyJob, store: ResultsStore, step: Callable[[str, str], None],
                       sampler: Any, began: float, group: int = 1) -> dict[str, dict[str, Any]]:
    """Time the prepared models in interleaved rounds, journaling every finished round, and store one record each.

    Statistics come from the rounds that count (a contended round that was replaced does not); every round is kept
    in the samples file and described in the record. An interruption stores what was measured (status
    ``interrupted``) and keeps the journals, so the next run with the same settings goes on from there.
    """
    import datetime
    import os

    from mobileone_bench.devices._contention import ContentionSampler
    from mobileone_bench.devices._rounds import Entry, run_rounds
    from mobileone_bench.errors import RecordsError

    plan = _round_plan(job)
    by_name = {p.spec.name: p for p in pendings}
    resume = _resume_from_journal(pendings, plan, store)
    entries = [Entry(p.spec.name, loading.block_timer(p.runner)) for p in pendings]
    if sampler is None:
        sampler = ContentionSampler()
        is_quiet = loading.quiet_probe
    else:  # an injected sampler (tests, another machine's readings) brings its own probe, or none
        is_quiet = getattr(sampler, "is_quiet", None)

    def progress(r: int, name: str) -> None:
        extra = " (replacement)" if r >= plan.rounds else ""
        step(name, f"round {r + 1}/{plan.rounds}{extra}")

    def journal(name: str, res: Any) -> None:
        p = by_name[name]
        store.journal_write(p.key, {
            "model": name, "key": p.key, "plan": plan.as_dict(), "pid": os.getpid(),
            "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "state": res.as_journal()})

    out: dict[str, dict[str, Any]] = {}
    try:
        measured = run_rounds(entries, plan, sampler=sampler, on_progress=progress, on_block=journal,
                              resume=resume, started=began, is_quiet=is_quiet)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "partial", {})
        with deferred():
            for p in pendings:
                res = partial.get(p.spec.name)
                done = sum(1 for u in res.used_flags() if u) if res else 0
                finish(p, store, job, res.used_samples() if res else None,
                        extra=_rounds_fields(plan, res, job, len(entries), group) if res else None,
                        error=f"interrupted after {done} of {plan.rounds} rounds (the finished rounds are "
                              f"journaled: the same command goes on from there)", status="interrupted",
                        all_samples=res.samples if res else None)
        raise
    failures: list[str] = []
    with deferred():  # a signal now waits until every finished measurement is stored
        for p in pendings:
            res = measured[p.spec.name]
            try:
                out[p.spec.name] = finish(p, store, job, res.used_samples(),
                                           extra=_rounds_fields(plan, res, job, len(entries), group), error=res.error,
                                           all_samples=res.samples)
            except RecordsError as exc:  # the others are still stored (or saved for recovery), then this is raised
                failures.append(f"{p.spec.name}: {exc}")
                continue
            store.journal_remove(p.key)
    if failures:
        raise RecordsError(f"{len(failures)} of {len(pendings)} records could not be stored: " + " | ".join(failures))
    return out
