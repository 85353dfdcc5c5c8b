"""The order of the steps, and nothing else: name -> model -> re-parameterize + verify -> complexity / export /
latency -> records.

Each step hands the next a plain value. The CLI commands call these functions; a sweep over many models records a
failure as data and goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench._interrupt import deferred, handling

if TYPE_CHECKING:  # pragma: no cover - the registry imports the families (torch)
    from mobileone_bench.models.registry import ModelSpec

__all__ = ["Prepared", "prepare", "profile", "LatencyJob", "latency_identity", "measure_latency", "measure_models",
           "profile_identity", "profile_record", "run_models", "is_unavailable", "UNAVAILABLE_PREFIX", "flagged"]


@dataclass
class Prepared:
    """A model ready for measurement.

    Attributes:
        spec: What the registry knows about it.
        input_shape: NCHW input shape.
        train_model: The model as built (train-time form, eval mode, calibrated BN if randomly initialised).
        model: The inference-time form (re-parameterized unless ``reparameterized`` is false).
        reparameterized: Whether ``model`` is the re-parameterized form.
        reparam: What re-parameterization did (:meth:`ReparamResult.summary`), or ``None``.
        verify: Equivalence check (:meth:`VerifyResult.as_dict`), or ``None`` when not checked.
        weights: Path of the weights file, or ``None`` for random weights.
        weights_sha256: Its hash (``None`` for random weights, which are seeded).
    """

    spec: ModelSpec
    input_shape: tuple[int, ...]
    train_model: Any
    model: Any
    reparameterized: bool
    reparam: dict[str, Any] | None
    verify: dict[str, Any] | None
    weights: str | None
    weights_sha256: str | None


def prepare(
    spec: ModelSpec | str,
    *,
    weights: str | None = None,
    input_size: tuple[int, int] | None = None,
    reparameterize: bool = True,
    check: bool = True,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> Prepared:
    """Build a model and its inference-time form.

    Random weights are seeded (``seed``) and BatchNorm gets realistic statistics (:func:`calibrate_bn`), so that
    numerical checks mean something. With ``check``, the re-parameterized model is compared with the train-time model
    and :class:`~mobileone_bench.errors.ReparamMismatchError` is raised above tolerance.
    """
    import torch

    from mobileone_bench.models import registry
    from mobileone_bench.models.checkpoints import file_sha256
    from mobileone_bench.reparameterization import calibrate_bn, reparameterize_model, verify_reparam

    if isinstance(spec, str):
        spec = registry.resolve(spec)
    shape = registry.input_shape(spec, input_size)
    torch.manual_seed(seed)
    from mobileone_bench.models.factory import create_model

    train = create_model(spec, weights=weights)
    if weights is None:
        calibrate_bn(train, shape, seed=seed)
    if not reparameterize:
        return Prepared(spec, shape, train, train, False, None, None, weights,
                        file_sha256(weights) if weights else None)
    result = reparameterize_model(train, input_shape=shape)
    verify = None
    if check:
        verify = verify_reparam(train, result.model, shape, atol=atol, rtol=rtol, seed=seed).as_dict()
    return Prepared(spec, shape, train, result.model, True, result.summary(), verify, weights,
                    file_sha256(weights) if weights else None)


def profile(prepared: Prepared) -> dict[str, Any]:
    """Params, FLOPs and the other cost proxies (activations, memory traffic, depth: :mod:`mobileone_bench.proxies`)
    of a prepared model's inference-time form, as a flat row."""
    from mobileone_bench.complexity import profile_model
    from mobileone_bench.proxies import count_proxies

    c = profile_model(prepared.model, prepared.input_shape, reparameterized=True)
    p = count_proxies(prepared.model, prepared.input_shape).as_dict()
    return {
        "model": prepared.spec.name,
        "input_shape": list(prepared.input_shape),
        "params": c.params,
        "flops": c.flops,
        "params_m": round(c.params_m, 4),
        "flops_m": round(c.flops_m, 2),
        "reparameterized": prepared.reparameterized,
        "flops_by_op": c.flops_by_op,
        **{k: p[k] for k in PROXY_FIELDS},
    }


#: The proxy fields of a profile row and record besides params and FLOPs.
PROXY_FIELDS = ("activations", "activations_m", "memory_mb_fp32", "memory_mb_fp16", "depth")


# ------------------------------------------------------------------------------------------------------ latency

