"""A strict fake of the ``tensorrt`` module, built from the committed API lists (``tests/fixtures/tensorrt/*.json``,
written by ``tools/tensorrt_api_surface.py`` from NVIDIA's real bindings wheels), and a fake CUDA side of torch.

Strict: a class, method, property or enum member the list lacks raises ``AttributeError``, as the real module would; a
call whose arguments fit none of the recorded signatures raises ``TypeError``; a listed method without a behaviour
here raises ``NotImplementedError`` (a test that reaches it must say what it does). The behaviours model one small
GPU: a network with one input and one output, an engine whose layers the inspector lists with the real JSON format.

This module also tests the fake itself (strictness, and that each list is the real wheel's).
"""

from __future__ import annotations

import contextlib
import json
import re
import types
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "tensorrt"
VERSIONS = sorted((p.stem.split("-", 1)[1] for p in FIXTURES.glob("tensorrt-*.json")),
                  key=lambda v: tuple(int(x) for x in v.split(".")))


def surface(version: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"tensorrt-{version}.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ signatures

def _split_params(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _params(signature: str) -> list[tuple[str, bool]] | None:
    """``[(name, has_default)]`` after ``self``, or ``None`` for ``(*args, **kwargs)``."""
    m = re.match(r"^(?:\d+\. )?\w+\((.*)\)(?: -> .+)?$", signature)
    inner = m.group(1) if m else ""
    params = _split_params(inner)
    if any(p.startswith("*") for p in params):
        return None
    out = []
    for p in params:
        name = p.split(":")[0].split("=")[0].strip()
        out.append((name, "=" in p))
    return out[1:] if out and out[0][0] == "self" else out


def _fits(signatures: list[str], args: tuple, kwargs: dict) -> bool:
    if not signatures:
        return True
    for sig in signatures:
        params = _params(sig)
        if params is None:
            continue
        names = [n for n, _ in params]
        if len(args) > len(params) or any(k not in names[len(args):] for k in kwargs):
            continue
        given = set(names[:len(args)]) | set(kwargs)
        if all(n in given or default for n, default in params):
            return True
    return all(_params(s) is None for s in signatures)


# ------------------------------------------------------------------------------------------------ enums

class EnumMember:
    """A pybind11 enum value: ``name``, ``value``, ``int()``, equal to itself only."""

    def __init__(self, enum: str, name: str, value: int):
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    __index__ = __int__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnumMember) and (other.enum, other.value) == (self.enum, self.value)

    def __hash__(self) -> int:
        return hash((self.enum, self.value))

    def __repr__(self) -> str:
        return f"{self.enum}.{self.name}"


def _enum_class(name: str, members: dict[str, int]) -> type:
    values = {m: EnumMember(name, m, v) for m, v in members.items()}
    return type(name, (), {**values, "__members__": dict(values)})


# ------------------------------------------------------------------------------------------------ the fake module

class FakeTensorRT(types.ModuleType):
    """The fake module of one TensorRT version; ``calls`` logs every method call as ``"Class.method"``."""

    def __init__(self, version: str, behaviour: dict[str, Callable[..., Any]]):
        super().__init__("tensorrt")
        self.surface = surface(version)
        self.calls: list[tuple[str, tuple, dict]] = []
        self.behaviour = behaviour
        self.__version__ = self.surface["module"]["__version__"]
        classes: dict[str, type] = {}
        for cname, info in self.surface["classes"].items():
            classes[cname] = self._make_class(cname, info)
        for name, info in self.surface["module"]["names"].items():
            if name in classes:
                setattr(self, name, classes[name])
            elif info.get("kind") == "value" and "member" in info:
                setattr(self, name, EnumMember(info["type"], info["member"], info["int"]))
            elif info.get("kind") in ("class", "enum"):
                setattr(self, name, type(name, (), {}))  # exists; nothing the product reaches through it
            elif info.get("kind") == "method":
                setattr(self, name, self._method(f"tensorrt.{name}", info.get("signatures", []), module=True))

    def _method(self, qual: str, signatures: list[str], module: bool = False) -> Callable[..., Any]:
        fake = self

        def call(*args: Any, **kwargs: Any) -> Any:
            this, rest = (None, args) if module else (args[0], args[1:])
            if not _fits(signatures, rest, kwargs):
                raise TypeError(f"{qual}(): incompatible arguments {rest} {kwargs}; signatures: {signatures}")
            fake.calls.append((qual, rest, kwargs))
            impl = fake.behaviour.get(qual)
            if impl is None:
                raise NotImplementedError(f"the fake has no behaviour for {qual}")
            return impl(fake, this, *rest, **kwargs)

        return call

    def _make_class(self, cname: str, info: dict[str, Any]) -> type:
        if info["kind"] == "enum":
            return _enum_class(cname, info["enum"])
        fake = self
        attrs: dict[str, Any] = {}
        writable = {n for n, m in info["members"].items() if m.get("kind") == "property" and m.get("writable")}
        for name, member in info["members"].items():
            kind = member.get("kind")
            if kind == "method":
                attrs[name] = self._method(f"{cname}.{name}", member.get("signatures", []))
            elif kind == "property":
                attrs[name] = self._property(cname, name, member.get("writable", False))
            elif kind == "value" and "member" in member:
                attrs[name] = EnumMember(member["type"], member["member"], member["int"])

        init_sigs = info.get("init", [])

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if not _fits(init_sigs, args, kwargs):
                raise TypeError(f"{cname}(): incompatible arguments {args}; signatures: {init_sigs}")
            object.__setattr__(self, "_state", {})
            fake.calls.append((f"{cname}.__init__", args, kwargs))
            impl = fake.behaviour.get(f"{cname}.__init__")
            if impl is not None:
                impl(fake, self, *args, **kwargs)

        def __setattr__(self: Any, name: str, value: Any) -> None:
            if type(self).__name__ == cname and name not in writable:
                raise AttributeError(f"'{cname}' object attribute '{name}' is read-only or absent in TensorRT "
                                     f"{fake.__version__}")
            object.__setattr__(self, name, value)

        attrs.update(__init__=__init__, __setattr__=__setattr__)
        return type(cname, (), attrs)

    def _property(self, cname: str, name: str, writable: bool) -> property:
        fake = self

        def get(obj: Any) -> Any:
            state = obj.__dict__.setdefault("_state", {})
            if name in state:
                return state[name]
            impl = fake.behaviour.get(f"{cname}.{name}")
            if impl is None:
                raise NotImplementedError(f"the fake has no value for {cname}.{name}")
            return impl(fake, obj)

        def put(obj: Any, value: Any) -> None:
            fake.calls.append((f"{cname}.{name}=", (value,), {}))
            obj.__dict__.setdefault("_state", {})[name] = value

        return property(get, put if writable else None)

    def called(self, qual: str) -> list[tuple]:
        return [(a, k) for q, a, k in self.calls if q == qual]


# ------------------------------------------------------------------------------------------------ one small GPU

#: The engine's layers, in the engine inspector's real JSON form (ProfilingVerbosity.DETAILED), with the ONNX
#: parser's metadata tags (``[ONNX Layer: <node>]``, a fused layer's parts joined by ``\x1f``).
LAYERS = [
    {"Name": "/stem/conv/Conv + /stem/act/Relu", "LayerType": "CaskConvolution",
     "Outputs": [{"Name": "a", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
     "Metadata": "[ONNX Layer: /stem/conv/Conv]\x1f[ONNX Layer: /stem/act/Relu]"},
    {"Name": "/head/pool/GlobalAveragePool", "LayerType": "CaskPooling",
     "Outputs": [{"Name": "b", "Format/Datatype": "Row major linear FP16 format"}],
     "Metadata": "[ONNX Layer: /head/pool/GlobalAveragePool]"},
    {"Name": "/head/fc/Gemm", "LayerType": "CaskGemmConvolution",
     "Outputs": [{"Name": "logits", "Format/Datatype": "Row major linear FP32 format"}],
     "Metadata": "[ONNX Layer: /head/fc/Gemm]"},
]
LAYER_MS = {"/stem/conv/Conv + /stem/act/Relu": 0.3, "/head/pool/GlobalAveragePool": 0.1, "/head/fc/Gemm": 0.05}
ENGINE_IO = (("input", (1, 3, 8, 8), "INPUT"), ("logits", (1, 10), "OUTPUT"))


def engine_output(x: torch.Tensor) -> torch.Tensor:
    """What the fake engine computes (a fixed function, so parity can be checked)."""
    return x.reshape(1, -1)[:, :10] * 2.0


def gpu_behaviour(world: "FakeCuda", *, parse_ok: bool = True, engine: bytes | None = b"ENGINE") -> dict:
    """Behaviours of the fake ``tensorrt`` on the fake GPU ``world``."""
    io_by_name = {n: (shape, mode) for n, shape, mode in ENGINE_IO}

    def ret(value: Any) -> Callable[..., Any]:
        return lambda fake, this, *a, **k: value

    def new(cls: str) -> Callable[..., Any]:
        return lambda fake, this, *a, **k: getattr(fake, cls)()

    def execute(fake: FakeTensorRT, ctx: Any, handle: int) -> bool:
        world.launches.append(("execute_async_v3", handle, world.current.cuda_stream, world.capturing is not None))
        if world.capturing is not None:
            world.capturing.captured.append(lambda: execute_now(ctx))
            return True
        return execute_now(ctx)

    def execute_now(ctx: Any) -> bool:
        addresses = ctx._state["addresses"]
        x = world.tensors[addresses["input"]]
        world.tensors[addresses["logits"]].copy_(engine_output(x.float()).to(world.tensors[addresses["logits"]].dtype))
        return True

    def report(fake: FakeTensorRT, ctx: Any) -> bool:
        for layer in LAYERS:
            ctx._state["profiler"].report_layer_time(layer["Name"], LAYER_MS[layer["Name"]])
        return True

    def set_address(fake: FakeTensorRT, ctx: Any, name: str, ptr: int) -> bool:
        ctx.__dict__.setdefault("_state", {}).setdefault("addresses", {})[name] = ptr
        return True

    def cache(fake: FakeTensorRT, this: Any, data: bytes) -> Any:
        c = fake.ITimingCache()
        c._state["data"] = data
        return c

    def set_cache(fake: FakeTensorRT, config: Any, cache: Any, ignore_mismatch: bool) -> bool:
        config._state["cache"] = cache
        return True

    return {
        "Logger.__init__": lambda fake, this, *a: None,
        "Builder.create_network": new("INetworkDefinition"),
        "Builder.create_builder_config": new("IBuilderConfig"),
        "Builder.create_optimization_profile": new("IOptimizationProfile"),
        "Builder.build_serialized_network": ret(engine),
        "Builder.platform_has_fast_fp16": ret(True),
        "OnnxParser.parse_from_file": ret(parse_ok),
        "OnnxParser.num_errors": ret(0 if parse_ok else 1),
        "OnnxParser.get_error": ret("In node 3 (importGridSample): UNSUPPORTED_NODE: GridSample"),
        "IBuilderConfig.set_memory_pool_limit": ret(None),
        "IBuilderConfig.set_flag": ret(None),
        "IBuilderConfig.clear_flag": ret(None),
        "IBuilderConfig.add_optimization_profile": ret(0),
        "IBuilderConfig.create_timing_cache": cache,
        "IBuilderConfig.set_timing_cache": set_cache,
        "IBuilderConfig.get_timing_cache": lambda fake, config: config._state["cache"],
        "IBuilderConfig.builder_optimization_level": ret(3),
        "IOptimizationProfile.set_shape": ret(None),
        "ITimingCache.serialize": lambda fake, c: b"CACHE",
        "Runtime.deserialize_cuda_engine": lambda fake, rt, data: fake.ICudaEngine() if data != b"BAD" else None,
        "ICudaEngine.num_io_tensors": ret(len(ENGINE_IO)),
        "ICudaEngine.get_tensor_name": lambda fake, e, i: ENGINE_IO[i][0],
        "ICudaEngine.get_tensor_shape": lambda fake, e, name: io_by_name[name][0],
        "ICudaEngine.get_tensor_dtype": lambda fake, e, name: fake.DataType.FLOAT,
        "ICudaEngine.get_tensor_mode": lambda fake, e, name: getattr(fake.TensorIOMode, io_by_name[name][1]),
        "ICudaEngine.create_execution_context": new("IExecutionContext"),
        "ICudaEngine.create_engine_inspector": new("EngineInspector"),
        "EngineInspector.get_engine_information": lambda fake, i, fmt: json.dumps({"Layers": LAYERS,
                                                                                   "Bindings": ["input", "logits"]}),
        "IExecutionContext.set_input_shape": ret(True),
        "IExecutionContext.get_tensor_shape": lambda fake, c, name: io_by_name[name][0],
        "IExecutionContext.set_tensor_address": set_address,
        "IExecutionContext.execute_async_v3": execute,
        "IExecutionContext.report_to_profiler": report,
    }


# ------------------------------------------------------------------------------------------------ torch's CUDA side

class FakeStream:
    def __init__(self, world: "FakeCuda", handle: int):
        self.world, self.cuda_stream = world, handle
        self.waited: list[int] = []

    def wait_stream(self, other: "FakeStream") -> None:
        self.waited.append(other.cuda_stream)

    def synchronize(self) -> None:
        self.world.syncs.append(self.cuda_stream)


class FakeCuda:
    """The CUDA side of torch for code that runs on a GPU: streams (current stream tracked), graphs that capture
    what is launched and replay it, events, and tensors "on the GPU" that are CPU tensors, logged by where they
    were written."""

    def __init__(self, capture_fails: bool = False):
        self.default = FakeStream(self, 0)
        self.current = self.default
        self.capturing: Any = None
        self.capture_fails = capture_fails
        self.launches: list[tuple] = []
        self.syncs: list[int] = []
        self.writes: list[tuple[str, int]] = []
        self.tensors: dict[int, torch.Tensor] = {}
        self._handles = 0
        world = self

        class Tracked(torch.Tensor):
            def copy_(self, src, *a, **k):  # noqa: D401 - a write: logged with the stream it ran on
                world.writes.append(("copy_", world.current.cuda_stream))
                return super().copy_(src, *a, **k)

        self.Tracked = Tracked

        class CUDAGraph:
            def __init__(self) -> None:
                self.captured: list[Callable[[], Any]] = []
                self.replays = 0

            def replay(self) -> None:
                world.launches.append(("replay", world.current.cuda_stream))
                self.replays += 1
                for fn in self.captured:
                    fn()

        self.CUDAGraph = CUDAGraph

    def Stream(self) -> FakeStream:  # noqa: N802 - torch's name
        self._handles += 1
        return FakeStream(self, 1000 + self._handles)

    def current_stream(self) -> FakeStream:
        return self.current

    @contextlib.contextmanager
    def stream(self, s: FakeStream):
        before, self.current = self.current, s
        try:
            yield
        finally:
            self.current = before

    @contextlib.contextmanager
    def graph(self, g: Any, stream: FakeStream | None = None, capture_error_mode: str = "global", **_: Any):
        before, self.current = self.current, stream or self.current
        self.capturing = g
        try:
            if self.capture_fails:
                raise RuntimeError("operation not permitted when stream is capturing")
            yield
        finally:
            self.capturing = None
            self.current = before

    def is_available(self) -> bool:
        return True

    def get_device_name(self, i: int = 0) -> str:
        return "NVIDIA Fake GPU"

    def synchronize(self) -> None:
        self.syncs.append(-1)

    def empty_cache(self) -> None:
        pass

    def _register(self, t: torch.Tensor) -> torch.Tensor:
        t = t.as_subclass(self.Tracked)
        self.tensors[t.data_ptr()] = t
        return t

    def torch(self) -> types.SimpleNamespace:
        """A ``torch`` whose ``cuda`` is this world and whose ``device="cuda"`` tensors are CPU ones."""
        world = self

        def strip(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
            def made(*a: Any, **k: Any) -> torch.Tensor:
                k.pop("device", None)
                world.writes.append((fn.__name__, world.current.cuda_stream))
                return world._register(fn(*a, **k))
            return made

        ns = types.SimpleNamespace(**{n: getattr(torch, n) for n in dir(torch) if not n.startswith("_")
                                      and n not in ("cuda", "randn", "empty", "zeros", "Generator")})
        ns.cuda = self
        ns.randn, ns.empty, ns.zeros = strip(torch.randn), strip(torch.empty), strip(torch.zeros)
        ns.Generator = lambda device=None: torch.Generator()
        ns.__version__ = torch.__version__
        return ns


def install(monkeypatch: pytest.MonkeyPatch, version: str, world: FakeCuda | None = None, **kw: Any):
    """Put the strict fake ``tensorrt`` of ``version`` and the fake GPU in place; returns ``(fake, world)``."""
    import sys

    from mobileone_bench.devices import _tensorrt

    world = world or FakeCuda()
    fake = FakeTensorRT(version, gpu_behaviour(world, **kw))
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(_tensorrt, "require_cuda", lambda: world.torch())
    monkeypatch.setattr(_tensorrt, "time_cuda", _fake_time_cuda(world))
    return fake, world


def _fake_time_cuda(world: FakeCuda) -> Callable[..., list[float]]:
    def time_cuda(step: Callable[[], Any], warmup: int, runs: int, stream: FakeStream) -> list[float]:
        with world.stream(stream):
            for _ in range(warmup + runs):
                step()
        return [1.0] * runs
    return time_cuda


# ------------------------------------------------------------------------------------------------ tests of the fake

@pytest.mark.parametrize("version", VERSIONS)
def test_each_list_is_a_real_wheel_read_by_the_script(version):
    s = surface(version)
    wheel = s["source"]["wheel"]
    assert re.fullmatch(r"[0-9a-f]{64}", wheel["sha256"]) and wheel["file"].endswith(".whl")
    assert wheel["name"].startswith("tensorrt") and wheel["version"] == s["module"]["__version__"]
    assert s["module"]["__version__"].startswith(version)
    assert {"Builder", "IBuilderConfig", "ICudaEngine", "IExecutionContext", "IProfiler"} <= set(s["classes"])


def test_the_three_releases_are_listed():
    assert [v.split(".")[0] for v in VERSIONS] == ["8", "10", "11"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_fake_is_strict(version):
    fake = FakeTensorRT(version, {})
    with pytest.raises(AttributeError):
        fake.NoSuchClass  # noqa: B018
    with pytest.raises(AttributeError):
        fake.BuilderFlag.NO_SUCH_FLAG  # noqa: B018
    config = fake.IBuilderConfig()
    with pytest.raises(AttributeError):
        config.no_such_setting = 1
    with pytest.raises(TypeError):
        config.set_memory_pool_limit()  # the real method needs the pool and the size
    with pytest.raises(NotImplementedError):
        config.set_memory_pool_limit(fake.MemoryPoolType.WORKSPACE, 1)


def test_the_lists_hold_tensorrt_11s_removals():
    """TensorRT 11 removed weak typing: the facts the new code is built on, as the real wheels have them."""
    old, new = surface(VERSIONS[1]), surface(VERSIONS[-1])
    assert "FP16" in old["classes"]["BuilderFlag"]["enum"] and "FP16" not in new["classes"]["BuilderFlag"]["enum"]
    for gone in ("INT8", "BF16", "FP8"):
        assert gone not in new["classes"]["BuilderFlag"]["enum"]
    assert "platform_has_fast_fp16" in old["classes"]["Builder"]["members"]
    assert "platform_has_fast_fp16" not in new["classes"]["Builder"]["members"]
    assert "STRONGLY_TYPED" in new["classes"]["NetworkDefinitionCreationFlag"]["enum"]
    assert "EXPLICIT_BATCH" not in new["classes"]["NetworkDefinitionCreationFlag"]["enum"]
    assert "STRONGLY_TYPED" not in surface(VERSIONS[0])["classes"]["NetworkDefinitionCreationFlag"]["enum"]
    assert all("TF32" in surface(v)["classes"]["BuilderFlag"]["enum"] for v in VERSIONS)


def test_the_lists_cover_what_the_product_spells_now():
    """Regenerating the lists is needed when the product reaches a new TensorRT name (tools/tensorrt_api_surface)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("tensorrt_api_surface",
                                                  Path(__file__).parents[1] / "tools" / "tensorrt_api_surface.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tool
    try:
        spec.loader.exec_module(tool)
        chains, _ = tool.product_uses()
    finally:
        sys.modules.pop(spec.name, None)
    for version in VERSIONS:
        assert set(chains) <= set(surface(version)["uses"]), f"regenerate tests/fixtures/tensorrt ({version})"
