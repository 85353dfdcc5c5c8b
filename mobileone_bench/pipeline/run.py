"""The whole pipeline over a list of models: each built once for its profile and its latency."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from mobileone_bench._interrupt import handling
from mobileone_bench.pipeline.job import LatencyJob
from mobileone_bench.pipeline.measure import measure_models
from mobileone_bench.pipeline.preparing import Prepared, prepare, profile_identity, profile_record
from mobileone_bench.pipeline.recording import latency_identity, weights_sha

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.store.records import ResultsStore

__all__ = ["run_models"]


def run_models(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *, force: bool = False,
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
    sha = weights_sha(job.weights)
    profiles: dict[str, tuple[dict[str, Any], bool]] = {}

    def before(spec: ModelSpec) -> Prepared | None:
        """Build the model once for both steps and store its profile, just before its latency step."""
        need_profile = force or record_key(profile_identity(spec, job.input_size, sha)) not in store.keys(
            "profile")
        need_latency = force or force_latency or record_key(latency_identity(spec, job, sha)) not in \
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
