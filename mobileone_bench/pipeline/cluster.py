"""Measure on a fleet of hosts through a Ray cluster (``run --cluster ADDRESS --on LABEL``).

Where the work runs is not what the work is: the pipeline (:mod:`mobileone_bench.pipeline`) still does every step,
on the node; this module only sends (model, label) jobs to the cluster and writes what comes back into the
driver's store, the single writer, with :meth:`~mobileone_bench.store.records.ResultsStore.append` as each job finishes.

How a node takes part (``pip install 'mobileone-bench[cluster]'`` on every node, the same version as the driver):

* it advertises **one benchmark slot**, the custom resource ``mobileone_bench_slot: 1``: every measurement needs
  the whole slot, so no two measurements share a node; profiling needs one CPU and no slot, so it may pack;
* it advertises each of its **labels** as a custom resource ``mobileone_bench_label:<label>`` (``cpu-x86``,
  ``gpu-h100``...); ``--on LABEL`` sends the measurements to the nodes with that label (several ``--on``: each
  model is measured once per label). :func:`node_resources` builds the resources, and
  ``python -m mobileone_bench.pipeline.cluster --labels cpu-x86 [ray start options]`` runs ``ray start`` with them.

On the node a measurement is :func:`measure_on_node`: the existing pipeline into a temporary store there (the
artifacts in a per-node cache, :func:`node_models_dir`), returning the records and their raw samples. So every
latency record carries the machine fingerprint of the node that measured (part of its key), and its env fields
describe that node. The driver adds ``cluster_on`` (the label), ``cluster_node`` (Ray node id),
``cluster_node_ip`` and ``cluster_key``: the hash of the measurement's settings and the label, without the machine.
A rerun skips a (model, label) that has a successful record with that ``cluster_key`` (from any node of the label),
so a killed driver resumes where it stopped; ``--force`` measures again.

A node that dies mid-measurement (a Ray ``NodeDiedError``, ``WorkerCrashedError``... see :data:`NODE_LOST`)
gives a failure record and the rest go on; with ``retries=N`` the job is sent again (to a live node with the same
label: Ray schedules nothing on a dead node) up to N times, each lost attempt recorded as a failure. When no node
with a label is left, its pending jobs become failure records instead of waiting forever.

The driver logic (:func:`drive`) talks to an :class:`Executor`; :class:`RayExecutor` is the thin Ray end, and the
tests also drive a fake one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.records import ResultsStore

__all__ = ["SLOT", "LABEL_PREFIX", "NODE_LOST", "node_resources", "node_models_dir", "cluster_identity",
           "cluster_key", "measure_on_node", "profile_on_node", "Executor", "Lost", "RayExecutor", "connect",
           "drive", "RAY_HINT"]

#: The custom resource of a node's one benchmark slot.
SLOT = "mobileone_bench_slot"
#: A node's label ``L`` is the custom resource ``LABEL_PREFIX + L``.
LABEL_PREFIX = "mobileone_bench_label:"
#: A measurement needs this much of its label's resource (any node that advertises the label has enough).
LABEL_SHARE = 0.001
RAY_HINT = "pip install 'mobileone-bench[cluster]'"
#: Names of the Ray exceptions that mean the node or its worker went away (the job may be retried elsewhere).
NODE_LOST = ("NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError", "ActorDiedError", "ActorUnavailableError",
             "ObjectLostError", "OwnerDiedError", "ObjectFetchTimedOutError", "ObjectReconstructionFailedError",
             "TaskUnschedulableError", "RaySystemError")
#: ``module:function`` in a node's environment: called on that node before each of its measurements with the
#: model's name and the node (``{"hostname", "node_id", "node_ip"}``): a site's own preparation (log, pin a clock
#: governor, check a temperature) or a test that holds a node at a known point. Unset: nothing is called.
NODE_HOOK_ENV = "MOBILEONE_BENCH_NODE_HOOK"


def _label_name(label: str) -> str:
    from mobileone_bench.errors import UsageError

    label = label.strip()
    if not label or any(c.isspace() or c in "\"'{}," for c in label):
        raise UsageError(f"bad host label {label!r}: use letters, digits, '-', '_', '.' (e.g. cpu-x86)")
    return label


def node_resources(labels: list[str] | tuple[str, ...]) -> dict[str, float]:
    """The custom resources a node advertises: one benchmark slot and one resource per label.

    Example:
        >>> node_resources(["cpu-x86"])
        {'mobileone_bench_slot': 1, 'mobileone_bench_label:cpu-x86': 1}
    """
    out: dict[str, float] = {SLOT: 1}
    for label in labels:
        out[LABEL_PREFIX + _label_name(label)] = 1
    return out


def node_models_dir() -> str:
    """Where a node keeps its exported artifacts (reused across jobs): ``$MOBILEONE_BENCH_NODE_MODELS`` or a folder
    under the system's temporary directory."""
    return os.environ.get("MOBILEONE_BENCH_NODE_MODELS") or str(Path(tempfile.gettempdir()) / "mobileone-bench-models")


