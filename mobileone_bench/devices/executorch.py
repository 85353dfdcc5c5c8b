"""The ExecuTorch runtime: a ``.pte`` program delegated to XNNPACK (fp32 or int8), run through ExecuTorch's Python
runtime on the CPU, with the process-wide XNNPACK thread pool sized before each program is loaded.

It loads programs through :mod:`mobileone_bench.devices._executorch`, which the exporter uses too; it never imports
the exporter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobileone_bench.devices._cpu import default_threads
from mobileone_bench.devices._profile_executorch import profile_operators  # noqa: F401 - explain's profiler
from mobileone_bench.errors import MeasurementError, UsageError

__all__ = ["make_runner", "ExecuTorchRunner", "XNNPACK_SPIN_POLICY"]


#: How XNNPACK's workers wait between runs (recorded with every ExecuTorch measurement): ExecuTorch's pthreadpool
#: is compiled with a spin-wait of up to 1,000,000 yield iterations before a worker sleeps on a futex, and no Python
#: API changes it. onnxruntime's spinning, by contrast, is a session option (off by default in this tool).
XNNPACK_SPIN_POLICY = "pthreadpool built-in: spin up to 1e6 yields, then futex wait (not settable)"


class _SharedPool:
    """ExecuTorch's XNNPACK thread pool, which is one per process.

    XNNPACK keeps the pool's pointer in every method it has loaded, so resizing the pool while a method is loaded
    crashes the process. The rule here: the pool is sized (``_unsafe_reset_threadpool``) before ``load_method``, and
    only while no runner of this process holds a loaded method; a runner that asks for the count already in effect
    shares the pool (the interleaved protocol loads every model at the same thread count); one that asks for another
    count while others are loaded is refused with a :class:`MeasurementError` (measure it in a separate run). Once
    every runner is closed, the next one may resize the pool.
    """

    def __init__(self) -> None:
        self.live = 0
        self.threads: int | None = None

    def acquire(self, threads: int, backend: Any) -> dict[str, Any]:
        current = backend.thread_count()
        if current is None:  # an executorch without the getter: trust what this process set
            current = self.threads
        reset = current != threads
        if reset and self.live:
            raise MeasurementError(
                f"ExecuTorch's XNNPACK thread pool is shared by the whole process and {self.live} loaded model(s) "
                f"use it at {current} threads; resizing it to {threads} now would crash them: measure "
                f"--threads {threads} in a separate run")
        if reset:
            backend.reset_threadpool(int(threads))
        self.threads = int(threads)
        self.live += 1
        after = backend.thread_count()
        return {"threadpool_threads": int(after) if after is not None else int(threads),
                "threadpool_reset": (f"{current} -> {threads} threads, before load_method" if reset
                                     else f"kept at {threads} threads (already in effect)")}

    def release(self) -> None:
        self.live = max(0, self.live - 1)


_POOL = _SharedPool()


def _executorch_backend() -> Any:
    """The few ExecuTorch calls the runner makes, behind one small object (a test replaces it with a spy)."""
    from types import SimpleNamespace

    from mobileone_bench.devices._executorch import INSTALL_HINT, load_method, native_quiet
    from mobileone_bench.errors import MissingDependencyError

    try:
        with native_quiet():
            from executorch.extension.pybindings import portable_lib
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(f"the executorch runtime (Python module '{exc.name}')", INSTALL_HINT) from None
    except (ImportError, OSError) as exc:
        import torch

        raise MissingDependencyError("the executorch runtime", f"its native library does not load beside torch "
                                     f"{torch.__version__} ({' '.join(str(exc).split())[:200]}); {INSTALL_HINT}") \
            from None
    getter = getattr(portable_lib, "_threadpool_get_thread_count", None)
    from importlib import metadata

    def thread_count() -> int | None:
        if getter is None:
            return None
        with native_quiet():  # the first call creates the pool, which logs its CPU probing
            return int(getter())

    def reset_threadpool(n: int) -> None:
        with native_quiet():
            portable_lib._unsafe_reset_threadpool(int(n))

    return SimpleNamespace(reset_threadpool=reset_threadpool, thread_count=thread_count, load=load_method,
                           version=metadata.version("executorch"))


class ExecuTorchRunner:
    """An ExecuTorch ``forward`` method (XNNPACK-delegated ``.pte``) with a preallocated input; calling it runs
    ``method.execute`` once.

    The process-wide XNNPACK thread pool is sized to ``threads`` before the method is loaded (see
    :class:`_SharedPool` for what happens when runners with different counts meet in one process).

    Args:
        path: The ``.pte`` file.
        input_shape: Shape of the input to feed.
        threads: XNNPACK threads.
        precision: ``fp32`` or ``int8`` (what the artifact holds; recorded).
        backend: The ExecuTorch calls (default: the real ones); for tests.
    """

    def __init__(self, path: Path, input_shape: tuple[int, ...], threads: int, precision: str = "fp32",
                 backend: Any = None):
        import torch

        backend = backend or _executorch_backend()
        pool = _POOL.acquire(int(threads), backend)
        try:
            self.program, self.method = backend.load(Path(path))
        except Exception as exc:  # noqa: BLE001 - a bad artifact is a measurement failure with its reason
            _POOL.release()
            raise MeasurementError(f"executorch cannot load {path}: {' '.join(str(exc).split())[:200]}") from exc
        self._open = True
        self.inputs = (torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0)),)
        self._settings = {"threads": int(threads), **pool, "threads_set": "before load_method",
                          "delegate": "XNNPACK", "precision": precision, "method": "forward",
                          "spin_policy": XNNPACK_SPIN_POLICY, "executorch": backend.version}

    def __call__(self) -> Any:
        return self.method.execute(self.inputs)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def close(self) -> None:
        if not getattr(self, "_open", False):
            return
        import gc

        self.method = None
        self.program = None
        gc.collect()  # the method's XNNPACK runtime must be gone before another runner may resize the pool
        self._open = False
        _POOL.release()


def make_runner(runtime: str, *, artifact: Path | None, model: Any, input_shape: tuple[int, ...], precision: str,
                threads: int | None, options: dict[str, Any]) -> ExecuTorchRunner:
    """An ExecuTorch runner on the ``.pte`` artifact (fp32 or int8) at the job's thread count."""
    threads = threads or default_threads()
    if precision not in ("fp32", "int8"):
        raise UsageError(f"executorch on the CPU runs fp32 or int8 (asked: {precision})")
    if artifact is None:
        raise MeasurementError("executorch needs the .pte artifact")
    return ExecuTorchRunner(Path(artifact), input_shape, threads, precision)
