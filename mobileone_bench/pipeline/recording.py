"""The one maker of records: every latency, profile and peak record is made and stored here.

Whether a model was timed in this process (:mod:`~mobileone_bench.pipeline.measure`), on a Ray node
(:mod:`~mobileone_bench.pipeline.cluster`) or on an iPhone or a Mac (:mod:`~mobileone_bench.pipeline.phone`), its
record's identity comes from :func:`latency_identity`, the decision to skip it from :func:`stored`, its statistics
from :func:`summary_fields` (one function whatever the device: the harness's own summary is only checked against it)
and the record itself from :func:`append_latency`. A new record field is one edit here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.records import ResultsStore

__all__ = ["UNAVAILABLE_PREFIX", "is_unavailable", "weights_sha", "failure_message", "runtime_versions",
           "latency_identity", "stored", "summary_fields", "append_record", "append_latency", "adopt", "flagged"]

#: The error text of a record whose model cannot be built here (not a failure of the run): kept as the prefix of the
#: ``error`` field so that records written before it existed read the same way.
UNAVAILABLE_PREFIX = "unavailable: "


def is_unavailable(record: dict[str, Any]) -> bool:
    """Whether a failed record only says the model cannot be built here (not a failure of the run)."""
    return record.get("status") != "ok" and str(record.get("error") or "").startswith(UNAVAILABLE_PREFIX)


def weights_sha(weights: str | None) -> str | None:
    """The SHA-256 of a local weights file (``None`` for random, seeded weights)."""
    if not weights:
        return None
    from mobileone_bench.models.checkpoints import file_sha256

    return file_sha256(weights)


def failure_message(exc: BaseException) -> str:
    """A failed record's ``error``: one line, the type named unless it is one of the tool's own errors."""
    from mobileone_bench.errors import one_line

    return one_line(exc, limit=500)


def runtime_versions(runtime: str) -> dict[str, Any]:
    """The library versions (and GPU) a record of ``runtime`` carries in its identity (the runtime table's
    ``libraries``: :func:`mobileone_bench.devices.runtime_versions`)."""
    from mobileone_bench.devices import runtime_versions as versions

    return versions(runtime)


def latency_identity(spec: ModelSpec | None, job: LatencyJob, weights_sha256: str | None = None,
                     **overrides: Any) -> dict[str, Any]:
    """The fields that identify a latency measurement (hashed into the record key), for every device.

    Args:
        spec: The model (``None`` for a model the registry does not know: give ``model``, ``target``, ``patches``
            and ``input_shape`` as overrides).
        job: The resolved job.
        weights_sha256: Hash of the local weights, or ``None``.
        **overrides: Fields that the device decides instead of this host (an iPhone: ``machine``, ``versions``,
            ``threads``, ``warmup``, ``runs``, ``input_shape``, ``runtime_options``) and fields only it has
            (``device_id``); overrides keep the field's place, new fields come last.
    """
    identity: dict[str, Any] = {
        "model": spec.name if spec is not None else None,
        "target": spec.target if spec is not None else None,
        "patches": list(spec.patches) if spec is not None else [],
        "weights_sha256": weights_sha256,
        "input_shape": None,
        "reparameterized": job.reparameterize,
        "device": job.device,
        "runtime": job.runtime,
        "precision": job.precision,
        "threads": job.threads,
        "warmup": job.warmup,
        "runs": job.runs,
        "runtime_options": dict(job.runtime_options),
        "machine": None,
        "versions": None,
    }
    if spec is not None and "input_shape" not in overrides:
        from mobileone_bench.models import registry

        identity["input_shape"] = list(registry.input_shape(spec, job.input_size))
    if "machine" not in overrides:
        from mobileone_bench.environment import machine_fingerprint

        identity["machine"] = machine_fingerprint()
    if "versions" not in overrides:
        identity["versions"] = runtime_versions(str(job.runtime))
    identity.update(overrides)
    if job.protocol == "interleaved":
        # the blocked protocol keeps the identity it always had, so older records still count
        identity.update(protocol="interleaved", rounds=job.rounds)
    return identity


def stored(store: ResultsStore, kind: str, identity: dict[str, Any], *, force: bool, spec: ModelSpec | None = None,
           same_run: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """The stored record that makes measuring again unnecessary (``None`` when ``force``).

    The newest successful record with this identity; for a model that cannot be built, the failure that already
    says why (recorded once, not on every rerun); with ``same_run=(field, value)``, also a record of this key that
    came from the same run (an imported harness report read twice stores its failures once).
    """
    if force:
        return None
    from mobileone_bench.store.records import record_key

    key = record_key(identity)
    found = store.find(key, kind)
    if found is not None:
        return found
    if spec is not None and not spec.available:
        for rec in reversed(store.records(kind)):
            if rec.get("key") == key and is_unavailable(rec):
                return rec
    if same_run is not None:
        field, value = same_run
        for rec in reversed(store.records(kind)):
            if rec.get("key") == key and value is not None and rec.get(field) == value:
                return rec
    return None


def summary_fields(samples: list[float], report: str) -> dict[str, Any]:
    """The statistics of a record, from its raw samples (the one place, whatever the device): the summary
    (n, min, median, mean, spread...), ``latency_ms`` (the reported statistic), ``noise_warning`` and the interval."""
    from mobileone_bench.stats import interval_ci, noise_warning, summarize

    stats = summarize(samples)
    return {**stats.as_dict(), "latency_ms": stats.value(str(report)), "noise_warning": noise_warning(stats),
            **interval_ci(samples, str(report))}


def append_record(store: ResultsStore, kind: str, identity: dict[str, Any], fields: dict[str, Any],
                  env: dict[str, Any], samples: list[float] | None = None) -> dict[str, Any]:
    """Make a record of ``kind`` (``latency``, ``profile``, ``peak``, ``explain``, ``accuracy``) and append it; returns
    the stored record."""
    from mobileone_bench.store.records import new_record

    return store.append(new_record(kind, identity, fields, env), samples or None)


def append_latency(store: ResultsStore, identity: dict[str, Any], fields: dict[str, Any], env: dict[str, Any],
                   samples: list[float] | None = None, *, report: str | None = None,
                   all_samples: list[float] | None = None) -> dict[str, Any]:
    """Make a latency record and append it with its samples.

    Args:
        fields: The measured fields (``status``, ``error``, the device's own fields). When the status is ok and no
            statistics are there yet, they are computed from ``samples`` (:func:`summary_fields`).
        samples: The samples the statistics come from.
        report: The reported statistic (``median``...), needed when the statistics are computed here.
        all_samples: What the samples file keeps when it is more than ``samples`` (replaced rounds included).
    """
    fields = dict(fields)
    if fields.get("status") == "ok" and samples and "latency_ms" not in fields:
        if report is None:
            raise ValueError("append_latency: the reported statistic is needed to summarise samples")
        fields.update(summary_fields(samples, report))
    if fields.get("error") is not None:
        fields["error"] = str(fields["error"])[:500]
    return append_record(store, "latency", identity, fields, env,
                         all_samples if all_samples is not None else samples)


def adopt(store: ResultsStore, record: dict[str, Any], fields: dict[str, Any],
          samples: list[float] | None = None) -> dict[str, Any]:
    """Store a record this module made in another process (a Ray node's temporary store), with the fields only the
    driver knows (where it ran, which attempt) added after its own; returns the stored record."""
    record = dict(record)
    record.update(fields)
    return store.append(record, samples or None)


def flagged(record: dict[str, Any]) -> bool:
    """Whether a successful latency record should be measured again: contended, or unstable by its spread (a
    warning that only says the runs were too few to judge is not a reason: measuring again changes nothing)."""
    if record.get("status") != "ok":
        return False
    if record.get("contended"):
        return True
    from mobileone_bench.stats import MIN_RUNS_TO_JUDGE

    return bool(record.get("noise_warning")) and int(record.get("n") or 0) >= MIN_RUNS_TO_JUDGE