# ------------------------------------------------------------------------------------------------ identities


def cluster_identity(spec: ModelSpec, job: LatencyJob, label: str) -> dict[str, Any]:
    """What identifies a (model, label) measurement before a node is chosen: the latency identity without the
    machine and the library versions (the node's), plus the label. ``job.threads`` is the user's (``None``: each
    node's physical cores)."""
    from mobileone_bench.pipeline.recording import latency_identity

    identity = latency_identity(spec, job)
    identity.pop("machine", None)
    identity.pop("versions", None)
    identity["on"] = label
    return identity


def cluster_key(spec: ModelSpec, job: LatencyJob, label: str) -> str:
    from mobileone_bench.store.records import record_key

    return record_key(cluster_identity(spec, job, label))


# ------------------------------------------------------------------------------------------------ on the node


def _node_info() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"hostname": platform.node(), "node_id": None, "node_ip": None}
    try:
        import ray

        if ray.is_initialized():
            info["node_id"] = ray.get_runtime_context().get_node_id()
            info["node_ip"] = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - outside Ray (tests), the node is this process
        pass
    return info


def _check_version(driver_version: str | None) -> None:
    from mobileone_bench._version import __version__
    from mobileone_bench.errors import UsageError

    if driver_version is not None and driver_version != __version__:
        raise UsageError(f"this node runs mobileone-bench {__version__}, the driver {driver_version}: install the "
                         f"same version on every node")


def _stored_with_samples(store: ResultsStore, record: dict[str, Any]) -> tuple[dict[str, Any], list[float] | None]:
    samples = store.samples(record) if record.get("samples_file") else None
    record = {k: v for k, v in record.items() if k != "samples_file"}
    return record, samples


def profile_on_node(model: str, input_size: tuple[int, int] | None,
                    driver_version: str | None = None) -> dict[str, Any]:
    """Profile one model here into a temporary store; returns ``{"records": [(record, None)], "node": ...}``."""
    from mobileone_bench.models import registry
    from mobileone_bench.pipeline.preparing import profile_record
    from mobileone_bench.store.records import ResultsStore

    _check_version(driver_version)
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-node-") as tmp:
        store = ResultsStore(tmp)
        record, _ = profile_record(registry.resolve(model), store, input_size=input_size, force=True)
        out = [_stored_with_samples(store, record)]
    return {"records": out, "node": _node_info()}


def _node_hook(model: str, node: dict[str, Any]) -> None:
    """Call the node's hook (:data:`NODE_HOOK_ENV`), if it has one."""
    import importlib

    from mobileone_bench.errors import UsageError

    target = os.environ.get(NODE_HOOK_ENV)
    if not target:
        return
    module, _, name = target.partition(":")
    try:
        hook = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"{NODE_HOOK_ENV}={target!r} on {node.get('hostname')}: no function {name or '?'} in "
                         f"module {module or '?'} ({exc})") from None
    hook(model, dict(node))


def measure_on_node(model: str, job: LatencyJob, driver_version: str | None = None) -> dict[str, Any]:
    """Build, export and measure one model on this node with the existing pipeline, into a temporary store.

    The job's defaults that depend on the machine (threads) are filled in here, and the machine fingerprint of the
    record is this node's. Artifacts go to :func:`node_models_dir`.

    Returns:
        ``{"records": [(latency record, raw samples)], "node": {"hostname", "node_id", "node_ip"}}``.
    """
    from mobileone_bench.models import registry
    from mobileone_bench.pipeline.measure import measure_models
    from mobileone_bench.store.records import ResultsStore

    _check_version(driver_version)
    node = _node_info()
    _node_hook(model, node)
    job = replace(job, models_dir=node_models_dir())
    with tempfile.TemporaryDirectory(prefix="mobileone-bench-node-") as tmp:
        store = ResultsStore(tmp)
        [(record, _)] = measure_models([registry.resolve(model)], job, store, force=True)
        out = [_stored_with_samples(store, record)]
    return {"records": out, "node": node}


