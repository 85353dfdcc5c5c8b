"""The torch-cuda runtime (the GPU's other runtime, compared with TensorRT): the caller's model is never modified, TF32
is the job's choice and is recorded (and restored), and ``profile_operators`` reads torch.profiler's real event
objects (``FunctionEvent`` with kernels appended, as the profiler builds them from a CUDA trace)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.profiler_util import DeviceType, EventList, FunctionEvent

from mobileone_bench.devices import torch_cuda
from tests.test_tensorrt_fake import FakeCuda


class _Recorder(torch.nn.Module):
    """A tiny model whose ``.to`` is recorded (there is no GPU here to move it to)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.moved = []

    def to(self, *args, **kwargs):
        self.moved.append(args)
        return self

    def forward(self, x):
        return self.conv(x).mean((2, 3))


@pytest.fixture
def gpu(monkeypatch):
    world = FakeCuda()
    fake_torch = world.torch()
    monkeypatch.setattr(torch_cuda, "require_cuda", lambda: fake_torch)

    def time_cuda(step, warmup, runs, stream):
        with world.stream(stream):
            for _ in range(warmup + runs):
                step()
        return [1.0] * runs

    monkeypatch.setattr(torch_cuda, "time_cuda", time_cuda)
    state = torch_cuda.tf32_state(torch)
    yield world
    torch_cuda._set_tf32(torch, state)


def test_the_callers_model_is_copied_not_moved(gpu):
    model = _Recorder()
    runner = torch_cuda.TorchCudaRunner(model, (1, 3, 8, 8), "fp32", cuda_graphs=False)
    assert model.moved == [] and runner.model is not model and runner.model.moved == [("cuda", torch.float32)]
    assert runner.stream.waited == [0]  # the weights' copy, on the caller's stream, comes first
    runner.close()


@pytest.mark.parametrize("tf32", [False, True])
def test_tf32_is_the_jobs_choice_recorded_and_restored(gpu, tf32):
    torch_cuda._set_tf32(torch, {"matmul": not tf32, "cudnn": not tf32})
    runner = torch_cuda.make_runner("torch-cuda", artifact=None, model=_Recorder(), input_shape=(1, 3, 8, 8),
                                    precision="fp32", threads=None, options={"cuda_graphs": False, "tf32": tf32})
    assert runner.settings()["tf32"] == {"matmul": tf32, "cudnn": tf32}
    assert torch_cuda.tf32_state(torch) == {"matmul": tf32, "cudnn": tf32}
    runner.close()
    assert torch_cuda.tf32_state(torch) == {"matmul": not tf32, "cudnn": not tf32}


def test_the_default_replays_a_cuda_graph(gpu):
    runner = torch_cuda.make_runner("torch-cuda", artifact=None, model=_Recorder(), input_shape=(1, 3, 8, 8),
                                    precision="fp32", threads=None, options={})
    assert runner.graph is not None and runner.settings()["launch"] == "cuda-graph"
    assert runner.time(1, 2) == [1.0, 1.0] and runner.graph.replays == 3
    assert runner.settings()["tf32"] == {"matmul": False, "cudnn": False}


def _event(i, name, start, end, parent=None, kernel_us=()):
    """A FunctionEvent as torch.profiler makes one for a CPU operator, with the CUDA kernels it launched."""
    e = FunctionEvent(id=i, name=name, thread=1, start_us=start, end_us=end, use_device="cuda",
                      device_type=DeviceType.CPU)
    for k, us in enumerate(kernel_us):
        e.append_kernel(f"{name}_kernel{k}", 0, us)
    if parent is not None:
        e.set_cpu_parent(parent)
        parent.append_cpu_child(e)
    return e


def _profiler(runs_us):
    """A stand-in for torch.profiler.profile yielding, per run, the events of a conv -> relu -> linear pass."""
    made = []

    class Profile:
        def __init__(self, activities):
            assert torch.profiler.ProfilerActivity.CUDA in activities
            self.scale = runs_us[len(made)]
            made.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def events(self):
            s = self.scale
            conv = _event(1, "aten::conv2d", 0, 10)
            _event(2, "aten::convolution", 1, 9, parent=conv, kernel_us=(100 * s, 20 * s))
            relu = _event(3, "aten::relu", 11, 12, kernel_us=(10 * s,))
            conv2 = _event(4, "aten::conv2d", 13, 20, kernel_us=(50 * s,))
            cuda_kernel = FunctionEvent(id=9, name="implicit_gemm", thread=1, start_us=1, end_us=2,
                                        use_device="cuda", device_type=DeviceType.CUDA)
            return EventList([relu, conv2, conv, conv.cpu_children[0], cuda_kernel])

    return Profile


def test_profile_operators_rows_from_torch_profiler_events(gpu, monkeypatch):
    monkeypatch.setattr(torch.profiler, "profile", _profiler([1, 3, 2]))
    monkeypatch.setattr(torch_cuda, "_gpu_model", lambda t, model, precision: (model, torch.float32))
    out = torch_cuda.profile_operators(artifact=None, model=_Recorder(), input_shape=(1, 3, 8, 8), precision="fp32",
                                       threads=None, options={}, runs=3)
    assert [(r["name"], r["op_type"]) for r in out["rows"]] == [
        ("aten::conv2d#1", "aten::conv2d"), ("aten::relu#1", "aten::relu"), ("aten::conv2d#2", "aten::conv2d")]
    assert [r["time_ms"] for r in out["rows"]] == pytest.approx([0.24, 0.02, 0.1])  # medians (scale 2), in ms
    assert out["profiled_ms"] == pytest.approx([0.18, 0.54, 0.36]) and out["notes"]
    assert {r["precision"] for r in out["rows"]} == {"fp32"}


def test_profile_operators_on_a_real_cpu_trace_has_the_structure_it_reads():
    """The real profiler's events (CPU here) have what profile_operators reads: parent links, call order, device
    time."""
    from torch.profiler import ProfilerActivity, profile

    model = _Recorder().eval()
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(torch.randn(1, 3, 8, 8))
    top = torch_cuda._top_level(prof.events())
    assert top and all(e.cpu_parent is None for e in top)
    assert any(e.name == "aten::conv2d" for e in top)
    assert all(isinstance(e.device_time_total, (int, float)) for e in top)
    assert [e.time_range.start for e in top] == sorted(e.time_range.start for e in top)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_real_torch_cuda_profile_and_timing():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval()
    runner = torch_cuda.make_runner("torch-cuda", artifact=None, model=model, input_shape=(1, 3, 32, 32),
                                    precision="fp16", threads=None, options={})
    assert len(runner.time(3, 10)) == 10 and next(model.parameters()).device.type == "cpu"
    runner.close()
    out = torch_cuda.profile_operators(artifact=None, model=model, input_shape=(1, 3, 32, 32), precision="fp16",
                                       threads=None, options={}, runs=3)
    assert out["rows"] and sum(r["time_ms"] for r in out["rows"]) > 0