UNAVAILABLE_PREFIX = "unavailable: "


def _weights_sha(weights: str | None) -> str | None:
    if not weights:
        return None
    from mobileone_bench.models.checkpoints import file_sha256

    return file_sha256(weights)


def _stored(store: Any, kind: str, identity: dict[str, Any], spec: ModelSpec, force: bool) -> dict[str, Any] | None:
    """The stored record that makes measuring again unnecessary: the newest successful one with this identity, or,
    for a model that cannot be built, the failure that already says why (recorded once, not on every rerun)."""
    from mobileone_bench.store.records import record_key

    key = record_key(identity)
    if force:
        return None
    found = store.find(key, kind)
    if found is None and not spec.available:
        for rec in reversed(store.records(kind)):
            if rec.get("key") == key and str(rec.get("error") or "").startswith(UNAVAILABLE_PREFIX):
                return rec
    return found


def is_unavailable(record: dict[str, Any]) -> bool:
    """Whether a failed record only says the model cannot be built here (not a failure of the run)."""
    return record.get("status") != "ok" and str(record.get("error") or "").startswith(UNAVAILABLE_PREFIX)



@dataclass(frozen=True)
class LatencyJob:
    """Everything that defines one latency measurement of one model (see :func:`measure_latency`).

    Attributes:
        device: ``cpu``, ``gpu``, ``iphone`` or ``mac``.
        runtime: Runtime name (the device's default if ``None``).
        precision: ``fp32``/``fp16`` (the runtime's default if ``None``).
        warmup: Untimed runs (the runtime's default if ``None``).
        runs: Timed runs (the runtime's default if ``None``).
        threads: CPU threads (physical cores if ``None``; ignored on GPU).
        report: The statistic reported as "the latency" (the device's default if ``None``).
        runtime_options: Extra runtime settings (``graph_optimization``, ``cuda_graphs``...).
        input_size: Input size instead of the model's default.
        weights: Local checkpoint.
        reparameterize: Measure the inference-time form (the paper's way) or the train-time one.
        models_dir: Where artifacts are exported.
        protocol: ``blocked`` (each model's runs in one block, the paper's way, and the single-model path) or
            ``interleaved`` (several models in rounds, see :mod:`mobileone_bench.devices._rounds`); ``None``:
            interleaved when several models are measured together, blocked for one.
        rounds: Rounds of the interleaved protocol (``DEFAULT_ROUNDS`` if ``None``).
        seed: Seed of the interleaved visiting orders.
        max_extra_rounds: Interleaved: replacement rounds a model may get for its contended rounds (``None``: as
            many as ``rounds``; 0: flag only). Not part of the record's identity: it changes which rounds count,
            not what is measured.
        extra_time_share: Interleaved: the time all replacement rounds may take, as a share of the planned rounds'
            time (``None``: :data:`~mobileone_bench.devices._rounds.DEFAULT_EXTRA_TIME_SHARE`).
        memory_budget_gb: Interleaved: memory the loaded sessions of one group may add (``None``:
            :data:`DEFAULT_MEMORY_BUDGET_GB`; 0: one group whatever the memory). Not part of the identity.
    """

    device: str = "cpu"
    runtime: str | None = None
    precision: str | None = None
    warmup: int | None = None
    runs: int | None = None
    threads: int | None = None
    report: str | None = None
    runtime_options: tuple[tuple[str, Any], ...] = ()
    input_size: tuple[int, int] | None = None
    weights: str | None = None
    reparameterize: bool = True
    models_dir: str = "models"
    protocol: str | None = None
    rounds: int | None = None
    seed: int = 0
    max_extra_rounds: int | None = None
    extra_time_share: float | None = None
    memory_budget_gb: float | None = None

    def resolved(self) -> "LatencyJob":
        """The job with every default filled in, after checking the combination makes sense."""
        from mobileone_bench.devices import get_runtime
        from mobileone_bench.errors import UsageError
        from mobileone_bench.stats import REPORTS

        rt = get_runtime(self.device, self.runtime)
        precision = self.precision or rt.default_precision
        if precision not in rt.precisions:
            raise UsageError(f"{rt.name} on {rt.device} cannot run {precision} (supported: {', '.join(rt.precisions)})")
        report = self.report or rt.default_report
        if report not in REPORTS:
            raise UsageError(f"unknown statistic {report!r}; choose from {', '.join(REPORTS)}")
        warmup = rt.default_warmup if self.warmup is None else self.warmup
        runs = rt.default_runs if self.runs is None else self.runs
        if warmup < 0 or runs < 1:
            raise UsageError("--warmup must be >= 0 and --runs >= 1")
        threads = self.threads
        if self.device == "cpu":
            from mobileone_bench.devices.cpu import default_threads

            threads = default_threads() if threads is None else threads
            if threads < 1:
                raise UsageError("--threads must be >= 1")
        else:
            threads = None
        from dataclasses import replace

        from mobileone_bench.devices._rounds import DEFAULT_ROUNDS

        if self.protocol not in (None, "blocked", "interleaved"):
            raise UsageError(f"unknown protocol {self.protocol!r}; choose blocked or interleaved")
        from mobileone_bench.devices._rounds import DEFAULT_EXTRA_TIME_SHARE

        rounds = DEFAULT_ROUNDS if self.rounds is None else self.rounds
        if rounds < 1:
            raise UsageError("--rounds must be >= 1")
        rounds = min(rounds, runs)
        extra = rounds if self.max_extra_rounds is None else self.max_extra_rounds
        share = DEFAULT_EXTRA_TIME_SHARE if self.extra_time_share is None else self.extra_time_share
        if extra < 0:
            raise UsageError("--max-extra-rounds must be >= 0")
        if not share >= 0:
            raise UsageError("--extra-time must be >= 0")
        return replace(self, runtime=rt.name, precision=precision, warmup=warmup, runs=runs, threads=threads,
                       report=report, rounds=rounds, max_extra_rounds=extra, extra_time_share=float(share))

    def for_models(self, n: int) -> "LatencyJob":
        """The job with its protocol decided for ``n`` models measured together (interleaved for more than one)."""
        from dataclasses import replace

        if self.protocol is not None:
            return self
        return replace(self, protocol="interleaved" if n > 1 else "blocked")


