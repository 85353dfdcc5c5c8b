"""A model made ready to time (built, exported, its runner loaded) and finished into its record.

:func:`begin` does everything before timing (or finds the stored record that makes it unnecessary, or records the
failure); :func:`finish` summarises the samples, closes the runner and stores the record through
:mod:`~mobileone_bench.pipeline.recording`. Both protocols (:mod:`~mobileone_bench.pipeline.measure`, blocked, and
:mod:`~mobileone_bench.pipeline.interleaved`) use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench.pipeline.preparing import Prepared, prepare
from mobileone_bench.pipeline.recording import (
    UNAVAILABLE_PREFIX,
    append_latency,
    failure_message,
    latency_identity,
    stored,
    summary_fields,
    weights_sha,
)

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.records import ResultsStore

__all__ = ["Pending", "block_timer", "load_artifact", "begin", "finish", "contention_fields", "resident_gb",
           "release_memory", "quiet_probe"]


@dataclass
class Pending:
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


def block_timer(runner: Any) -> Callable[[int, int], list[float]]:
    """``block(warmup, runs) -> samples`` of a runner: its own clock (CUDA events) if it has one, else the protocol's."""
    from mobileone_bench.devices._protocol import time_runs

    timer = getattr(runner, "time", None)
    if callable(timer):
        return lambda warmup, runs: list(timer(warmup, runs))
    return lambda warmup, runs: time_runs(runner, int(warmup), int(runs))


def load_artifact(spec: ModelSpec, job: LatencyJob, fmt: str | None, prepared: Prepared | None,
                  fields: dict[str, Any], *, force: bool, step: Callable[[str], None]) -> tuple[Prepared, Any]:
    """Build the model (unless ``prepared``) and export the artifact the job's runtime runs (``fmt``: its format,
    ``None`` for a runtime that runs the model itself); the artifact's format, path and hash go into ``fields``.

    Returns:
        ``(prepared, artifact)``.
    """
    from mobileone_bench.pipeline.artifacts import artifact_for

    if prepared is None:
        step("build + re-parameterize")
        prepared = prepare(spec, weights=job.weights, input_size=job.input_size,
                           reparameterize=job.reparameterize, check=job.reparameterize)
        if prepared.reparameterized:
            prepared.train_model = None  # checked; only the inference-time form is exported and timed
    if fmt:
        step(f"export {fmt}")
    export, artifact = artifact_for(prepared, job, force)
    if export is not None:
        fields.update(artifact_format=export.format, artifact_path=export.path,
                      artifact_sha256=(export.manifest or {}).get("sha256"))
    return prepared, artifact


def begin(spec: ModelSpec, job: LatencyJob, store: ResultsStore, *, force: bool, prepared: Prepared | None,
          step: Callable[[str], None]) -> tuple[dict[str, Any] | None, bool, Pending | None]:
    """Everything before timing: the stored record if there is one, else build, export and make the runner.

    Returns:
        ``(record, skipped, pending)``: a stored record (``skipped``), or a failure already appended, or a
        :class:`Pending` to time.
    """
    import time as _time

    from mobileone_bench.devices import get_runtime, load_runtime
    from mobileone_bench.errors import BenchError, UsageError

    identity = latency_identity(spec, job, weights_sha(job.weights))
    found = stored(store, "latency", identity, force=force, spec=spec)
    if found is not None:
        return found, True, None
    rt = get_runtime(job.device, job.runtime)
    fields: dict[str, Any] = {"status": "ok", "error": None, "report": job.report, "paper_name": spec.paper_name,
                              "source": "measured", "protocol": job.protocol or "blocked"}
    started = _time.perf_counter()
    try:
        if not spec.available:
            raise BenchError(f"{UNAVAILABLE_PREFIX}{spec.reason}")
        impl = load_runtime(rt)
        prepared, artifact = load_artifact(spec, job, rt.artifact, prepared, fields, force=force, step=step)
        runner = impl.make_runner(str(job.runtime), artifact=artifact, model=prepared.model,
                                  input_shape=prepared.input_shape, precision=str(job.precision),
                                  threads=job.threads, options=dict(job.runtime_options))
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data; the sweep goes on
        fields.update(status="failed", error=failure_message(exc))
        return finish(Pending(spec, identity, fields, None, started), store, job, None), False, None
    return None, False, Pending(spec, identity, fields, runner, started)


def finish(pending: Pending, store: ResultsStore, job: LatencyJob, samples: list[float] | None, *,
            extra: dict[str, Any] | None = None, error: str | None = None, status: str = "failed",
            all_samples: list[float] | None = None) -> dict[str, Any]:
    """Summarize the samples, close the runner and append the record (a failure keeps the samples it has).

    ``samples`` are those the statistics come from; ``all_samples`` (replaced rounds included) are what the samples
    file keeps, when given.
    """
    import time as _time

    from mobileone_bench.environment import collect

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
            fields.update(summary_fields(samples, str(job.report)))
    except Exception as exc:  # noqa: BLE001 - a runner that cannot describe itself still has its samples
        fields.update(status="failed", error=failure_message(exc))
    finally:
        if runner is not None:
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - closing must not hide the measurement
                pass
            pending.runner = None
    fields["seconds"] = round(_time.perf_counter() - pending.started, 2)
    return append_latency(store, pending.identity, fields, collect(gpu=job.device == "gpu"), samples,
                          report=str(job.report), all_samples=all_samples)


def contention_fields(readings: list[dict[str, Any]], block_sizes: list[int]) -> dict[str, Any]:
    from mobileone_bench.devices._contention import summarize_contention

    return summarize_contention(readings, block_sizes)


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