# ------------------------------------------------------------------------------------------------ executors


class Lost(Exception):
    """A job whose node or worker went away (retryable on another node)."""


class Executor(Protocol):
    """Where the driver sends jobs. ``wait`` returns ``(handle, payload or exception)`` for finished jobs; a
    :class:`Lost` exception means the node went away."""

    def labels(self) -> dict[str, int]:
        """Live nodes per label."""

    def submit_profile(self, model: str, input_size: tuple[int, int] | None) -> Any: ...

    def submit_measure(self, model: str, label: str, job: LatencyJob) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, Any]]: ...

    def cancel(self, handle: Any) -> None: ...


def _ray() -> Any:
    from mobileone_bench.errors import MissingDependencyError

    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--cluster (Ray)", RAY_HINT) from None
    return ray


def connect(address: str) -> Any:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine belongs to) as its driver.

    Raises:
        MissingDependencyError: Ray is not installed.
        DeviceUnavailableError: No cluster answers at the address.
    """
    import logging

    from mobileone_bench.errors import DeviceUnavailableError

    ray = _ray()
    owned = not ray.is_initialized()
    if owned:
        _check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                     include_dashboard=False, configure_logging=True)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
            raise DeviceUnavailableError(f"no Ray cluster at {address!r}: {' '.join(str(exc).split())[:300]}") \
                from None
        from mobileone_bench._interrupt import reclaim

        reclaim()  # ray.init makes SIGTERM exit at once; the tool's rule stores what arrived and says so
    return RayExecutor(ray, owned=owned)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in one line, at once, when nothing listens at ``HOST:PORT`` (Ray itself retries for minutes)."""
    import socket

    from mobileone_bench.errors import DeviceUnavailableError, UsageError

    if address in ("auto", "local") or address.startswith(("ray://", "anyscale://")):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--cluster {address!r}: give HOST:PORT of the cluster's head (or auto)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise DeviceUnavailableError(f"no Ray cluster at {address}: {exc.strerror or exc}") from None


class RayExecutor:
    """The Ray end: one task per job, a measurement holding its node's slot.

    Used as a context manager: meanwhile Ray's messages to the driver (a raylet that died...), which Ray prints on
    stdout from a thread of its own, go to stderr, so that stdout keeps only what the command prints (``--format
    json`` stays parseable); on exit, a connection that :func:`connect` opened is closed.
    """

    def __init__(self, ray: Any, owned: bool = False):
        from mobileone_bench._version import __version__

        self.ray = ray
        self.owned = owned
        self._redirect: Any = None
        self.version = __version__
        # Ray retries nothing itself: the driver records each lost attempt and decides
        self._profile = ray.remote(num_cpus=1, max_retries=0)(profile_on_node)
        self._measure = ray.remote(max_retries=0)(measure_on_node)

    def __enter__(self) -> "RayExecutor":
        import contextlib

        self._redirect = contextlib.redirect_stdout(sys.stderr)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.owned:
                self.ray.shutdown()
        finally:
            if self._redirect is not None:
                self._redirect.__exit__(None, None, None)
                self._redirect = None

    def labels(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources") or {}
            if resources.get(SLOT, 0) < 1:
                continue
            for name in resources:
                if name.startswith(LABEL_PREFIX):
                    label = name[len(LABEL_PREFIX):]
                    out[label] = out.get(label, 0) + 1
        return out

    def submit_profile(self, model: str, input_size: tuple[int, int] | None) -> Any:
        return self._profile.remote(model, input_size, self.version)

    def submit_measure(self, model: str, label: str, job: LatencyJob) -> Any:
        return self._measure.options(num_cpus=0, resources={SLOT: 1, LABEL_PREFIX + label: LABEL_SHARE}).remote(
            model, job, self.version)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, Any]]:
        if not handles:
            return []
        ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - classified below, recorded by the driver
                out.append((ref, _classify(exc)))
        return out

    def cancel(self, handle: Any) -> None:
        try:
            self.ray.cancel(handle, force=True)
        except Exception:  # noqa: BLE001 - a job that cannot be cancelled is dropped all the same
            pass


