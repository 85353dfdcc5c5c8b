"""TensorRT's engine layers read back to the ONNX nodes, and so the modules, they were built from.

An engine layer is a fusion of ONNX nodes (a convolution with its bias, activation and residual add; two
convolutions side by side; a Myelin region), so its TensorRT layer type (``CaskConvolution``) cannot say whether the
convolution is depthwise or pointwise, nor whose FLOPs it holds. What can:

* **the layer's metadata** (engine inspector JSON, ``"Metadata"``): TensorRT's ONNX parser tags every layer it
  creates with ``[ONNX Layer: <node name>]`` (``| ...`` properties may follow inside the brackets), and a fused
  layer joins its parts' tags with ASCII separators (``\\x1f``; ``\\x1e`` also seen). TensorRT 10 and 11;
* **the layer's name**, where there is no metadata (TensorRT 8.6, an engine built without detailed verbosity): the
  ONNX node names joined by TensorRT's fusion grammar: ``A + B`` (vertical fusion), ``A || B`` (horizontal),
  ``PWN(PWN(A), B)`` (point-wise fusion), ``{ForeignNode[A...B]}`` (a Myelin region from ``A`` to ``B``),
  ``Reformatting CopyNode for Input Tensor 0 to <layer>`` (a layout conversion TensorRT inserted), ``<tensor> copy``.

The ONNX graph then gives each node its op type, the parameters it reads and its module path
(:func:`mobileone_bench.devices._onnx_nodes.read_graph_nodes`).
The row keeps TensorRT's layer type in ``trt_layer_type``; ``op_type`` becomes the main ONNX node's (its first
convolution or matrix product, else its first node), ``module`` its module, ``modules`` every convolution's or matrix
product's module in the layer (a horizontal fusion or a Myelin region holds several, and all their FLOPs).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from mobileone_bench.devices._onnx_nodes import read_graph_nodes

__all__ = ["metadata_nodes", "name_nodes", "read_graph_nodes", "annotate", "TRT_TYPES"]

_TAG = re.compile(r"\[ONNX Layer: ([^\]|]*?)\s*(?:\|[^\]]*)?\]")
_REFORMAT = re.compile(r"^Reformatting CopyNode for (?:Input|Output) Tensor \d+ to ")
_FOREIGN = re.compile(r"^\{ForeignNode\[(.*)\]\}$")
_SPLIT = re.compile(r"\s\+\s|\s\|\|\s|,\s|PWN\(|\)")
_HEAVY = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum"}

#: TensorRT's layer types (engine inspector ``LayerType``) as the operator names ``op_category`` reads, for a layer
#: whose ONNX nodes cannot be found. A Gemm runs as a ``CaskGemmConvolution``: a matrix product.
TRT_TYPES = {
    "caskconvolution": "Conv", "cudnnconvolution": "Conv", "caskflattenconvolution": "Conv",
    "caskdeconvolution": "ConvTranspose", "caskgemmconvolution": "Gemm", "caskgemmmatrixmultiply": "MatMul",
    "matrixmultiply": "MatMul", "caskpooling": "MaxPool", "tiledpooling": "MaxPool", "pooling": "MaxPool",
    "reduce": "ReduceMean", "pointwise": "Elementwise", "pointwisev2": "Elementwise", "elementwise": "Elementwise",
    "scale": "Elementwise", "activation": "Relu", "softmax": "Softmax", "casksoftmax": "Softmax",
    "reformat": "Reformat", "shuffle": "Transpose", "noop": "Identity", "slice": "Slice", "gather": "Gather",
    "concatenation": "Concat", "padding": "Pad", "resize": "Resize", "cast": "Cast", "myelin": "Myelin",
}


def metadata_nodes(metadata: str | None) -> list[str]:
    """The ONNX node names in a layer's metadata (``[ONNX Layer: a]\\x1f[ONNX Layer: b]``), in order."""
    return [m.group(1) for m in _TAG.finditer(str(metadata or "")) if m.group(1)]


def name_nodes(name: str, graph: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``(kind, nodes)`` read from a layer's name: kind ``reformat`` (a layout conversion TensorRT inserted: no
    node of its own), ``copy``, ``foreign`` (a Myelin region: every node from its first to its last, in graph order)
    or ``fused``; nodes are the names of ``graph`` the layer holds."""
    text = str(name or "").strip()
    if _REFORMAT.match(text):
        return "reformat", []
    if text.endswith(" copy") and text[:-5] not in graph:
        return "copy", []
    foreign = _FOREIGN.match(text)
    if foreign:
        ends = [part.strip() for part in foreign.group(1).split("...")]
        order = list(graph)
        found = [order.index(e) for e in (ends[0], ends[-1]) if e in graph]
        if len(found) == 2 and found[0] <= found[1]:
            return "foreign", order[found[0]:found[1] + 1]
        return "foreign", [e for e in ends if e in graph]
    nodes = [t.strip() for t in _SPLIT.split(text)]
    return "fused", list(dict.fromkeys(t for t in nodes if t in graph))


def annotate(rows: list[dict[str, Any]], graph: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Give each engine layer row (``name``, ``op_type`` = TensorRT's layer type, ``onnx_nodes`` = its metadata's
    names, when the inspector gave them) its ONNX op type, module, parameters and heavy modules, in place.

    Returns:
        How many rows were read through their metadata, through their name, were TensorRT's own (a reformat or
        copy it inserted), or could not be read (categorised by TensorRT's layer type, :data:`TRT_TYPES`).
    """
    counts = {"metadata": 0, "name": 0, "inserted": 0, "unmapped": 0}
    for row in rows:
        layer_type = row.get("op_type")
        row["trt_layer_type"] = layer_type
        tagged = [n for n in row.get("onnx_nodes") or [] if n in graph]
        kind, nodes = ("fused", tagged) if tagged else name_nodes(row.get("name") or "", graph)
        if kind == "reformat" or str(layer_type or "").lower() == "reformat":
            row["op_type"] = "Reformat"
            counts["inserted"] += 1
            continue
        if kind == "copy":
            row["op_type"] = "Copy"
            counts["inserted"] += 1
            continue
        if not nodes:
            row["op_type"] = TRT_TYPES.get(str(layer_type or "").lower(), layer_type)
            counts["unmapped"] += 1
            continue
        counts["metadata" if tagged else "name"] += 1
        info = [graph[n] for n in nodes]
        heavy = [i for i in info if i["op_type"] in _HEAVY]
        main = heavy[0] if heavy else info[0]
        row["op_type"] = main["op_type"]
        row["params"] = list(main["params"])
        if main.get("module"):
            row["module"] = main["module"]
        if len(heavy) > 1:
            row["modules"] = list(dict.fromkeys(str(n["module"]) for n in heavy if n.get("module")))
    return counts
