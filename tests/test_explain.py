"""``explain`` on real profiler output (issue 30): onnxruntime's session profiler and ``torch.profiler`` run inside
the test on ``mobileone_tiny`` (64x64, one thread); the rows are read back, categorised (its squeeze-excite blocks
are gating, its depthwise and pointwise convolutions told apart), and their FLOPs sum to the model's total as
``profile`` counts it. Then the API and the command store one ``explain`` record per model and the views read it.

Nothing here asserts a time: only that times exist, are positive, and are summed and shared consistently.
"""

from __future__ import annotations

import json

import pytest

import mobileone_bench as mb
from mobileone_bench.complexity_ops import assign_flops, categorize_row, module_map, trace_modules

MODEL = "mobileone_tiny"
SIZE = (64, 64)


@pytest.fixture(scope="module")
def prepared():
    from mobileone_bench.pipeline.preparing import prepare

    return prepare(MODEL, input_size=SIZE)


@pytest.fixture(scope="module")
def modules(prepared):
    return module_map(prepared.model, prepared.input_shape)


@pytest.fixture(scope="module")
def onnx_path(prepared, tmp_path_factory):
    from mobileone_bench.pipeline.artifacts import artifact_for
    from mobileone_bench.pipeline.job import LatencyJob

    job = LatencyJob(models_dir=str(tmp_path_factory.mktemp("models")), threads=1).resolved()
    _, path = artifact_for(prepared, job, False)
    return path


def _categorised(result, modules):
    rows = [dict(r) for r in result["rows"]]
    trace_modules(rows, modules)
    for r in rows:
        r["category"] = categorize_row(r, modules)
    left = assign_flops(rows, modules)
    return rows, left


def _check(rows, left, modules, result, runs):
    assert rows and all(r["time_ms"] is not None and r["time_ms"] >= 0 for r in rows)
    assert sum(r["time_ms"] for r in rows) > 0
    assert len(result["profiled_ms"]) == runs and all(v > 0 for v in result["profiled_ms"])
    cats = {r["category"] for r in rows}
    assert {"dense-conv", "depthwise-conv", "pointwise-conv", "gating", "linear"} <= cats
    # FLOPs per operator sum to the model's total, as `profile` counts it (test_module_map_counts_what_profile_counts)
    assert sum(r["flops"] for r in rows) == modules.total
    assert left == 0


def test_module_map_counts_what_profile_counts(prepared, modules):
    from mobileone_bench.pipeline.preparing import profile

    assert modules.total == profile(prepared)["flops"]
    assert sum(modules.flops.values()) == modules.total  # a plain CNN: convolutions and the classifier
    assert modules.contexts.get("stage3.2.se") == "gating"


def test_onnxruntime_profile_is_read_categorised_and_its_flops_add_up(prepared, modules, onnx_path):
    from mobileone_bench.devices import onnxruntime as ort_runtime
    result = ort_runtime.profile_operators(artifact=onnx_path, model=prepared.model, input_shape=prepared.input_shape,
                                           precision="fp32", threads=1, options={"warmup": 1}, runs=3)
    rows, left = _categorised(result, modules)
    _check(rows, left, modules, result, 3)
    by_name = {r["name"]: r for r in rows}
    muls = [r for r in rows if r["op_type"] == "Mul"]
    assert muls and all(r["category"] == "gating" for r in muls)  # the SE multiply, found by the graph's shape
    assert all(r["module"] for r in rows if r["op_type"] == "Conv")  # every convolution traced to its module
    # onnxruntime's NCHWc layout conversions (on CPUs where it picks that layout) are data movement, but those inside
    # a squeeze-excite subgraph are the gate's
    assert all(r["category"] == (r.get("structural") or "data-movement") for r in rows
               if r["op_type"].startswith("Reorder"))
    assert by_name[rows[0]["name"]] is rows[0]


class _Tokens(__import__("torch").nn.Module):
    """A convolution, then a bias-free linear layer over its tokens (the exporter folds that layer's transposed
    weight into a constant no module owns, as in ConViT's attention), then a classifier."""

    def __init__(self) -> None:
        import torch

        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.tokens = torch.nn.Linear(8, 8, bias=False)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        t = self.tokens(self.stem(x).flatten(2).transpose(1, 2))
        return self.head(t.mean(1))