def _classify(exc: BaseException) -> BaseException:
    """A Ray exception as :class:`Lost` (the node or worker went away) or the error raised inside the task."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400]
    if names & set(NODE_LOST):
        return Lost(message)
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    return exc


# ------------------------------------------------------------------------------------------------ the driver


@dataclass
class _Job:
    kind: str  # "profile" or "latency"
    spec: ModelSpec
    label: str | None
    attempt: int = 0


def _annotate(job: _Job, key: str | None, node: dict[str, Any]) -> dict[str, Any]:
    """The driver's fields of a record a node made: where it ran, which attempt, the (model, label) key."""
    fields: dict[str, Any] = {"cluster_on": job.label, "cluster_node": node.get("node_id"),
                              "cluster_node_ip": node.get("node_ip"), "cluster_attempt": job.attempt + 1}
    if key is not None:
        fields["cluster_key"] = key
    return fields


def _failure(store: ResultsStore, job: _Job, latency_job: LatencyJob, key: str | None, error: str) -> dict[str, Any]:
    """Store the failure of a job whose node never answered (made on the driver: no node's env to record)."""
    from mobileone_bench._version import __version__
    from mobileone_bench.pipeline.preparing import profile_identity
    from mobileone_bench.pipeline.recording import append_record

    fields: dict[str, Any] = {"status": "failed", "error": error[:500], "paper_name": job.spec.paper_name,
                              "source": "cluster", "cluster_on": job.label, "cluster_attempt": job.attempt + 1}
    if job.kind == "profile":
        identity = profile_identity(job.spec, latency_job.input_size, None)
    else:
        identity = cluster_identity(job.spec, latency_job, str(job.label))
        fields.update(report=latency_job.report, cluster_key=key)
    return append_record(store, job.kind, identity, fields, {"env_tool": __version__})


def _stored_cluster(store: ResultsStore, key: str) -> dict[str, Any] | None:
    for rec in reversed(store.records("latency")):
        if rec.get("cluster_key") == key and rec.get("status") == "ok":
            return rec
    return None


