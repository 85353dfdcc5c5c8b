"""Measuring latency: one model in one block (the paper's way), or several together in interleaved rounds,
in memory groups, largest built first. One record per model, made by :mod:`~mobileone_bench.pipeline.recording`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench._interrupt import deferred, handling
from mobileone_bench.pipeline import loading
from mobileone_bench.pipeline.interleaved import measure_in_rounds
from mobileone_bench.pipeline.job import DEFAULT_MEMORY_BUDGET_GB, LatencyJob, replace_protocol
from mobileone_bench.pipeline.loading import begin, contention_fields, finish
from mobileone_bench.pipeline.preparing import Prepared
from mobileone_bench.pipeline.recording import latency_identity, failure_message, weights_sha

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.store.records import ResultsStore

__all__ = ["measure_latency", "measure_models"]


def measure_latency(spec: ModelSpec | str, job: LatencyJob, store: ResultsStore, *, force: bool = False,
                    prepared: Prepared | None = None, on_step: Callable[[str], None] | None = None,
                    sampler: Any = None) -> tuple[dict[str, Any], bool]:
    """Measure one model's latency with the paper's protocol (one block) and append the record (with raw samples).

    A failure of this model (build, export, runtime) is recorded as a failed record and returned, not raised; a bad
    job (unknown runtime, unsupported precision) raises. Several models: :func:`measure_models`.

    Returns:
        ``(record, skipped)``: ``skipped`` is true when a successful record with the same key already existed
        (then that record is returned and nothing is measured).
    """
    from mobileone_bench.models import registry
    from mobileone_bench.devices._contention import ContentionSampler

    if isinstance(spec, str):
        spec = registry.resolve(spec)
    job = replace_protocol(job.resolved(), "blocked")
    store.check_writable(_expected_bytes(job, 1))
    step = on_step or (lambda _s: None)
    record, skipped, pending = begin(spec, job, store, force=force, prepared=prepared, step=step)
    if pending is None:
        assert record is not None
        return record, skipped
    sampler = sampler if sampler is not None else ContentionSampler()
    step(f"measure {job.warmup}+{job.runs} runs")
    token = sampler.start()
    try:
        with handling():
            samples = loading.block_timer(pending.runner)(int(job.warmup), int(job.runs))
    except KeyboardInterrupt:
        with deferred():
            finish(pending, store, job, None, error="interrupted", status="interrupted")
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data
        return finish(pending, store, job, None, error=failure_message(exc)), False
    reading = sampler.stop(token)
    contention = contention_fields([reading], [len(samples)])
    contention["round_contended"] = json.dumps(contention["round_contended"])
    with deferred():
        return finish(pending, store, job, samples, extra=contention), False


def measure_models(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *, force: bool = False,
                   prepared: dict[str, Prepared] | None = None, on_step: Callable[[str, str], None] | None = None,
                   sampler: Any = None,
                   before: Callable[[ModelSpec], Prepared | None] | None = None) -> list[tuple[dict[str, Any], bool]]:
    """Measure several models, interleaved in rounds unless the job says ``blocked``; one record each, in order.

    Interleaved: every model is built, exported and loaded first (its runner kept), then timed in ``job.rounds``
    rounds in a fresh seeded order each round (:func:`mobileone_bench.devices._rounds.run_rounds`); the statistic is
    taken over all of a model's samples, and each record also carries the per-round statistic, its spread, the
    visiting positions and the contention readings. Stored measurements are skipped as with one model. An
    interruption stores what was measured (status ``interrupted``) before it propagates.

    Memory: each model is built, exported and loaded in turn and only its runner is kept (a PyTorch model only
    where the runtime is PyTorch), so a zoo's peak is the runtimes' sessions plus one model being built.

    Args:
        before: Called with each spec just before it is built and exported (``run`` profiles it there); may return
            the prepared model to use.

    Returns:
        ``(record, skipped)`` per spec, in the order of ``specs``.
    """
    import time as _time

    began = _time.perf_counter()
    job = job.resolved().for_models(len(specs))
    step = on_step or (lambda _m, _s: None)
    prepared = prepared or {}
    store.check_writable(_expected_bytes(job, len(specs)))  # before anything is built or timed, not after

    def prepared_for(spec: ModelSpec) -> Prepared | None:
        got = before(spec) if before is not None else None
        return prepared.pop(spec.name, None) or got

    if job.protocol == "blocked":
        done: list[tuple[dict[str, Any], bool]] = []
        with handling():
            for spec in specs:
                done.append(measure_latency(spec, job, store, force=force, prepared=prepared_for(spec),
                                            on_step=lambda s, n=spec.name: step(n, s), sampler=sampler))
                loading.release_memory()
        return done
    results: dict[str, tuple[dict[str, Any], bool]] = {}
    pendings: list[loading.Pending] = []
    position = {spec.name: i for i, spec in enumerate(specs)}
    budget = DEFAULT_MEMORY_BUDGET_GB if job.memory_budget_gb is None else float(job.memory_budget_gb)
    start_rss = loading.resident_gb()
    groups = 0

    def measure_group() -> None:
        nonlocal pendings, groups
        pendings.sort(key=lambda p: position[p.spec.name])  # the rounds see the models in the order asked
        groups += 1
        for name, record in measure_in_rounds(pendings, job, store, step, sampler, began, groups).items():
            results[name] = (record, False)
        pendings = []  # their sessions are closed: the memory goes back before the next group is loaded
        loading.release_memory()

    with handling():
        for spec in _build_order(specs, job, store, force):
            record, skipped, pending = begin(spec, job, store, force=force, prepared=prepared_for(spec),
                                              step=lambda s, n=spec.name: step(n, s))
            if pending is None:
                assert record is not None
                results[spec.name] = (record, skipped)
            else:
                pendings.append(pending)
            loading.release_memory()  # this model's build and export are garbage now: give the heap back before the next
            now = loading.resident_gb()
            if budget > 0 and len(pendings) >= 2 and start_rss is not None and now is not None and \
                    now - start_rss > budget:
                measure_group()  # the loaded sessions reached the budget: time them now, then load the rest
        if pendings:
            measure_group()
    return [results[spec.name] for spec in specs]


def _build_order(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, force: bool) -> list[ModelSpec]:
    """The order in which the models of an interleaved measurement are built, exported and loaded: largest first.

    Only the runtime sessions are kept for the rounds, so memory peaks when a model is built while the sessions of
    the others are already loaded; building the largest (by parameter count, from a shape-only build on PyTorch's
    ``meta`` device: no memory, no weights) while few sessions exist keeps that peak low (``run --zoo paper-table9``:
    RepVGG-B1's build and export take about 1 GB for a moment). The rounds still visit the models in the seeded
    orders of the list as asked. Models already measured, or that cannot be built, come last (nothing to build).
    """
    from mobileone_bench.store.records import record_key

    stored = set() if force else store.keys("latency")
    todo = [s for s in specs if s.available and record_key(latency_identity(s, job, weights_sha(job.weights)))
            not in stored]
    if len(todo) < 2:
        return list(specs)
    import torch

    from mobileone_bench.models.factory import create_model

    def size(spec: ModelSpec) -> int:
        try:
            with torch.device("meta"):
                model = create_model(spec)
            return sum(p.numel() for p in model.parameters())
        except Exception:  # noqa: BLE001 - an estimate only: a model that cannot be built meta keeps its place
            return 0

    sizes = {s.name: size(s) for s in todo}
    return sorted(specs, key=lambda s: -sizes.get(s.name, 0))


def _expected_bytes(job: LatencyJob, models: int) -> int:
    """About what measuring ``models`` models writes: samples (about 24 bytes each as JSON), as many again for the
    journal and the replacement rounds, and a record of a few kB each (profile and latency)."""
    return int(models * (int(job.runs or 0) * 24 * 3 + 16_000))
