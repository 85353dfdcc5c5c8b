"""The nodes of an exported ONNX graph with the module each one came from.

The torch exporter records, on every node, the module path it was traced in (``pkg.torch.onnx.name_scopes``: the
enclosing modules, then the operation itself); the TorchScript exporter names nodes after it (``/stage0/conv/Conv``).
A runtime that keeps the node names (TensorRT's layer metadata, onnxruntime's unfused nodes) can so be traced to the
model's modules even where a node reads no parameter of its own: the exporter folds a linear layer's transposed
weight into a new constant (``val_35``) that no module owns.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

__all__ = ["read_graph_nodes", "original_name"]

_FUSED = re.compile(r"^(.+?)/\w*Fusion/?$")


def _module_of(node: Any, prefix: str) -> str | None:
    """A node's module path: the torch exporter's name scopes (the last is the operation itself), else a
    TorchScript-style name ``/stage0/conv/Conv``."""
    props = {p.key: p.value for p in node.metadata_props}
    scopes = props.get("pkg.torch.onnx.name_scopes")
    path = None
    if scopes:
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            names = []
        path = str(names[-2]) if len(names) >= 2 else None
    elif node.name.startswith("/") and node.name.count("/") >= 2:
        path = ".".join(node.name.split("/")[1:-1])
    if path and prefix and path.startswith(prefix):
        path = path[len(prefix):]
    elif path and prefix and path == prefix.rstrip("."):
        path = None
    return path or None


def read_graph_nodes(path: Path | str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """The nodes of an ONNX graph in order: ``{name: {"op_type", "module", "params"}}``; ``prefix`` is a wrapper's
    attribute path to strip from module and parameter names (the fp16 graph's ``inner.``)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    weights = {t.name for t in proto.graph.initializer}
    nodes: dict[str, dict[str, Any]] = {}
    for node in proto.graph.node:
        params = [p[len(prefix):] if prefix and p.startswith(prefix) else p for p in node.input if p in weights]
        nodes[node.name] = {"op_type": node.op_type, "module": _module_of(node, prefix), "params": params}
    return nodes


def original_name(name: str, graph: dict[str, Any]) -> str | None:
    """The exported node a runtime's node name stands for: itself, or the node onnxruntime fused into
    ``<name>/<Kind>Fusion/`` (``node_matmul/MatMulScaleFusion/``); ``None`` when neither is in ``graph``."""
    if name in graph:
        return name
    fused = _FUSED.match(name)
    return fused.group(1) if fused and fused.group(1) in graph else None
