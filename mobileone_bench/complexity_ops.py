"""The operators of a model as a runtime runs them: each one's category and its FLOPs.

Two things every per-operator profile (``explain``) needs, whatever the runtime:

* **A category** (:data:`mobileone_bench.store.operators.CATEGORIES`). A convolution is dense, depthwise, pointwise
  or grouped by its geometry (:func:`conv_category`: groups and kernel, from the module or from the weight's shape),
  every other operator by its type (:func:`op_category`, which knows the names of ONNX, aten, TensorRT and
  ExecuTorch operators). Two categories need more than the operator: *gating* (squeeze-excite: a global pool, a
  small bottleneck, a sigmoid, and a multiply of the feature map by the result) and *dynamic activation* (Dynamic
  ReLU, Dynamic Shift-Max: coefficients computed from the input, applied by several multiplies and adds, then a
  max). In PyTorch they are found by the module an operator runs in (:class:`ModuleMap`: a module with
  ``elementwise_macs``, or a squeeze-excite class); in a graph (ONNX, as onnxruntime optimised it) by their shape
  (:func:`structural_categories`: a reduction to a vector whose result is applied back to the feature map once by a
  multiply is a gate, applied by several operators a dynamic activation; a reduction that reaches the output
  without being applied back is the classifier's pooling).
* **FLOPs**, by the counting rules of ``profile`` (:mod:`mobileone_bench.complexity`: multiply-adds of convolutions
  and matrix products, and dynamic activations' per-element work), per module (:class:`ModuleMap`); an operator traced
  to its module (onnxruntime: the parameters a node reads, or its scope; PyTorch: the module it runs in) gets its
  count, else its own shapes' (:func:`shape_macs`); what no operator can be given is unmapped, never spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["ModuleMap", "module_map", "conv_category", "op_category", "normalize_op", "shape_macs", "GraphNode",
           "structural_categories", "is_gate_class", "assign_flops", "categorize_row", "trace_modules",
           "trace_in_order"]

# ------------------------------------------------------------------------------------------------ operator names

_CONV = {"conv", "fusedconv", "convolution", "conv2d", "_convolution", "mkldnn_convolution", "convolution_overrideable",
         "_nnpack_spatial_convolution", "thnn_conv2d", "_slow_conv2d_forward", "nchwcconv", "qlinearconv",
         "convinteger", "conv1d", "conv3d", "convtranspose", "conv_transpose2d", "deconvolution"}
_LINEAR = {"gemm", "linear", "addmm", "mm", "fullyconnected", "matmulinteger", "qgemm", "fusedgemm", "fusedmatmul",
           "matmul", "bmm", "baddbmm", "einsum", "matrixmultiply", "qlinearmatmul"}
_ATTENTION = {"softmax", "_softmax", "scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
              "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
              "_scaled_dot_product_cudnn_attention", "attention", "multiheadattention", "logsoftmax",
              "_safe_softmax", "multihead_attention"}
_NORM = {"batchnormalization", "batch_norm", "native_batch_norm", "_native_batch_norm_legit_no_training",
         "_native_batch_norm_legit", "layer_norm", "native_layer_norm", "layernormalization", "group_norm",
         "native_group_norm", "groupnormalization", "instancenormalization", "instance_norm", "normalization",
         "simplifiedlayernormalization", "skiplayernormalization", "rms_norm", "rmsnormalization"}
_ACTIVATION = {"relu", "relu_", "relu6", "clip", "clamp", "clamp_min", "hardtanh", "hardtanh_", "gelu", "fastgelu",
               "biasgelu", "silu", "silu_", "swish", "sigmoid", "sigmoid_", "hardswish", "hardswish_", "hardsigmoid",
               "hardsigmoid_", "tanh", "leakyrelu", "leaky_relu", "prelu", "elu", "selu", "celu", "mish", "softplus",
               "softsign", "erf", "quickgelu", "activation", "threshold", "gelu_", "_prelu_kernel"}
_ELEMENTWISE = {"add", "add_", "sub", "sub_", "mul", "mul_", "multiply", "subtract", "divide", "squareddifference",
                "div", "div_", "sum", "max", "min", "maximum", "minimum", "elementwise", "pointwise", "pow", "sqrt",
                "reciprocal", "neg", "abs", "exp", "log", "where", "rsub", "addcmul", "fma", "equal", "scale"}
_POOLING = {"averagepool", "maxpool", "globalaveragepool", "globalmaxpool", "reducemean", "reducemax", "reducesum",
            "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "avg_pool2d", "max_pool2d", "max_pool2d_with_indices",
            "mean", "amax", "pooling", "reduce", "lppool", "adaptive_max_pool2d", "mkldnn_adaptive_avg_pool2d",
            "mkldnn_max_pool2d", "nchwcmaxpool", "nchwcaveragepool", "nchwcglobalaveragepool", "global_avg_pool",
            "globalaveragepooling", "averagepooling", "maxpooling", "argmaxpooling"}
_DATA = {"reshape", "_reshape_alias", "view", "_unsafe_view", "transpose", "permute", "concat", "cat", "split",
         "split_with_sizes", "slice", "gather", "index_select", "flatten", "squeeze", "unsqueeze", "contiguous",
         "copy_", "clone", "pad", "constant_pad_nd", "reflection_pad2d", "reorderinput", "reorderoutput", "reorder",
         "shuffle", "reformat", "shape", "expand", "tile", "repeat", "roll", "pixel_shuffle", "depthtospace",
         "spacetodepth", "chunk", "narrow", "to", "_to_copy", "identity", "dropout", "cast", "select", "index",
         "unbind", "stack", "copy", "memcpy", "memcpytohost", "memcpyfromhost", "_to_dim_order_copy",
         "alias", "detach", "empty", "empty_like", "zeros", "ones", "fill_", "constant", "constantofshape",
         "unfold", "im2col", "channel_shuffle", "native_channel_shuffle", "resize", "upsample_nearest2d",
         "upsample_bilinear2d", "interpolate", "upsample", "layout", "transposeconv", "scatter", "gathernd",
         "nonzero", "size", "as_strided", "t", "numpy_t", "convert", "staticreshape", "concatenate", "evensplit",
         "staticslice", "staticconstantpad", "staticresizebilinear2d", "depthtospace2d", "copy"}


def normalize_op(op_type: str) -> str:
    """An operator type as a lowercase name without namespace or overload (``aten::conv2d`` -> ``conv2d``,
    ``aten.convolution.default`` -> ``convolution``, ``com.microsoft.nchwc:Conv`` -> ``conv``)."""
    text = str(op_type or "").strip()
    for sep in ("::", ":"):
        if sep in text:
            text = text.rsplit(sep, 1)[-1]
    parts = text.split(".")
    if len(parts) >= 2 and parts[-1] in ("default", "Tensor", "Scalar", "out", "int", "self", "input", "dim",
                                         "using_ints", "memory_format", "Tensor_mode"):
        parts = parts[:-1]
    if len(parts) >= 2 and parts[0] in ("aten", "quantized_decomposed", "prims", "torch", "ops"):
        parts = parts[1:]
    return parts[-1].lower() if parts else ""


def conv_category(groups: int | None, in_channels: int | None, kernel: Sequence[int] | None) -> str:
    """``depthwise-conv`` (groups = input channels > 1), ``grouped-conv`` (1 < groups < input channels),
    ``pointwise-conv`` (groups 1, every kernel side 1) or ``dense-conv`` (groups 1, a larger kernel); ``dense-conv``
    when the geometry is unknown."""
    g = int(groups or 1)
    if g > 1 and in_channels is not None and g >= int(in_channels):
        return "depthwise-conv"
    if g > 1:
        return "grouped-conv"
    if kernel is not None and len(kernel) > 0 and all(int(k) == 1 for k in kernel):
        return "pointwise-conv"
    return "dense-conv"


def op_category(op_type: str, *, weight_shape: Sequence[int] | None = None, input_shape: Sequence[int] | None = None,
                context: str | None = None, has_weight: bool | None = None) -> str:
    """The category of one operator from its type (and, for a convolution, its weight's shape
    ``[out, in / groups, kh, kw]`` and its input's ``[N, C, ...]``).

    Args:
        op_type: The runtime's op type (``Conv``, ``aten::conv2d``, ``aten.convolution.default``, ``Convolution``...).
        weight_shape: A convolution's weight shape, when known.
        input_shape: Its input's shape, when known.
        context: What the module or subgraph the operator runs in is (``gating``, ``dynamic-activation``,
            ``attention``), when known: gating and dynamic activation take every operator in them; attention takes
            the matrix products between activations and the softmax.
        has_weight: For a matrix product: whether one operand is a weight (a linear layer) rather than an activation.
    """
    op = normalize_op(op_type)
    if context in ("gating", "dynamic-activation"):
        return context
    if op == "dwconv":  # XNNPACK's depthwise convolution
        return "depthwise-conv"
    if op in _CONV or op.startswith("conv"):
        if weight_shape is not None and len(weight_shape) >= 3 and input_shape is not None and len(input_shape) >= 2:
            per_group = max(1, int(weight_shape[1]))
            groups = max(1, int(input_shape[1]) // per_group)
            return conv_category(groups, int(input_shape[1]), [int(k) for k in weight_shape[2:]])
        return "dense-conv"
    if op in _ATTENTION:
        return "attention"
    if op in _LINEAR:
        if context == "attention" and op in ("matmul", "bmm", "baddbmm", "einsum", "fusedmatmul") and not has_weight:
            return "attention"
        return "linear"
    if op in _NORM or op.endswith("norm"):
        return "normalization"
    if op in _ACTIVATION:
        return "activation"
    if op in _POOLING or "pool" in op:
        return "pooling"
    if op in _ELEMENTWISE:
        return "elementwise"
    if op in _DATA:
        return "data-movement"
    return "other"


def is_gate_class(name: str) -> bool:
    """Whether a module class is a squeeze-excite gate by its name (``SqueezeExcite``, timm's ``SqueezeExcite`` and
    ``EffectiveSEModule``, torchvision's ``SqueezeExcitation``, ``SELayer``, ``SEModule``...)."""
    low = name.lower()
    return ("squeeze" in low or "excit" in low or low in ("se", "seblock", "selayer", "semodule", "se_module")
            or low.endswith(("semodule", "selayer", "seblock")) or low.endswith("gate"))


def _is_attention_class(name: str) -> bool:
    low = name.lower()
    return "attention" in low or low.endswith("attn") or low in ("mhsa", "msa")


def _prod(values: Iterable[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def shape_macs(op_type: str, input_shapes: Sequence[Sequence[int] | None],
               output_shapes: Sequence[Sequence[int] | None] = ()) -> int | None:
    """Multiply-adds of a convolution or matrix product from its shapes (``None`` for other operators or when the
    shapes are missing): a convolution ``out elements x in/groups x kernel`` (its weight is ``input_shapes[1]``), a
    matrix product ``batch x m x k x n``, ``Gemm`` ``m x k x n``."""
    op = normalize_op(op_type)
    shapes = [list(s) if s is not None else None for s in input_shapes]
    outs = [list(s) if s is not None else None for s in output_shapes]
    try:
        if op in _CONV or op.startswith("conv"):
            w = shapes[1] if len(shapes) > 1 else None
            out = outs[0] if outs else None
            if w is None or out is None or len(w) < 3:
                return None
            return _prod(out) * _prod(w[1:])
        if op in ("gemm", "fusedgemm", "addmm", "linear"):
            a, b = (shapes[1], shapes[2]) if op == "addmm" else (shapes[0], shapes[1])
            if a is None or b is None:
                return None
            k = a[-1]
            n = (b[0] if op in ("linear",) else b[-1]) if op != "gemm" else (b[-1] if b[0] == k else b[0])
            return _prod(a[:-1]) * int(k) * int(n)
        if op in ("matmul", "bmm", "mm", "fusedmatmul", "baddbmm"):
            a, b = (shapes[1], shapes[2]) if op == "baddbmm" else (shapes[0], shapes[1])
            if a is None or b is None or len(a) < 2 or len(b) < 2:
                return None
            out = outs[0] if outs and outs[0] is not None and len(outs[0]) >= 2 else None
            if out is not None:  # from the output: right for a transposed operand too (FusedMatMul transA/transB)
                return _prod(out) * (int(a[-1]) if int(a[-2]) == int(out[-2]) else int(a[-2]))
            return _prod(a[:-2]) * int(a[-2]) * int(a[-1]) * int(b[-1])
        if op in ("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
                  "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention"):
            q, k, v = shapes[0], shapes[1], shapes[2]
            if q is None or k is None or v is None:
                return None
            return _prod(q[:-2]) * int(q[-2]) * int(k[-2]) * (int(q[-1]) + int(v[-1]))
    except (IndexError, TypeError, ValueError):
        return None
    return None


# ------------------------------------------------------------------------------------------------ modules

@dataclass
class ModuleMap:
    """What the inference-time model's modules are and cost, by the counting rules of ``profile``.

    Attributes:
        total: The model's multiply-adds (:func:`mobileone_bench.complexity.count_flops`, what ``profile`` stores).
        flops: Multiply-adds of each convolution and linear module (its path -> count).
        dynamic: Per-element multiply-adds of each dynamic activation (a module with ``elementwise_macs``).
        conv: Each convolution module's geometry: ``(groups, in_channels, kernel, out_channels)``.
        params: Parameter name -> the path of the module that owns it (how an ONNX node is traced to its module).
        classes: Module path -> class name.
        contexts: Module path -> ``gating`` / ``dynamic-activation`` / ``attention`` for the modules that are one
            (and everything inside them).
    """

    total: int = 0
    flops: dict[str, int] = field(default_factory=dict)
    dynamic: dict[str, int] = field(default_factory=dict)
    conv: dict[str, tuple[int, int, tuple[int, ...], int]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, str] = field(default_factory=dict)

    def context(self, path: str | None) -> str | None:
        """The context of a module path: the outermost enclosing module that is a dynamic activation, a gate or an
        attention block."""
        root = self.context_root(path) if path else None
        return self.contexts[root] if root is not None else None

    def context_root(self, path: str | None) -> str | None:
        """The outermost enclosing module of ``path`` that is a gate, dynamic activation or attention block."""
        parts = (path or "").split(".")
        for i in range(1, len(parts) + 1):
            if self.contexts.get(".".join(parts[:i])):
                return ".".join(parts[:i])
        return None

    def owner(self, names: Iterable[str]) -> str | None:
        """The module owning the first of ``names`` that is a parameter (an ONNX node's inputs), else ``None``."""
        for name in names:
            path = self.params.get(str(name))
            if path is not None:
                return path
        return None

    def dynamic_under(self, path: str) -> int:
        return sum(v for p, v in self.dynamic.items() if p == path or p.startswith(path + ".") or
                   path.startswith(p + "."))

    def mapped(self) -> int:
        return sum(self.flops.values()) + sum(self.dynamic.values())


def module_map(model: Any, input_shape: Sequence[int]) -> ModuleMap:
    """Count the inference-time model once, module by module (one forward pass at ``input_shape``)."""
    import torch
    from torch import nn

    from mobileone_bench.complexity import count_flops

    out = ModuleMap()
    total, _ = count_flops(model, tuple(input_shape))
    out.total = int(total)
    for path, mod in model.named_modules():
        cls = type(mod).__name__
        out.classes[path] = cls
        if path and callable(getattr(mod, "elementwise_macs", None)):
            out.contexts[path] = "dynamic-activation"
        elif path and is_gate_class(cls):
            out.contexts[path] = "gating"
        elif path and _is_attention_class(cls):
            out.contexts[path] = "attention"
        for pname, _p in mod.named_parameters(recurse=False):
            out.params[f"{path}.{pname}" if path else pname] = path
        for bname, _b in mod.named_buffers(recurse=False):
            out.params.setdefault(f"{path}.{bname}" if path else bname, path)
        if isinstance(mod, nn.modules.conv._ConvNd):
            out.conv[path] = (int(mod.groups), int(mod.in_channels), tuple(int(k) for k in mod.kernel_size),
                              int(mod.out_channels))

    hooks = []

    def counter(path: str, mod: Any) -> Any:
        def hook(module: Any, args: tuple[Any, ...], result: Any) -> None:
            if not isinstance(result, torch.Tensor):
                return
            if isinstance(module, nn.modules.conv._ConvNd):
                macs = result.numel() * (module.in_channels // module.groups) * _prod(module.kernel_size)
            else:  # nn.Linear
                macs = result.numel() * module.in_features
            out.flops[path] = out.flops.get(path, 0) + int(macs)

        return hook

    def dynamic(path: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            out.dynamic[path] = out.dynamic.get(path, 0) + int(module.elementwise_macs(args[0]))

        return hook

    for path, mod in model.named_modules():
        if isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)):
            hooks.append(mod.register_forward_hook(counter(path, mod)))
        if callable(getattr(mod, "elementwise_macs", None)):
            hooks.append(mod.register_forward_pre_hook(dynamic(path)))
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(tuple(input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return out


# ------------------------------------------------------------------------------------------------ graphs

@dataclass
class GraphNode:
    """One node of a dataflow graph, as :func:`structural_categories` reads it.

    Attributes:
        name: The node's name (the profiler's).
        op_type: Its type.
        inputs: Names of the tensors it reads (constants included).
        outputs: Names of the tensors it writes.
        input_shapes: Shapes of the inputs (``None`` where unknown), in order.
        output_shapes: Shapes of the outputs.
        constants: Which inputs are constants (weights), not activations.
    """

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    input_shapes: list[Sequence[int] | None] = field(default_factory=list)
    output_shapes: list[Sequence[int] | None] = field(default_factory=list)
    constants: set[str] = field(default_factory=set)


_REDUCTIONS = {"globalaveragepool", "globalmaxpool", "reducemean", "reducemax", "reducesum", "mean", "amax",
               "adaptive_avg_pool2d", "nchwcglobalaveragepool", "global_avg_pool"}
_MERGES = {"mul", "add", "sub", "div", "max", "min", "maximum", "minimum", "where", "sum"}


def _numel(shape: Sequence[int] | None) -> int | None:
    if shape is None:
        return None
    try:
        return _prod(shape)
    except (TypeError, ValueError):
        return None


def structural_categories(nodes: Sequence[GraphNode], graph_outputs: Iterable[str] = ()) -> dict[str, str]:
    """Gates and dynamic activations found by the shape of a graph: ``{node name: "gating" | "dynamic-activation"}``.

    From every reduction of a feature map to a much smaller tensor (a global pool: its output at most half its
    input), the nodes that compute on small tensors from it are followed to where their result meets the feature map
    again (a node with a large activation input besides the small one). Applied once, by a multiply: a gate
    (squeeze-excite), every node of the path and the multiply. Applied by several nodes (coefficients times the map,
    plus an offset, then a max: Dynamic ReLU, Dynamic Shift-Max): a dynamic activation, the path, the nodes that
    apply it and the merges after them up to the max. Never applied (it reaches a graph output: the classifier head)
    : nothing, and the nodes keep their types' categories.
    """
    producer: dict[str, GraphNode] = {}
    consumers: dict[str, list[GraphNode]] = {}
    shapes: dict[str, Sequence[int] | None] = {}
    for node in nodes:
        for t, s in zip(node.outputs, list(node.output_shapes) + [None] * len(node.outputs)):
            producer[t] = node
            if s is not None:
                shapes[t] = s
        for t, s in zip(node.inputs, list(node.input_shapes) + [None] * len(node.inputs)):
            consumers.setdefault(t, []).append(node)
            if s is not None and t not in shapes:
                shapes[t] = s
    outputs = set(graph_outputs)
    found: dict[str, str] = {}
    for node in nodes:
        if normalize_op(node.op_type) not in _REDUCTIONS or not node.inputs or not node.outputs:
            continue
        big = _numel(shapes.get(node.inputs[0]))
        small_out = _numel(shapes.get(node.outputs[0]))
        if big is None or small_out is None or small_out * 2 > big:
            continue

        def is_small(tensor: str, limit: int = big) -> bool:
            n = _numel(shapes.get(tensor))
            return n is not None and n * 2 <= limit

        group: list[GraphNode] = [node]
        applies: list[GraphNode] = []
        frontier = list(node.outputs)
        inside = set(node.outputs)  # the tensors the reduction's path computed
        seen = {node.name}
        while frontier:
            tensor = frontier.pop()
            for c in consumers.get(tensor, []):
                if c.name in seen:
                    continue
                seen.add(c.name)
                others = [t for t in c.inputs if t not in c.constants and t not in inside and t in shapes]
                if any(not is_small(t) for t in others):  # meets a feature map from outside the path
                    applies.append(c)
                    continue
                group.append(c)
                inside.update(c.outputs)
                frontier.extend(t for t in c.outputs if t not in outputs)
        if not applies:
            continue
        if len(applies) == 1 and normalize_op(applies[0].op_type) == "mul":
            for g in group + applies:
                found.setdefault(g.name, "gating")
            continue
        members = group + applies
        queue = [t for a in applies for t in a.outputs]
        depth = 0
        while queue and depth < 8:  # the merges after the applying nodes, up to the max over the pieces
            depth += 1
            nxt = []
            for t in queue:
                for c in consumers.get(t, []):
                    op = normalize_op(c.op_type)
                    if c.name in seen or op not in _MERGES:
                        continue
                    seen.add(c.name)
                    members.append(c)
                    if op not in ("max", "maximum"):
                        nxt.extend(c.outputs)
            queue = nxt
        for g in members:
            found[g.name] = "dynamic-activation"
    return found


def assign_flops(rows: list[dict[str, Any]], modules: ModuleMap) -> int:
    """Give each row its FLOPs (in place) and return what no row could be given.

    A row with ``module`` (a module path) and a convolution or matrix product gets its module's count (once, to the
    first such row of the module); one without a module gets :func:`shape_macs` of its ``input_shapes`` /
    ``output_shapes`` when it is a convolution or matrix product; a dynamic activation's per-element work goes in
    equal parts to the rows of its module (or, without modules, to the rows categorised ``dynamic-activation`` that
    merge tensors). Every other row: 0 (element-wise work is not counted, as in ``profile``).
    """
    used: set[str] = set()
    for row in rows:
        if row.get("flops") is not None:
            continue
        op = normalize_op(row.get("op_type") or "")
        heavy = _is_heavy(op) or op in _ATTENTION
        module = row.get("module")
        macs: int | None = 0
        own = shape_macs(op, row.get("input_shapes") or [], row.get("output_shapes") or []) if heavy else None
        # several modules (TensorRT's A || B, a Myelin region): all counts; a module's 2nd operator (attention's) 0,
        # but one reading its own weights is its module's only one (a mis-traced shared bias): its shapes' count
        fused = [m for m in row.get("modules") or () if m in modules.flops and m not in used] if heavy else []
        if len(fused) > 1 or (heavy and module in modules.flops and module not in used):
            fused = fused if len(fused) > 1 else [module]
            macs = sum(modules.flops[m] for m in fused)
            used.update(fused)
        elif heavy:
            macs = (own or 0 if row.get("params") else 0) if module in modules.flops else own
        row["flops"] = macs if macs is not None else 0
    dyn_total = sum(modules.dynamic.values())
    placed = 0
    if dyn_total:
        with_module = [r for r in rows if r.get("module") and r.get("category") == "dynamic-activation"]
        for path, macs in modules.dynamic.items():
            mine = [r for r in with_module if r["module"] == path or str(r["module"]).startswith(path + ".")]
            if mine:
                _spread(mine, macs)
                placed += macs
        left = dyn_total - placed
        if left:
            merges = [r for r in rows if r.get("category") == "dynamic-activation" and not r.get("module")
                      and normalize_op(r.get("op_type") or "") in _MERGES]
            if merges:
                _spread(merges, left)
                placed += left
    return int(modules.total - sum(int(r["flops"] or 0) for r in rows))


def _spread(rows: list[dict[str, Any]], macs: int) -> None:
    """Add ``macs`` to ``rows`` in equal integer parts (the remainder to the first ones): the sum is exact."""
    base, extra = divmod(int(macs), len(rows))
    for i, r in enumerate(rows):
        r["flops"] = int(r["flops"] or 0) + base + (1 if i < extra else 0)


def categorize_row(row: Mapping[str, Any], modules: ModuleMap | None = None) -> str:
    """A row's category: the one its reader gave, else its graph's (``structural``), else its module's context or a
    convolution module's geometry, else :func:`op_category` of its type and shapes."""
    if row.get("category"):
        return str(row["category"])
    module = row.get("module")
    context = modules.context(module) if (modules is not None and module) else None
    if context in ("gating", "dynamic-activation"):
        return context
    if row.get("structural"):
        return str(row["structural"])
    op = normalize_op(row.get("op_type") or "")
    if context not in ("gating", "dynamic-activation") and modules is not None and module in modules.conv and (
            _is_heavy(op)):
        groups, in_ch, kernel, _ = modules.conv[module]
        return conv_category(groups, in_ch, kernel)
    shapes = row.get("input_shapes") or []
    weight = shapes[1] if len(shapes) > 1 else None
    has_weight = bool(row.get("params")) or (module is not None and modules is not None and module in modules.flops)
    return op_category(op, weight_shape=weight, input_shape=shapes[0] if shapes else None, context=context,
                       has_weight=has_weight)


def _is_conv(op_type: str) -> bool:
    op = normalize_op(op_type)
    return op in _CONV or op.startswith("conv")


def trace_modules(rows: list[dict[str, Any]], modules: ModuleMap) -> None:
    """Give each row the module it runs (``module``, in place) where it can be traced: one that has one keeps it;
    one with ``params`` (the parameters an ONNX node reads) gets their owner, else (a convolution or matrix product)
    its ``scope``, the module its exporter traced it in; a convolution left without one (a runtime that renamed or
    padded its weights: onnxruntime's NCHWc layout for a narrow squeeze-excite bottleneck) gets the next convolution
    module not yet traced, in execution order, whose kernel is the same and whose channels fit in its weight."""
    for row in rows:
        if not row.get("module") and row.get("params"):
            row["module"] = modules.owner(row["params"])
        if not row.get("module") and row.get("scope") in modules.flops and _is_heavy(row.get("op_type") or ""):
            row["module"] = row["scope"]  # the module the exporter traced it in (a folded weight has no owner)
    taken = {r.get("module") for r in rows if r.get("module")}
    free = [p for p in modules.flops if p in modules.conv and p not in taken]
    for row in rows:
        if row.get("module") or not _is_conv(row.get("op_type") or ""):
            continue
        shapes = row.get("input_shapes") or []
        weight = shapes[1] if len(shapes) > 1 else None
        if weight is None or len(weight) < 3:
            continue
        for i, path in enumerate(free):
            groups, in_ch, kernel, out_ch = modules.conv[path]
            if (tuple(int(k) for k in weight[2:]) == tuple(kernel) and in_ch // groups <= int(weight[1])
                    and out_ch <= int(weight[0])):
                row["module"] = path
                del free[i]
                break


def _is_heavy(op_type: str) -> bool:
    op = normalize_op(op_type)
    return op in _CONV or op.startswith("conv") or op in _LINEAR or op == "dwconv"


_GATE_BEFORE = _REDUCTIONS | {"globalaveragepooling", "averagepooling"}
_GATE_AFTER = {"sigmoid", "hardsigmoid", "multiply", "mul"}
_DYNAMIC_AFTER = _MERGES | {"sigmoid", "hardsigmoid", "multiply", "subtract", "maximum", "minimum", "clamp",
                            "staticslice", "evensplit", "staticreshape", "copy", "concatenate"}


def trace_in_order(rows: list[dict[str, Any]], modules: ModuleMap) -> None:
    """Trace the rows of a runtime that names no module (``trace == "order"``: ExecuTorch's XNNPACK operators) to
    the modules by their order, in place: the i-th convolution or matrix product is the i-th convolution or linear
    module in execution order; the pooling rows just before a gate's (or dynamic activation's) first layer, and the
    sigmoid / multiply rows just after its last one (a dynamic activation: the merges up to the max), get that
    module too, so they take its context."""
    heavy = list(modules.flops)
    i = 0
    for row in rows:
        if row.get("trace") != "order" or row.get("module") or not _is_heavy(row.get("op_type") or ""):
            continue
        if i < len(heavy):
            row["module"] = heavy[i]
            i += 1
    traced = [i for i, r in enumerate(rows) if r.get("trace") == "order" and r.get("module")]
    for a, b in zip(traced, traced[1:]):  # between two layers of one gate (its ReLU): the gate's
        ra, rb = modules.context_root(rows[a]["module"]), modules.context_root(rows[b]["module"])
        if ra is not None and ra == rb:
            for j in range(a + 1, b):
                rows[j].setdefault("module", None)
                rows[j]["module"] = rows[j]["module"] or rows[a]["module"]
    for idx, row in enumerate(rows):
        if row.get("trace") != "order" or not row.get("module") or not _is_heavy(row.get("op_type") or ""):
            continue
        context = modules.context(row["module"])
        if context not in ("gating", "dynamic-activation"):
            continue
        j = idx - 1
        while j >= 0 and not rows[j].get("module") and normalize_op(rows[j].get("op_type") or "") in _GATE_BEFORE:
            rows[j]["module"] = row["module"]
            j -= 1
        after = _GATE_AFTER if context == "gating" else _DYNAMIC_AFTER
        j = idx + 1
        while j < len(rows) and not rows[j].get("module") and normalize_op(rows[j].get("op_type") or "") in after:
            rows[j]["module"] = row["module"]
            j += 1
