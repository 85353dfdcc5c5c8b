"""``run --cluster``: the driver logic against a fake executor (no Ray), then Ray itself: one node on loopback, and
two nodes in network namespaces of their own with one of them killed mid-sweep.

The Ray tests talk only to 127.0.0.1 or to the namespaces they create; they skip with a reason where Ray is not
installed or ``ip netns add`` is not permitted, and their finalizers kill every process they started (by session id)
and delete the namespaces, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from mobileone_bench.pipeline import cluster
from mobileone_bench.errors import UsageError
from mobileone_bench.store.records import ResultsStore

MODELS = ["mobileone_tiny", "mobileone_mu0"]  # what the Ray nodes build (they know only the tool's own models)
FAKE = ["clustertest-a", "clustertest-b"]  # what the fake executor builds, registered here: cheaper still
TINY = dict(runtime="torch", input_size=(32, 32), warmup=1, runs=4, threads=1)


@pytest.fixture(autouse=True)
def _small_models():
    """Two test-only models of a few convolutions, and one torch thread (BN calibration with two threads crawls
    while another process keeps a core busy)."""
    import torch
    from torch import nn

    from mobileone_bench.models import registry

    def net(width: int):
        def build(num_classes: int = 10) -> nn.Module:
            return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        return build

    for name, width in zip(FAKE, (4, 8)):
        registry.register_model(net(width), name=name, input_size=32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for name in FAKE:
        registry._OWN.pop(registry._key(name), None)


def _job(**kw):
    from dataclasses import replace

    from mobileone_bench.api import latency_job

    job = latency_job("cpu", TINY["runtime"], warmup=TINY["warmup"], runs=TINY["runs"], threads=TINY["threads"],
                      input_size=TINY["input_size"], check_available=False)
    return replace(job, **kw)


def _specs(names=FAKE):
    from mobileone_bench.models import registry

    return [registry.resolve(n) for n in names]


class FakeExecutor:
    """Runs each job here, with the real node-side functions, one per ``wait``; ``lose`` makes chosen attempts of a
    model's measurement come back as a lost node, ``labels_after`` changes the live labels after N waits, and
    ``interrupt_after`` raises KeyboardInterrupt (a killed driver) after N finished jobs."""

    def __init__(self, labels=None, lose=None, labels_after=None, interrupt_after=None):
        self.live = dict(labels or {"cpu-test": 1})
        self.lose = dict(lose or {})  # model -> how many attempts are lost
        self.labels_after = labels_after
        self.interrupt_after = interrupt_after
        self.queue: dict[object, tuple] = {}
        self.submitted: list[tuple] = []
        self.cancelled: list[tuple] = []
        self.waits = 0
        self.finished = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def labels(self):
        return dict(self.live)

    def submit_profile(self, model, input_size):
        handle = object()
        self.queue[handle] = ("profile", model, input_size)
        self.submitted.append(("profile", model))
        return handle

    def submit_measure(self, model, label, job):
        handle = object()
        self.queue[handle] = ("latency", model, label, job)
        self.submitted.append(("latency", model, label))
        return handle

    def wait(self, handles, timeout):
        self.waits += 1
        if self.labels_after and self.waits > self.labels_after[0]:
            self.live = dict(self.labels_after[1])
        if self.interrupt_after is not None and self.finished >= self.interrupt_after:
            raise KeyboardInterrupt
        for handle in handles:
            what = self.queue[handle]
            if what[0] == "latency" and not self.live.get(what[2]):
                continue  # nothing can run it: it waits, as Ray's would
            del self.queue[handle]
            self.finished += 1
            if what[0] == "profile":
                return [(handle, _on_fake_node(cluster.profile_on_node(what[1], what[2])))]
            if self.lose.get(what[1], 0) > 0:
                self.lose[what[1]] -= 1
                return [(handle, cluster.Lost("NodeDiedError: the node running the task died"))]
            return [(handle, _on_fake_node(cluster.measure_on_node(what[1], what[3]), what[2]))]
        return []

    def cancel(self, handle):
        self.cancelled.append(self.queue.pop(handle))


def _on_fake_node(payload, label="any"):
    payload["node"] = {"hostname": "fake", "node_id": f"fake-{label}", "node_ip": "127.0.0.1"}
    return payload


def test_node_resources_and_the_node_helper(capsys):
    assert cluster.node_resources(["cpu-x86", "avx512"]) == {
        "mobileone_bench_slot": 1, "mobileone_bench_label:cpu-x86": 1, "mobileone_bench_label:avx512": 1}
    with pytest.raises(UsageError, match="bad host label"):
        cluster.node_resources(["a b"])
    assert cluster._main(["--labels", "cpu-x86", "--print", "--address", "10.0.0.1:6379"]) == 0
    out = capsys.readouterr().out
    assert "start --resources" in out and '"mobileone_bench_label:cpu-x86": 1' in out and "--address 10.0.0.1" in out


CALLED: list[tuple[str, dict]] = []


def record_call(model, node):
    """A node hook for the test below (``tests.test_cluster:record_call``)."""
    CALLED.append((model, node))


def test_a_node_hook_runs_before_each_measurement_and_a_bad_one_is_one_line(tmp_path, monkeypatch):
    CALLED.clear()
    monkeypatch.setenv(cluster.NODE_HOOK_ENV, "tests.test_cluster:record_call")
    rows = cluster.drive(_specs(), ["cpu-test"], _job(threads=None), ResultsStore(tmp_path / "a"), FakeExecutor())
    assert [r["latency"]["status"] for r in rows] == ["ok", "ok"]
    assert sorted(model for model, _ in CALLED) == sorted(FAKE)
    assert all(set(node) == {"hostname", "node_id", "node_ip"} for _, node in CALLED)
    monkeypatch.setenv(cluster.NODE_HOOK_ENV, "tests.test_cluster:no_such_hook")
    with pytest.raises(UsageError, match="no function no_such_hook in module tests.test_cluster") as err:
        cluster.measure_on_node(FAKE[0], _job(threads=None))
    assert "\n" not in str(err.value)


def test_ray_errors_are_classified():
    NodeDiedError = type("NodeDiedError", (Exception,), {})
    WorkerCrashedError = type("WorkerCrashedError", (RuntimeError,), {})
    assert isinstance(cluster._classify(NodeDiedError("gone")), cluster.Lost)
    assert isinstance(cluster._classify(WorkerCrashedError("crash")), cluster.Lost)
    inner = ValueError("in the task")
    task_error = type("RayTaskError", (Exception,), {})("wrapped")
    task_error.cause = inner
    assert cluster._classify(task_error) is inner


def test_drive_stores_records_as_they_come_back_and_a_rerun_sends_nothing(tmp_path):
    store = ResultsStore(tmp_path)
    fake = FakeExecutor()
    rows = cluster.drive(_specs(), ["cpu-test"], _job(threads=None), store, fake)
    assert [(r["model"], r["on"], r["latency"]["status"]) for r in rows] == [
        ("clustertest-a", "cpu-test", "ok"), ("clustertest-b", "cpu-test", "ok")]
    assert sorted(fake.submitted) == sorted([("profile", m) for m in FAKE] +
                                            [("latency", m, "cpu-test") for m in FAKE])
    lat = store.records("latency")
    assert len(lat) == 2 and len(store.records("profile")) == 2
    for rec in lat:
        assert rec["cluster_on"] == "cpu-test" and rec["cluster_node"] == "fake-cpu-test"
        assert rec["cluster_key"] == cluster.cluster_key(_specs([rec["model"]])[0], _job(threads=None), "cpu-test")
        assert len(store.samples(rec)) == 4
        assert rec["machine"] == rec["env_machine"]  # measured by the process that ran the job
        assert rec["threads"] >= 1  # the node's default, filled in there
    again = FakeExecutor()
    rows = cluster.drive(_specs(), ["cpu-test"], _job(threads=None), store, again)
    assert again.submitted == []
    assert all(r["skipped"] == {"profile": True, "latency": True} for r in rows)
    assert len(store.records()) == 4


def test_a_killed_driver_loses_nothing_finished_and_the_rerun_sends_only_the_rest(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cluster.drive(_specs(), ["cpu-test"], _job(), store, FakeExecutor(interrupt_after=3))
    assert len(store.records()) == 3  # 2 profiles, 1 measurement, each appended when it came back
    rerun = FakeExecutor()
    cluster.drive(_specs(), ["cpu-test"], _job(), store, rerun)
    assert rerun.submitted == [("latency", "clustertest-b", "cpu-test")]
    assert [r["status"] for r in store.records("latency")] == ["ok", "ok"]


def test_a_lost_node_is_a_failure_record_and_the_others_go_on(tmp_path):
    store = ResultsStore(tmp_path)
    rows = cluster.drive(_specs(), ["cpu-test"], _job(), store, FakeExecutor(lose={"clustertest-b": 1}))
    by = {r["model"]: r["latency"] for r in rows}
    assert by["clustertest-a"]["status"] == "ok"
    assert by["clustertest-b"]["status"] == "failed" and "node lost during the measurement" in by["clustertest-b"][
        "error"] and "NodeDiedError" in by["clustertest-b"]["error"]
    failed = store.records("latency")[-1] if store.records("latency")[-1]["status"] == "failed" else \
        store.records("latency")[0]
    assert failed["cluster_key"] == cluster.cluster_key(_specs(["clustertest-b"])[0], _job(), "cpu-test")
    rerun = FakeExecutor()  # the failure is not a stored measurement: the rerun measures it
    rows = cluster.drive(_specs(), ["cpu-test"], _job(), store, rerun)
    assert rerun.submitted == [("latency", "clustertest-b", "cpu-test")]
    assert all(r["latency"]["status"] == "ok" for r in rows)


def test_retries_send_a_lost_job_again_and_record_each_lost_attempt(tmp_path):
    store = ResultsStore(tmp_path)
    fake = FakeExecutor(lose={"clustertest-b": 1})
    rows = cluster.drive(_specs(), ["cpu-test"], _job(), store, fake, retries=1)
    assert all(r["latency"]["status"] == "ok" for r in rows)
    assert fake.submitted.count(("latency", "clustertest-b", "cpu-test")) == 2
    mu0 = [r for r in store.records("latency") if r["model"] == "clustertest-b"]
    assert [r["status"] for r in mu0] == ["failed", "ok"]
    assert "sent again (attempt 2 of 2)" in mu0[0]["error"] and mu0[1]["cluster_attempt"] == 2
    # out of retries: the last loss is the row's record
    store2 = ResultsStore(tmp_path / "b")
    rows = cluster.drive(_specs(["clustertest-a"]), ["cpu-test"], _job(), store2,
                         FakeExecutor(lose={"clustertest-a": 3}), retries=1)
    assert rows[0]["latency"]["status"] == "failed" and rows[0]["latency"]["cluster_attempt"] == 2
    assert [r["status"] for r in store2.records("latency")] == ["failed", "failed"]


def test_a_label_whose_nodes_are_gone_fails_its_pending_jobs_instead_of_waiting(tmp_path):
    store = ResultsStore(tmp_path)
    fake = FakeExecutor(labels={"cpu-test": 1, "gpu-test": 1}, labels_after=(1, {"cpu-test": 1}))
    rows = cluster.drive(_specs(["clustertest-a"]), ["gpu-test", "cpu-test"], _job(), store, fake, poll_s=0.01)
    by = {r["on"]: r["latency"] for r in rows}
    assert by["cpu-test"]["status"] == "ok"
    assert by["gpu-test"]["status"] == "failed" and "no node with the label 'gpu-test' is left" in \
        by["gpu-test"]["error"]
    assert fake.cancelled and fake.cancelled[0][2] == "gpu-test"


def test_bad_labels_are_one_line_before_anything_is_sent(tmp_path):
    fake = FakeExecutor()
    with pytest.raises(UsageError, match=r"no node in the cluster has the label 'gpu-h100' \(labels there: "
                                         r"cpu-test\)"):
        cluster.drive(_specs(), ["gpu-h100"], _job(), ResultsStore(tmp_path), fake)
    with pytest.raises(UsageError, match="at least one --on"):
        cluster.drive(_specs(), [], _job(), ResultsStore(tmp_path), fake)
    assert fake.submitted == [] and not (tmp_path / "records.jsonl").exists()


def test_cli_cluster_options_are_checked_in_one_line(runner, cli, tmp_path, monkeypatch):
    base = ["run", "clustertest-a", "--results", str(tmp_path)]
    result = runner.invoke(cli, base + ["--on", "cpu-x86"])
    assert result.exit_code == 2 and "--on and --retries need --cluster" in result.output
    result = runner.invoke(cli, base + ["--cluster", "auto"])
    assert result.exit_code == 2 and "at least one --on LABEL" in result.output
    result = runner.invoke(cli, base + ["--cluster", "auto", "--on", "x", "--retries", "-1"])
    assert result.exit_code == 2
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    result = runner.invoke(cli, base + ["--cluster", "auto", "--on", "cpu-x86"])
    assert result.exit_code == 1
    assert "pip install 'mobileone-bench[cluster]'" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "records.jsonl").exists()


def test_an_address_where_nothing_listens_is_one_line_at_once():
    from mobileone_bench.errors import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError, match=r"no Ray cluster at 127\.0\.0\.1:\d+: "):
        cluster._check_reachable(f"127.0.0.1:{_free_port()}", timeout_s=2)  # a loopback port nobody holds
    with pytest.raises(UsageError, match="give HOST:PORT"):
        cluster._check_reachable("nonsense")
    cluster._check_reachable("auto")  # Ray finds that one itself


def test_run_on_a_fake_cluster_gives_rows_per_label(tmp_path, monkeypatch):
    from mobileone_bench import api

    fake = FakeExecutor(labels={"cpu-a": 1, "cpu-b": 1})
    monkeypatch.setattr(cluster, "connect", lambda address: fake)
    done = api.run(["clustertest-a"], results=tmp_path, cluster="auto", on=["cpu-a", "cpu-b"],
                   runtime="torch", input_size=(32, 32), warmup=1, runs=4, as_frame=False)
    assert [(s["model"], s["on"], s["status"].split(" ")[0]) for s in done["models"]] == [
        ("clustertest-a", "cpu-a", "ok"), ("clustertest-a", "cpu-b", "ok")]  # "ok (noisy)" on a busy machine
    assert done.attrs["job"].threads is None  # each node's own default
    assert sorted(r["cluster_on"] for r in ResultsStore(tmp_path).records("latency")) == ["cpu-a", "cpu-b"]


# ------------------------------------------------------------------------------------------------ real Ray

RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",  # no token written into the home folder; these clusters are private to the test
    "RAY_USAGE_STATS_ENABLED": "0",
    # a killed node is noticed in about a second, not Ray's default half a minute
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "2",
    "RAY_health_check_initial_delay_ms": "0",
    "MOBILEONE_BENCH_NO_COLOR": "1",
}


def _ray_bin() -> str:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'mobileone-bench[cluster]')")
    path = Path(sys.executable).with_name("ray")
    return str(path) if path.exists() else (shutil.which("ray") or pytest.skip("no `ray` command"))


def _session_pids(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


class Node:
    """One ``ray start --block`` started in a session of its own; :meth:`kill` SIGKILLs every process of that
    session (the node and the workers it started), the way a machine dies."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str], netns: str | None = None):
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.log = log
        head = ["--include-dashboard=false"] if "--head" in args else []
        self.proc = subprocess.Popen(prefix + [_ray_bin(), "start", *args, "--block", "--disable-usage-stats", *head],
                                     stdout=open(log, "wb"), stderr=subprocess.STDOUT, env={**os.environ, **env},
                                     start_new_session=True)

    def wait_started(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "Ray runtime started" in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"ray start did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        for _ in range(50):
            pids = _session_pids(self.proc.pid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _resources(label: str) -> str:
    return json.dumps(cluster.node_resources([label]))


def _driver(args: list[str], env: dict[str, str], netns: str | None = None, **kw) -> subprocess.Popen:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.Popen(prefix + [sys.executable, "-m", "mobileone_bench", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _run_args(address: str, results: Path, *extra: str) -> list[str]:
    return ["run", *MODELS, "--cluster", address, "--on", "cpu-test", "--runtime", "torch", "--input-size", "32",
            "32", "--warmup", "1", "--runs", "4", "--threads", "1", "--results", str(results), "--format", "json",
            *extra]


def test_ray_on_loopback_measures_two_models_on_one_node(tmp_path):
    """One node bound to 127.0.0.1, the real CLI as its driver in another process: both models measured there,
    one at a time (one slot), the records in the driver's store; a rerun sends nothing."""
    _ray_bin()
    tmp = Path(tempfile.mkdtemp(prefix="mbray-"))  # short: Ray's socket paths must fit in 107 bytes
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: Ray's helpers (the runtime-env agent...) bind 127.0.0.1 too, not the
    # machine's own address (it also forbids a second node: right for this one-node cluster)
    env = dict(RAY_ENV, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", MOBILEONE_BENCH_NODE_MODELS=str(tmp / "models"))
    address = f"127.0.0.1:{_free_port()}"
    node = Node(["--head", "--node-ip-address=127.0.0.1", f"--port={address.split(':')[1]}",
                 f"--resources={_resources('cpu-test')}", "--num-cpus=2", f"--temp-dir={tmp}/ray"], tmp / "head.log",
                env)
    try:
        node.wait_started()
        results = tmp_path / "results"
        proc = _driver(_run_args(address, results), env)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(out)["models"]
        assert [(s["model"], s["on"], s["status"].split(" ")[0]) for s in summary] == [
            (m, "cpu-test", "ok") for m in MODELS]
        lat = ResultsStore(results).records("latency")
        assert len(lat) == 2 and {r["cluster_node_ip"] for r in lat} == {"127.0.0.1"}
        assert len({r["cluster_node"] for r in lat}) == 1 and all(r["cluster_attempt"] == 1 for r in lat)
        assert all(len(ResultsStore(results).samples(r)) == 4 for r in lat)
        assert len(ResultsStore(results).records("profile")) == 2
        proc = _driver(_run_args(address, results), env)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert all(s["status"].startswith("ok (stored)") for s in json.loads(out)["models"])
        assert len(ResultsStore(results).records()) == 4
    finally:
        node.kill()
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------- two nodes in namespaces


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair (10.213.77.1 and .2): test hosts of this test's own. Skips
    where ``ip netns add`` is not permitted; deletes both namespaces (and so the veth pair) afterwards."""
    _ray_bin()
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2)")
    tag = uuid.uuid4().hex[:6]
    a, b = f"mbA{tag}", f"mbB{tag}"
    made: list[str] = []
    try:
        for ns in (a, b):
            res = _ip("netns", "add", ns)
            if res.returncode != 0:
                pytest.skip(f"`ip netns add` is not permitted here: {res.stderr.strip()}")
            made.append(ns)
        steps = [("link", "add", f"mbva{tag}", "type", "veth", "peer", "name", f"mbvb{tag}"),
                 ("link", "set", f"mbva{tag}", "netns", a), ("link", "set", f"mbvb{tag}", "netns", b),
                 ("-n", a, "addr", "add", "10.213.77.1/24", "dev", f"mbva{tag}"),
                 ("-n", b, "addr", "add", "10.213.77.2/24", "dev", f"mbvb{tag}"),
                 ("-n", a, "link", "set", f"mbva{tag}", "up"), ("-n", b, "link", "set", f"mbvb{tag}", "up"),
                 ("-n", a, "link", "set", "lo", "up"), ("-n", b, "link", "set", "lo", "up")]
        for step in steps:
            res = _ip(*step)
            if res.returncode != 0:
                pytest.skip(f"cannot set up the test network (ip {' '.join(step)}): {res.stderr.strip()}")
        yield {"a": a, "b": b, "ip_a": "10.213.77.1", "ip_b": "10.213.77.2"}
    finally:
        _ip("link", "del", f"mbva{tag}")  # if it never moved into a namespace
        for ns in made:
            _ip("netns", "del", ns)


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_ray_two_nodes_one_killed_mid_sweep(two_hosts, tmp_path):
    """Head (and driver) in one namespace, a second node in the other, both labelled cpu-test with one slot each:
    the two measurements run one per node; the second node is killed while it measures.

    1. ``--retries 0``: the killed node's model gets a failure record, the other model's record is stored;
    2. rerun with the node still dead: the stored model is skipped, the failed one measured on the live node;
    3. the node back, ``--force --retries 1``, killed again: its job is sent again and measured on the other node;
       the lost attempt is a failure record.
    """
    tmp = Path(tempfile.mkdtemp(prefix="mbray-"))
    marks = tmp / "marks"
    marks.mkdir()
    gate_path = tmp / "gate.sock"  # tests/cluster_hook.GATE
    gate: list = []
    # the nodes call the test's own hook before each measurement (tests/cluster_hook.py): mark, then hold while
    # the test keeps the gate socket open

    def close_gate() -> None:  # every held measurement goes on; later ones are not held
        while gate:
            gate.pop().close()
        gate_path.unlink(missing_ok=True)

    env = dict(RAY_ENV, MOBILEONE_BENCH_NODE_MODELS=str(tmp / "models"), MOBILEONE_BENCH_TEST_MARKS=str(marks),
               MOBILEONE_BENCH_NODE_HOOK="tests.cluster_hook:hold",
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH")])))
    ip_a, ip_b = two_hosts["ip_a"], two_hosts["ip_b"]
    address = f"{ip_a}:6379"
    results = tmp_path / "results"
    store = ResultsStore(results)
    common = [f"--resources={_resources('cpu-test')}", "--num-cpus=1"]
    head = Node(["--head", f"--node-ip-address={ip_a}", "--port=6379", *common, f"--temp-dir={tmp}/ray-a"],
                tmp / "head.log", env, netns=two_hosts["a"])
    nodes = [head]

    def start_b() -> Node:
        node = Node([f"--address={address}", f"--node-ip-address={ip_b}", *common, f"--temp-dir={tmp}/ray-b"],
                    tmp / f"b{len(nodes)}.log", env, netns=two_hosts["b"])
        nodes.append(node)
        node.wait_started()
        return node

    def sweep_killing_b(node_b: Node, *extra: str) -> tuple[int, dict]:
        for mark in marks.iterdir():
            mark.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(gate_path))
        listener.listen(16)
        gate.append(listener)
        before = len(store.records("profile"))
        proc = _driver(_run_args(address, results, *extra), env, netns=two_hosts["a"])
        try:
            _wait_for(lambda: any(m.name.endswith(f"@{ip_b}") for m in marks.iterdir()) or proc.poll() is not None,
                      90, "a measurement on the second node")
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            # kill it mid-measurement, once the packed profiles are back
            _wait_for(lambda: len(store.records("profile")) >= before + 2 or proc.poll() is not None, 60,
                      "the profiles")
            on_b = next(m.name.split("@")[0] for m in marks.iterdir() if m.name.endswith(f"@{ip_b}"))
            node_b.kill()
            close_gate()  # the other node's measurement goes on
            out, err = proc.communicate(timeout=120)
        finally:
            close_gate()
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, {"out": json.loads(out) if out.strip() else None, "err": err, "on_b": on_b}

    try:
        head.wait_started()
        node_b = start_b()
        # 1. no retries: a failure record for the model on the killed node, the other stored
        code, res = sweep_killing_b(node_b)
        assert code == 1, res["err"][-3000:]
        status = {s["model"]: s["status"] for s in res["out"]["models"]}
        on_b = res["on_b"]
        other = next(m for m in MODELS if m != on_b)
        assert status[other].startswith("ok") and status[on_b].startswith("failed: node lost during the measurement")
        lat = store.records("latency")
        assert [(r["model"], r["status"]) for r in lat if r["model"] == on_b] == [(on_b, "failed")]
        ok = [r for r in lat if r["status"] == "ok"]
        assert [(r["model"], r["cluster_node_ip"]) for r in ok] == [(other, ip_a)]
        assert len(store.samples(ok[0])) == 4
        # 2. rerun, the node still dead: the stored one skipped, the failed one measured on the head's node
        proc = _driver(_run_args(address, results), env, netns=two_hosts["a"])
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        status = {s["model"]: s["status"] for s in json.loads(out)["models"]}
        assert status[other].startswith("ok (stored)") and status[on_b].startswith("ok") and \
            "stored" not in status[on_b]
        assert [r["cluster_node_ip"] for r in store.records("latency") if r["model"] == on_b and
                r["status"] == "ok"] == [ip_a]
        # 3. the node back; --retries 1: the job on the killed node is sent again and measured on the other
        node_b = start_b()
        n_before = len(store.records("latency"))
        code, res = sweep_killing_b(node_b, "--force", "--retries", "1")
        assert code == 0, res["err"][-3000:]
        assert all(s["status"].startswith("ok") for s in res["out"]["models"])
        new = store.records("latency")[n_before:]
        lost = [r for r in new if r["status"] == "failed"]
        assert len(lost) == 1 and lost[0]["model"] == res["on_b"] and "sent again (attempt 2 of 2)" in lost[0]["error"]
        again = [r for r in new if r["model"] == res["on_b"] and r["status"] == "ok"]
        assert len(again) == 1 and again[0]["cluster_attempt"] == 2 and again[0]["cluster_node_ip"] == ip_a
    finally:
        for node in reversed(nodes):
            node.kill()
        shutil.rmtree(tmp, ignore_errors=True)
