"""mobileone-bench: the MobileOne latency study, for any backbone.

Load a model, re-parameterize its train-time branches, export it (ONNX, Core ML, TensorRT), measure its latency
(CPU, GPU, iPhone, Mac), count its FLOPs and parameters, and ask whether FLOPs or parameters predict latency
(Spearman rank correlation, the paper's Table 1).

The package is importable without torch being imported: heavy libraries load inside the functions that need them,
so ``mobileone-bench --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