def drive(specs: list[ModelSpec], labels: list[str], job: LatencyJob, store: ResultsStore, executor: Executor, *, force: bool = False,
          force_latency: bool = False, retries: int = 0, poll_s: float = 1.0,
          on_step: Callable[[str, str], None] | None = None) -> list[dict[str, Any]]:
    """Send every model's profile (one job per model, packable) and measurement (one job per model and label, one
    per node) to the executor; append each record to ``store`` as it comes back.

    Args:
        specs: Models.
        labels: Host labels (``--on``); each model is measured once per label.
        job: The resolved :class:`~mobileone_bench.pipeline.LatencyJob`, ``threads`` left as the user gave it
            (``None``: each node's physical cores).
        force: Redo everything; ``force_latency``: measure again, keep stored profiles.
        retries: How many times a job whose node went away is sent again.
        on_step: ``on_step(model, what)`` for progress (``what`` starts with ``measure `` when a job is done).

    Returns:
        One row per (model, label), as :func:`mobileone_bench.pipeline.run_models`'s rows plus ``"on"``.

    Raises:
        UsageError: A label that no live node has (checked before anything is sent).
    """
    from mobileone_bench.errors import UsageError
    from mobileone_bench.pipeline.preparing import profile_identity
    from mobileone_bench.pipeline.recording import adopt, failure_message
    from mobileone_bench.store.records import record_key

    step = on_step or (lambda _m, _s: None)
    if retries < 0:
        raise UsageError("--retries must be >= 0")
    labels = list(dict.fromkeys(_label_name(label) for label in labels))
    if not labels:
        raise UsageError("--cluster needs at least one --on LABEL (the hosts to measure on)")
    live = executor.labels()
    for label in labels:
        if not live.get(label):
            have = ", ".join(sorted(live)) or "none"
            raise UsageError(f"no node in the cluster has the label {label!r} (labels there: {have}); start one with "
                             f"`python -m mobileone_bench.pipeline.cluster --labels {label}`")
    job = job.for_models(1)
    profiles: dict[str, tuple[dict[str, Any], bool]] = {}
    latencies: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {}
    keys: dict[tuple[str, str], str] = {}
    pending: dict[Any, _Job] = {}

    def submit(item: _Job) -> None:
        if item.kind == "profile":
            pending[executor.submit_profile(item.spec.name, job.input_size)] = item
        else:
            step(item.spec.name, f"on {item.label}" + (f" (attempt {item.attempt + 1})" if item.attempt else ""))
            pending[executor.submit_measure(item.spec.name, str(item.label), job)] = item

    for spec in specs:
        found = None if force else store.find(record_key(profile_identity(spec, job.input_size, None)),
                                              "profile")
        if found is not None:
            profiles[spec.name] = (found, True)
        else:
            submit(_Job("profile", spec, None))
    for spec in specs:
        for label in labels:
            key = keys[(spec.name, label)] = cluster_key(spec, job, label)
            found = None if (force or force_latency) else _stored_cluster(store, key)
            if found is not None:
                latencies[(spec.name, label)] = (found, True)
                step(spec.name, f"measure {label}: stored")
            else:
                submit(_Job("latency", spec, label))

    def settle(item: _Job, record: dict[str, Any]) -> None:
        if item.kind == "profile":
            profiles[item.spec.name] = (record, False)
        else:
            latencies[(item.spec.name, str(item.label))] = (record, False)
            step(item.spec.name, f"measure {item.label}: {record.get('status')}")

    def lost(item: _Job, error: str) -> None:
        key = keys.get((item.spec.name, str(item.label))) if item.kind == "latency" else None
        again = item.attempt < retries
        note = f"; sent again (attempt {item.attempt + 2} of {retries + 1})" if again else ""
        record = _failure(store, item, job, key, error + note)
        if again:
            submit(replace(item, attempt=item.attempt + 1))
        else:
            settle(item, record)

    while pending:
        for handle, outcome in executor.wait(list(pending), poll_s):
            item = pending.pop(handle)
            if isinstance(outcome, Lost):
                lost(item, f"node lost during the {'measurement' if item.kind == 'latency' else 'profile'}: "
                           f"{outcome}")
            elif isinstance(outcome, BaseException):
                settle(item, _failure(store, item, job, keys.get((item.spec.name, str(item.label))),
                                      failure_message(outcome)))
            else:
                node = outcome.get("node") or {}
                key = keys.get((item.spec.name, str(item.label))) if item.kind == "latency" else None
                for record, samples in outcome.get("records") or []:
                    settle(item, adopt(store, record, _annotate(item, key, node), samples))
        if pending:
            live = executor.labels()
            for handle, item in list(pending.items()):
                if item.kind == "latency" and not live.get(str(item.label)):
                    executor.cancel(handle)
                    del pending[handle]
                    settle(item, _failure(store, item, job, keys[(item.spec.name, str(item.label))],
                                          f"no node with the label {item.label!r} is left in the cluster"))
            if not live:  # nothing can run the profiles either
                for handle, item in list(pending.items()):
                    executor.cancel(handle)
                    del pending[handle]
                    settle(item, _failure(store, item, job, None, "no benchmark node is left in the cluster"))
    rows = []
    for spec in specs:
        prof, prof_skipped = profiles[spec.name]
        for label in labels:
            lat, lat_skipped = latencies[(spec.name, label)]
            rows.append({"model": spec.name, "on": label, "profile": prof, "latency": lat,
                         "skipped": {"profile": prof_skipped, "latency": lat_skipped}})
    return rows


# ------------------------------------------------------------------------------------------------ node helper


def _main(argv: list[str] | None = None) -> int:
    """``python -m mobileone_bench.pipeline.cluster --labels cpu-x86[,more] [--print] [ray start options...]``: start this
    machine as a benchmark node (``ray start`` with the slot and label resources)."""
    import argparse
    import shutil
    import subprocess

    parser = argparse.ArgumentParser(prog="python -m mobileone_bench.pipeline.cluster",
                                     description="Start this machine as a mobileone-bench Ray node: `ray start` with "
                                                 "one benchmark slot and a resource per label. Other options "
                                                 "(--head, --address HOST:PORT, --node-ip-address...) go to "
                                                 "`ray start`.")
    parser.add_argument("--labels", required=True, help="comma-separated host labels, e.g. cpu-x86")
    parser.add_argument("--print", dest="only_print", action="store_true", help="print the command, run nothing")
    args, rest = parser.parse_known_args(argv)
    from mobileone_bench.errors import BenchError

    try:
        resources = node_resources([p for p in args.labels.split(",") if p.strip()])
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ray_bin = shutil.which("ray") or "ray"
    cmd = [ray_bin, "start", "--resources", json.dumps(resources), *rest]
    if args.only_print:
        print(" ".join(cmd[:3]) + f" '{cmd[3]}' " + " ".join(rest))
        return 0
    if shutil.which("ray") is None:
        print(f"error: Ray is not installed: {RAY_HINT}", file=sys.stderr)
        return 1
    return subprocess.call(cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