def test_a_node_reading_a_folded_weight_is_traced_by_its_exporter_scope(tmp_path):
    import torch

    from mobileone_bench.complexity_ops import module_map
    from mobileone_bench.devices import onnxruntime as ort_runtime
    from mobileone_bench.formats.onnx import _export_dynamo

    model, shape = _Tokens().eval(), (1, 3, 8, 8)
    _export_dynamo(model, torch.randn(shape), tmp_path / "model.onnx", 18, False)
    modules = module_map(model, shape)
    result = ort_runtime.profile_operators(artifact=tmp_path / "model.onnx", model=model, input_shape=shape,
                                           precision="fp32", threads=1, options={"warmup": 1}, runs=2)
    tokens = [r for r in result["rows"] if r.get("scope") == "tokens"]
    assert tokens and modules.owner(tokens[0]["params"]) is None  # its weight is a constant no module owns
    rows, left = _categorised(result, modules)
    assert [r["flops"] for r in rows if r.get("module") == "tokens"] == [modules.flops["tokens"]]
    assert left == 0 and sum(r["flops"] for r in rows) == modules.total
    unscoped = [{k: v for k, v in r.items() if k != "scope"} for r in result["rows"]]
    assert _categorised({"rows": unscoped}, modules)[1] > 0  # without the scope, its FLOPs were unmapped


def test_torch_profile_is_read_categorised_and_its_flops_add_up(prepared, modules):
    from mobileone_bench.devices import torch_cpu

    result = torch_cpu.profile_operators(artifact=None, model=prepared.model, input_shape=prepared.input_shape,
                                         precision="fp32", threads=1, options={"warmup": 1}, runs=3)
    rows, left = _categorised(result, modules)
    _check(rows, left, modules, result, 3)
    assert all(r["op_type"].startswith("aten::") for r in rows)
    se = [r for r in rows if r["module"] and ".se" in r["module"]]
    assert se and {r["category"] for r in se} == {"gating"}
    dw = [r for r in rows if r["module"] == "stage1.0.reparam_conv"]
    assert [r["category"] for r in dw] == ["depthwise-conv"]
    # the profiler's hooks are gone afterwards
    assert not any(m._forward_pre_hooks for m in prepared.model.modules())