def _runtime_versions(runtime: str) -> dict[str, Any]:
    from mobileone_bench.environment import gpu_info, library_versions

    libs = library_versions()
    keep = {"onnxruntime": ("onnxruntime", "onnx", "torch"), "torch": ("torch",), "tensorrt": ("tensorrt", "torch"),
            "torch-cuda": ("torch",), "coreml": ("coremltools", "torch"),
            "executorch": ("executorch", "torchao", "torch")}.get(runtime, ())
    if runtime == "executorch":
        libs.update(library_versions(("executorch", "torchao")))
    out = {k: libs.get(k) for k in keep}
    if runtime in ("tensorrt", "torch-cuda"):
        g = gpu_info()
        out.update(gpu=g.get("gpu"), gpu_driver=g.get("gpu_driver"), cuda=g.get("cuda"))
    return out


def latency_identity(spec: ModelSpec, job: LatencyJob, weights_sha256: str | None = None) -> dict[str, Any]:
    """The fields that identify a latency measurement (hashed into the record key)."""
    from mobileone_bench.models import registry
    from mobileone_bench.environment import machine_fingerprint

    return {
        "model": spec.name,
        "target": spec.target,
        "patches": list(spec.patches),
        "weights_sha256": weights_sha256,
        "input_shape": list(registry.input_shape(spec, job.input_size)),
        "reparameterized": job.reparameterize,
        "device": job.device,
        "runtime": job.runtime,
        "precision": job.precision,
        "threads": job.threads,
        "warmup": job.warmup,
        "runs": job.runs,
        "runtime_options": dict(job.runtime_options),
        "machine": machine_fingerprint(),
        "versions": _runtime_versions(str(job.runtime)),
        # the blocked protocol keeps the identity it always had, so older records still count
        **({"protocol": "interleaved", "rounds": job.rounds} if job.protocol == "interleaved" else {}),
    }


@dataclass
class _Pending:
    """A model whose runner is ready and whose record is waiting for its samples."""

    spec: ModelSpec
    identity: dict[str, Any]
    fields: dict[str, Any]
    runner: Any
    started: float

    @property
    def key(self) -> str:
        from mobileone_bench.store.records import record_key

        return record_key(self.identity)


