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

from mobileone_bench._version import __version__

#: the API's public functions (``mobileone_bench.api.__all__``; a test holds the two lists equal). Listed here so
#: that ``import mobileone_bench`` imports nothing else: the API module loads on first use of one of these names.
_API = ("list_models", "list_zoos", "create_model", "reparam", "profile", "export", "latency", "run", "ablate",
        "load_results", "correlate", "table", "plot", "roofline", "merge", "export_results", "report",
        "evaluate", "explain")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from mobileone_bench import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mobileone_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