def test_a_hand_built_block_through_torch_profiler(modules):
    """A depthwise conv, a 1x1 conv, a squeeze-excite, a residual add and a Dynamic ReLU, profiled for real."""
    import torch
    from torch import nn

    from mobileone_bench.devices._profile_torch import profile_operators
    from mobileone_bench.models.archs._layers import SqueezeExcite
    from mobileone_bench.models.archs.activations import DynamicReLU

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.pw = nn.Conv2d(16, 16, 1)
            self.se = SqueezeExcite(16, 0.25)
            self.act = DynamicReLU(16)

        def forward(self, x):
            return self.act(self.se(self.pw(self.dw(x))) + x)

    torch.manual_seed(0)
    model = Block().eval()
    mods = module_map(model, (1, 16, 8, 8))
    result = profile_operators(artifact=None, model=model, input_shape=(1, 16, 8, 8), precision="fp32", threads=1,
                               options={"warmup": 1}, runs=2)
    rows, left = _categorised(result, mods)
    cat = {}
    for r in rows:
        cat.setdefault(r["module"], set()).add(r["category"])
    assert cat["dw"] == {"depthwise-conv"} and cat["pw"] == {"pointwise-conv"}
    assert {c for m, cs in cat.items() if m and m.startswith("se") for c in cs} == {"gating"}
    assert {c for m, cs in cat.items() if m and m.startswith("act") for c in cs} == {"dynamic-activation"}
    assert "elementwise" in cat[None]  # the residual add, in the block's own forward
    assert left == 0 and sum(r["flops"] for r in rows) == mods.total


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One explain record per runtime (onnxruntime, torch), through the API."""
    root = tmp_path_factory.mktemp("explain")
    results, models_dir = root / "results", root / "models"
    frames = {rt: mb.explain(MODEL, runtime=rt, threads=1, warmup=1, runs=5, profiled_runs=3, input_size=SIZE,
                             results=results, models_dir=models_dir) for rt in ("onnxruntime", "torch")}
    return results, models_dir, frames


def test_the_api_stores_one_record_with_coverage_and_overhead(stored):
    from mobileone_bench.store.operators import KIND, operator_rows
    from mobileone_bench.store.records import ResultsStore

    results, _, frames = stored
    recs = ResultsStore(results).latest(KIND)
    assert {r["runtime"] for r in recs} == {"onnxruntime", "torch"}
    for rec in recs:
        assert rec["status"] == "ok" and rec["source"] == "profiler"
        rows = operator_rows(rec)
        assert rows and rec["n_operators"] == len(rows)
        assert rec["total_op_ms"] == pytest.approx(sum(r["time_ms"] for r in rows))
        assert rec["coverage"] == pytest.approx(rec["total_op_ms"] / rec["e2e_ms"])
        assert isinstance(rec["coverage_ok"], bool) and rec["profiler_overhead"] is not None
        assert sum(r["share"] for r in rows) == pytest.approx(1.0)
        assert sum(r["flops"] for r in rows) == rec["flops"] and rec["unmapped_flops"] == 0
        cats = json.loads(rec["categories"])
        assert sum(c["share"] for c in cats.values()) == pytest.approx(1.0)
    frame = frames["torch"]
    assert list(frame["model"]) == [MODEL] and "share_gating" in frame.columns
    assert frame.attrs["records"][0]["operators"]


def test_an_identical_profile_is_reused(stored):
    results, models_dir, frames = stored
    again = mb.explain(MODEL, runtime="torch", threads=1, warmup=1, runs=5, profiled_runs=3, input_size=SIZE,
                       results=results, models_dir=models_dir)
    assert again.attrs["reused"] == [frames["torch"].attrs["records"][0]["record_id"]]


def test_the_views_read_the_records(stored, tmp_path):
    results, _, _ = stored
    figs = mb.plot(["time-by-category", "time-vs-flop-share"], results=results, out=tmp_path)
    assert sorted(figs) == ["time-by-category_cpu-onnxruntime", "time-by-category_cpu-torch",
                            "time-vs-flop-share_cpu-onnxruntime", "time-vs-flop-share_cpu-torch"]
    svg = (tmp_path / "time-by-category_cpu-torch.svg").read_text()
    assert 'id="category-gating' in svg and 'id="category-depthwise-conv' in svg
    from mobileone_bench.errors import AnalysisError

    with pytest.raises(AnalysisError, match="ablation"):
        mb.table("section32", results=results)


def test_the_command_prints_where_the_time_goes(stored, runner, cli):
    results, models_dir, _ = stored
    out = runner.invoke(cli, ["explain", MODEL, "--runtime", "torch", "--threads", "1", "--warmup", "1", "--runs",
                              "5", "--profiled-runs", "3", "--input-size", "64", "64", "--results", str(results),
                              "--models-dir", str(models_dir), "--top", "3"])
    assert out.exit_code == 0, out.output
    assert "Where the time goes" in out.output and "top 3 operators" in out.output
    js = runner.invoke(cli, ["explain", MODEL, "--runtime", "torch", "--threads", "1", "--warmup", "1", "--runs", "5",
                             "--profiled-runs", "3", "--input-size", "64", "64", "--results", str(results),
                             "--models-dir", str(models_dir), "--format", "json"])
    assert js.exit_code == 0 and json.loads(js.stdout)[0]["kind"] == "explain"


def test_a_bad_runtime_is_one_line(runner, cli, tmp_path):
    out = runner.invoke(cli, ["explain", MODEL, "--runtime", "nope", "--results", str(tmp_path)])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "runtime 'nope' does not run on cpu" in out.output


def test_executorch_etdump_is_read_and_traced_by_order(prepared, modules, tmp_path):
    """ExecuTorch's ETDump through the devtools Inspector: XNNPACK's own operators, traced to the modules by order;
    the delegate call that holds them is not counted twice."""
    pytest.importorskip("executorch.devtools")
    from mobileone_bench.complexity_ops import trace_in_order
    from mobileone_bench.devices import executorch as et_runtime
    from mobileone_bench.pipeline.artifacts import artifact_for
    from mobileone_bench.pipeline.job import LatencyJob

    job = LatencyJob(runtime="executorch", models_dir=str(tmp_path), threads=1).resolved()
    _, path = artifact_for(prepared, job, False)
    result = et_runtime.profile_operators(artifact=path, model=prepared.model, input_shape=prepared.input_shape,
                                          precision="fp32", threads=1, options={"warmup": 1}, runs=2)
    rows = [dict(r) for r in result["rows"]]
    assert sum(r["name"] == "DELEGATE_CALL (outside its operators)" for r in rows) == 1
    assert not any(r["name"] == "DELEGATE_CALL" for r in rows)
    trace_in_order(rows, modules)
    for r in rows:
        r["category"] = categorize_row(r, modules)
    assert sum(assign_flops(rows, modules) for _ in [0]) == 0 and sum(r["flops"] for r in rows) == modules.total
    cats = {r["category"] for r in rows}
    assert {"dense-conv", "depthwise-conv", "pointwise-conv", "linear"} <= cats
    assert any(r["op_type"] == "DWConv" for r in rows)


def test_a_gpu_runtime_s_profiler_is_called_through_the_runtimes_table(monkeypatch, tmp_path, prepared):
    """torch-cuda's rows (aten operators, no module names: the shape of devices/torch_cuda.profile_operators'
    result) are traced to the modules by order, categorised and given their FLOPs; no GPU needed."""
    from types import SimpleNamespace

    from mobileone_bench import devices
    from mobileone_bench.models import registry
    from mobileone_bench.pipeline.explain import explain_model
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.operators import operator_rows
    from mobileone_bench.store.records import ResultsStore

    torch_rows = [r for r in mb.explain(MODEL, runtime="torch", threads=1, warmup=0, runs=2, profiled_runs=1,
                                        input_size=SIZE, results=tmp_path / "cpu", as_frame=False)
                  .attrs["records"][0]["operators"]]
    calls = []

    def profile_operators(**kw):
        calls.append(kw)
        return {"rows": [{"name": r["name"].split("/")[-1], "op_type": r["op_type"], "time_ms": 0.01,
                          "precision": "fp16"} for r in torch_rows], "profiled_ms": [1.0], "notes": ["fake"]}

    class Runner:
        def time(self, warmup, runs):
            return [1.0] * runs

        def settings(self):
            return {"clock": "cuda-events"}

        def close(self):
            pass

    fake = SimpleNamespace(profile_operators=profile_operators, make_runner=lambda *a, **k: Runner())
    monkeypatch.setattr(devices, "load_runtime", lambda spec: fake)
    job = LatencyJob(device="gpu", runtime="torch-cuda", precision="fp16", warmup=0, runs=3,
                     input_size=SIZE).resolved()
    rec, reused = explain_model(registry.resolve(MODEL), job, ResultsStore(tmp_path / "gpu"), runs=2,
                                prepared=prepared)
    assert rec["status"] == "ok" and not reused and calls[0]["runs"] == 2 and calls[0]["precision"] == "fp16"
    rows = operator_rows(rec)
    assert [r["category"] for r in rows] == [r["category"] for r in torch_rows]
    assert sum(r["flops"] for r in rows) == rec["flops"] and rec["coverage"] == pytest.approx(
        0.01 * len(rows) / 1.0)


def test_the_profilers_c_plus_plus_logger_prints_nothing_between_the_tools_lines():
    """Kineto (torch.profiler's C++ logger) prints ``USDT: ... profiler_start`` (and, without a GPU, a GPU-count
    ERROR line) to stderr at its default level; the torch profiler raises that level before its first profile, and a
    level the user set is kept. Run in a child process: the level is read once per process."""
    import os
    import subprocess
    import sys

    code = ("import torch\n"
            "from mobileone_bench.devices._profile_torch import profile_operators\n"
            "m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())\n"
            "out = profile_operators(artifact=None, model=m, input_shape=(1, 3, 16, 16), precision='fp32', threads=1,"
            " options={'warmup': 1}, runs=2)\n"
            "print(len(out['rows']))\n")
    env = {k: v for k, v in os.environ.items() if k != "KINETO_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert int(quiet.stdout.strip()) >= 2 and "USDT" not in quiet.stderr and "profiler_start" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**env, "KINETO_LOG_LEVEL": "3"})
    assert loud.returncode == 0 and "profiler_start" in loud.stderr  # the user's own level wins