def _block(runner: Any) -> Callable[[int, int], list[float]]:
    """``block(warmup, runs) -> samples`` of a runner: its own clock (CUDA events) if it has one, else the protocol's."""
    from mobileone_bench.devices._protocol import time_runs

    timer = getattr(runner, "time", None)
    if callable(timer):
        return lambda warmup, runs: list(timer(warmup, runs))
    return lambda warmup, runs: time_runs(runner, int(warmup), int(runs))


def _failure_message(exc: BaseException) -> str:
    from mobileone_bench.errors import BenchError

    message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return message[:500]


def _begin(spec: ModelSpec, job: LatencyJob, store: Any, *, force: bool, prepared: Prepared | None,
           step: Callable[[str], None]) -> tuple[dict[str, Any] | None, bool, _Pending | None]:
    """Everything before timing: the stored record if there is one, else build, export and make the runner.

    Returns:
        ``(record, skipped, pending)``: a stored record (``skipped``), or a failure already appended, or a
        :class:`_Pending` to time.
    """
    import time as _time

    from mobileone_bench.devices import get_runtime, load_runtime
    from mobileone_bench.errors import BenchError, UsageError
    from mobileone_bench.pipeline.artifacts import artifact_for

    identity = latency_identity(spec, job, _weights_sha(job.weights))
    stored = _stored(store, "latency", identity, spec, force)
    if stored is not None:
        return stored, True, None
    rt = get_runtime(job.device, job.runtime)
    fields: dict[str, Any] = {"status": "ok", "error": None, "report": job.report, "paper_name": spec.paper_name,
                              "source": "measured", "protocol": job.protocol or "blocked"}
    started = _time.perf_counter()
    try:
        if not spec.available:
            raise BenchError(f"{UNAVAILABLE_PREFIX}{spec.reason}")
        impl = load_runtime(rt)
        if prepared is None:
            step("build + re-parameterize")
            prepared = prepare(spec, weights=job.weights, input_size=job.input_size,
                               reparameterize=job.reparameterize, check=job.reparameterize)
            if prepared.reparameterized:
                prepared.train_model = None  # checked; only the inference-time form is exported and timed
        if rt.artifact:
            step(f"export {rt.artifact}")
        export, artifact = artifact_for(prepared, job, force)
        if export is not None:
            fields.update(artifact_format=export.format, artifact_path=export.path,
                          artifact_sha256=(export.manifest or {}).get("sha256"))
        runner = impl.make_runner(str(job.runtime), artifact=artifact, model=prepared.model,
                                  input_shape=prepared.input_shape, precision=str(job.precision),
                                  threads=job.threads, options=dict(job.runtime_options))
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data; the sweep goes on
        fields.update(status="failed", error=_failure_message(exc))
        return _finish(_Pending(spec, identity, fields, None, started), store, job, None), False, None
    return None, False, _Pending(spec, identity, fields, runner, started)


def _finish(pending: _Pending, store: Any, job: LatencyJob, samples: list[float] | None, *,
            extra: dict[str, Any] | None = None, error: str | None = None, status: str = "failed",
            all_samples: list[float] | None = None) -> dict[str, Any]:
    """Summarize the samples, close the runner and append the record (a failure keeps the samples it has).

    ``samples`` are those the statistics come from; ``all_samples`` (replaced rounds included) are what the samples
    file keeps, when given.
    """
    import time as _time

    from mobileone_bench.environment import collect
    from mobileone_bench.store.records import new_record
    from mobileone_bench.stats import interval_ci, noise_warning, summarize

    fields = pending.fields
    fields.update(extra or {})
    if error is not None:
        fields.update(status=status, error=error[:500])
    runner = pending.runner
    try:
        if runner is not None and fields["status"] == "ok":
            settings = runner.settings()
            fields.update(runtime_settings=settings, clock=settings.get("clock", "perf_counter_ns"))
        if fields["status"] == "ok" and samples:
            stats = summarize(samples)
            fields.update(stats.as_dict(), latency_ms=stats.value(str(job.report)), noise_warning=noise_warning(stats),
                          **interval_ci(samples, str(job.report)))
    except Exception as exc:  # noqa: BLE001 - a runner that cannot describe itself still has its samples
        fields.update(status="failed", error=_failure_message(exc))
    finally:
        if runner is not None:
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - closing must not hide the measurement
                pass
            pending.runner = None
    fields["seconds"] = round(_time.perf_counter() - pending.started, 2)
    record = new_record("latency", pending.identity, fields, collect(gpu=job.device == "gpu"))
    return store.append(record, (all_samples if all_samples is not None else samples) or None)


