"""mobileone-bench: the MobileOne latency study, for any backbone.

Load a model, re-parameterize its train-time branches, export it (ONNX, Core ML, TensorRT), measure its latency
(CPU, GPU, iPhone, Mac), count its FLOPs and parameters, and ask whether FLOPs or parameters predict latency
(Spearman rank correlation, the paper's Table 1).

From Python, every step is a function of :mod:`mobileone_bench.api`, available here::

    import mobileone_bench as mb

    mb.list_models("mobileone*")                 # DataFrame of the models the tool can build
    model = mb.create_model("mobileone_s0")      # the inference-time nn.Module, re-parameterized and verified
    mb.run(zoo="quick")["models"]                # profile + export + latency over a zoo
    mb.correlate()                               # Table 1: Spearman rho of latency vs FLOPs and params

The package is importable without torch being imported: the API is loaded on first use and heavy libraries load
inside the functions that need them, so ``import mobileone_bench`` and ``mobileone-bench --help`` stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# the API's names, from its own list (mobileone_bench.api imports nothing heavy at module level)
from mobileone_bench.api import __all__ as _API  # noqa: E402

__all__ = ["__version__", *_API]


# API functions that share their name with a submodule: the (callable) submodule, see _callable.py
_SUBMODULES = {"export": "mobileone_bench.export", "reparam": "mobileone_bench.reparam"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(_SUBMODULES[name])
    if name in _API:
        from mobileone_bench import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mobileone_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