def _contention_fields(readings: list[dict[str, Any]], block_sizes: list[int]) -> dict[str, Any]:
    from mobileone_bench.devices._contention import summarize_contention

    return summarize_contention(readings, block_sizes)


def measure_latency(spec: ModelSpec | str, job: LatencyJob, store: Any, *, force: bool = False,
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
    record, skipped, pending = _begin(spec, job, store, force=force, prepared=prepared, step=step)
    if pending is None:
        assert record is not None
        return record, skipped
    sampler = sampler if sampler is not None else ContentionSampler()
    step(f"measure {job.warmup}+{job.runs} runs")
    token = sampler.start()
    try:
        with handling():
            samples = _block(pending.runner)(int(job.warmup), int(job.runs))
    except KeyboardInterrupt:
        with deferred():
            _finish(pending, store, job, None, error="interrupted", status="interrupted")
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data
        return _finish(pending, store, job, None, error=_failure_message(exc)), False
    reading = sampler.stop(token)
    contention = _contention_fields([reading], [len(samples)])
    contention["round_contended"] = json.dumps(contention["round_contended"])
    with deferred():
        return _finish(pending, store, job, samples, extra=contention), False


def replace_protocol(job: LatencyJob, protocol: str) -> LatencyJob:
    from dataclasses import replace

    return replace(job, protocol=protocol)


def measure_models(specs: list[ModelSpec], job: LatencyJob, store: Any, *, force: bool = False,
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
    from mobileone_bench.devices._contention import ContentionSampler
    from mobileone_bench.devices._rounds import Entry, plan_rounds, run_rounds
    from mobileone_bench.stats import rounds_ci
    from mobileone_bench.stats import summarize

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
                release_memory()
        return done
    results: dict[str, tuple[dict[str, Any], bool]] = {}
    pendings: list[_Pending] = []
    position = {spec.name: i for i, spec in enumerate(specs)}
    budget = DEFAULT_MEMORY_BUDGET_GB if job.memory_budget_gb is None else float(job.memory_budget_gb)
    start_rss = resident_gb()
    groups = 0

    def measure_group() -> None:
        nonlocal pendings, groups
        pendings.sort(key=lambda p: position[p.spec.name])  # the rounds see the models in the order asked
        groups += 1
        for name, record in _measure_in_rounds(pendings, job, store, step, sampler, began, groups).items():
            results[name] = (record, False)
        pendings = []  # their sessions are closed: the memory goes back before the next group is loaded
        release_memory()

    with handling():
        for spec in _build_order(specs, job, store, force):
            record, skipped, pending = _begin(spec, job, store, force=force, prepared=prepared_for(spec),
                                              step=lambda s, n=spec.name: step(n, s))
            if pending is None:
                assert record is not None
                results[spec.name] = (record, skipped)
            else:
                pendings.append(pending)
            release_memory()  # this model's build and export are garbage now: give the heap back before the next
            now = resident_gb()
            if budget > 0 and len(pendings) >= 2 and start_rss is not None and now is not None and \
                    now - start_rss > budget:
                measure_group()  # the loaded sessions reached the budget: time them now, then load the rest
        if pendings:
            measure_group()
    return [results[spec.name] for spec in specs]


#: Memory the runtime sessions of one interleaved group may add to the process (GB): past it, the models loaded so
#: far are timed together and released before the next are loaded (``run --zoo paper-table9``: two groups on the
#: 2-core development VM, peak 2.3 GB instead of 2.8; the quick zoo stays one group). 0: no limit.
DEFAULT_MEMORY_BUDGET_GB = 0.8


def resident_gb() -> float | None:
    """This process's resident memory now (GB), from ``/proc/self/status`` (``None`` where it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024 ** 2
    except (OSError, ValueError, IndexError):
        return None
    return None


def _build_order(specs: list[ModelSpec], job: LatencyJob, store: Any, force: bool) -> list[ModelSpec]:
    """The order in which the models of an interleaved measurement are built, exported and loaded: largest first.

    Only the runtime sessions are kept for the rounds, so memory peaks when a model is built while the sessions of
    the others are already loaded; building the largest (by parameter count, from a shape-only build on PyTorch's
    ``meta`` device: no memory, no weights) while few sessions exist keeps that peak low (``run --zoo paper-table9``:
    RepVGG-B1's build and export take about 1 GB for a moment). The rounds still visit the models in the seeded
    orders of the list as asked. Models already measured, or that cannot be built, come last (nothing to build).
    """
    from mobileone_bench.store.records import record_key

    stored = set() if force else store.keys("latency")
    todo = [s for s in specs if s.available and record_key(latency_identity(s, job, _weights_sha(job.weights)))
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


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's ``malloc_trim``; nothing elsewhere).

    Building, verifying and exporting a large model (RepVGG-B1: about 1 GB of transient tensors) leaves the freed
    memory in the allocator's free lists, so the sessions kept for the rounds would otherwise sit on top of every
    earlier model's high-water mark.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:  # not glibc (macOS, musl without the symbol): nothing to give back this way
        pass


def _expected_bytes(job: LatencyJob, models: int) -> int:
    """About what measuring ``models`` models writes: samples (about 24 bytes each as JSON), as many again for the
    journal and the replacement rounds, and a record of a few kB each (profile and latency)."""
    return int(models * (int(job.runs or 0) * 24 * 3 + 16_000))


def quiet_probe(window_s: float = 0.5) -> bool:
    """Whether the machine is quiet over the next ``window_s`` seconds (this process idle meanwhile): other
    processes used less than :data:`~mobileone_bench.devices._contention.QUIET_OTHER_CPU` of its CPUs. Unknown
    (no way to read the machine) counts as quiet: the replacement then runs at once."""
    import time as _time

    from mobileone_bench.devices._contention import QUIET_OTHER_CPU, ContentionSampler

    sampler = ContentionSampler()
    token = sampler.start()
    _time.sleep(window_s)
    reading = sampler.stop(token)
    other = reading.get("other_cpu")
    return other is None or other < QUIET_OTHER_CPU


def _round_plan(job: LatencyJob) -> Any:
    from mobileone_bench.devices._rounds import plan_rounds

    return plan_rounds(int(job.runs), int(job.warmup), int(job.rounds or 1), seed=job.seed,
                       max_extra_rounds=int(job.max_extra_rounds or 0),
                       extra_time_share=float(job.extra_time_share if job.extra_time_share is not None else 0.0))


def _resume_from_journal(pendings: list[_Pending], plan: Any, store: Any) -> dict[str, Any]:
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
    contention = _contention_fields([r for r, _ in kept], [n for _, n in kept])
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


def _measure_in_rounds(pendings: list[_Pending], job: LatencyJob, store: Any, step: Callable[[str, str], None],
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
    entries = [Entry(p.spec.name, _block(p.runner)) for p in pendings]
    if sampler is None:
        sampler = ContentionSampler()
        is_quiet = quiet_probe
    else:  # an injected sampler (tests, another machine's readings) brings its own probe, or none
        is_quiet = getattr(sampler, "is_quiet", None)

    def progress(r: int, name: str) -> None:
        res = by_name[name]
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
                _finish(p, store, job, res.used_samples() if res else None,
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
                out[p.spec.name] = _finish(p, store, job, res.used_samples(),
                                           extra=_rounds_fields(plan, res, job, len(entries), group), error=res.error,
                                           all_samples=res.samples)
            except RecordsError as exc:  # the others are still stored (or saved for recovery), then this is raised
                failures.append(f"{p.spec.name}: {exc}")
                continue
            store.journal_remove(p.key)
    if failures:
        raise RecordsError(f"{len(failures)} of {len(pendings)} records could not be stored: " + " | ".join(failures))
    return out


# ------------------------------------------------------------------------------------------------------ profile


def profile_identity(spec: ModelSpec, input_size: tuple[int, int] | None, weights_sha256: str | None) -> dict[str, Any]:
    from mobileone_bench._version import __version__
    from mobileone_bench.models import registry

    return {"model": spec.name, "target": spec.target, "patches": list(spec.patches), "weights_sha256": weights_sha256,
            "input_shape": list(registry.input_shape(spec, input_size)),
            # the counter's version: a profile stored before the proxies existed is made again
            "counter": f"mobileone-bench {__version__} (flops incl. dynamic activations, params, proxies)"}


def profile_record(spec: ModelSpec | str, store: Any, *, input_size: tuple[int, int] | None = None,
                   weights: str | None = None, force: bool = False,
                   prepared: Prepared | None = None) -> tuple[dict[str, Any], bool]:
    """Profile a model and store a ``profile`` record (skipped if an identical one exists unless ``force``)."""
    from mobileone_bench.models import registry
    from mobileone_bench.environment import collect
    from mobileone_bench.errors import UsageError
    from mobileone_bench.store.records import new_record

    if isinstance(spec, str):
        spec = registry.resolve(spec)
    identity = profile_identity(spec, input_size, _weights_sha(weights))
    stored = _stored(store, "profile", identity, spec, force)
    if stored is not None:
        return stored, True
    fields: dict[str, Any] = {"status": "ok", "error": None, "paper_name": spec.paper_name}
    try:
        if not spec.available:
            raise RuntimeError(f"{UNAVAILABLE_PREFIX}{spec.reason}")
        if prepared is None:
            prepared = prepare(spec, weights=weights, input_size=input_size, check=False)
        row = profile(prepared)
        fields.update(params=row["params"], flops=row["flops"], params_m=row["params_m"], flops_m=row["flops_m"],
                      flops_by_op=row["flops_by_op"], reparameterized=True, reparam=prepared.reparam,
                      **{k: row[k] for k in PROXY_FIELDS})
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        fields.update(status="failed", error=str(exc)[:500])
    env = {k: v for k, v in collect().items() if k in ("env_tool", "env_torch", "env_timm", "env_machine")}
    return store.append(new_record("profile", identity, fields, env)), False


# ---------------------------------------------------------------------------------------------------------- run


def run_models(specs: list[ModelSpec], job: LatencyJob, store: Any, *, force: bool = False,
               force_latency: bool = False,
               on_step: Callable[[str, str], None] | None = None) -> list[dict[str, Any]]:
    """The whole pipeline over a list of models: profile (params, FLOPs), then export + latency, each stored.

    Every model is built once for both steps; steps already stored are skipped (so a killed run resumes where it
    stopped); a failing model is recorded and the others go on. The latencies are measured together by
    :func:`measure_models` (interleaved rounds for several models unless the job says ``blocked``).

    Args:
        force: Redo every step, stored or not.
        force_latency: Measure the latency again but keep stored profiles (re-measuring flagged records).

    Returns:
        One row per model: ``{"model", "profile": record, "latency": record, "skipped": {"profile", "latency"}}``.
    """
    from mobileone_bench.store.records import record_key

    job = job.resolved().for_models(len(specs))
    step = on_step or (lambda _m, _s: None)
    weights_sha = _weights_sha(job.weights)
    profiles: dict[str, tuple[dict[str, Any], bool]] = {}

    def before(spec: ModelSpec) -> Prepared | None:
        """Build the model once for both steps and store its profile, just before its latency step."""
        need_profile = force or record_key(profile_identity(spec, job.input_size, weights_sha)) not in store.keys(
            "profile")
        need_latency = force or force_latency or record_key(latency_identity(spec, job, weights_sha)) not in \
            store.keys("latency")
        prepared = None
        if spec.available and need_profile and need_latency and job.reparameterize:
            step(spec.name, "build + re-parameterize")
            try:
                prepared = prepare(spec, weights=job.weights, input_size=job.input_size, check=True)
                prepared.train_model = None  # checked; the profile and the export use the inference-time form
            except Exception:  # noqa: BLE001 - each step below records the failure itself
                prepared = None
        step(spec.name, "profile")
        profiles[spec.name] = profile_record(spec, store, input_size=job.input_size, weights=job.weights,
                                             force=force, prepared=prepared)
        return prepared

    with handling():
        latencies = measure_models(specs, job, store, force=force or force_latency, on_step=step, before=before)
    rows = []
    for spec, (lat, lat_skipped) in zip(specs, latencies):
        prof, prof_skipped = profiles[spec.name]
        rows.append({"model": spec.name, "profile": prof, "latency": lat,
                     "skipped": {"profile": prof_skipped, "latency": lat_skipped}})
    return rows


def flagged(record: dict[str, Any]) -> bool:
    """Whether a successful latency record should be measured again: contended, or unstable by its spread (a
    warning that only says the runs were too few to judge is not a reason: measuring again changes nothing)."""
    if record.get("status") != "ok":
        return False
    if record.get("contended"):
        return True
    from mobileone_bench.stats import MIN_RUNS_TO_JUDGE

    return bool(record.get("noise_warning")) and int(record.get("n") or 0) >= MIN_RUNS_TO_JUDGE
