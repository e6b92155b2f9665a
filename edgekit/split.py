"""Cut a model into a device part and a cloud part at a named graph node, with torch.fx.

A node is a split point when it is the only value computed at or before it that is still needed
after it: then the device sends exactly one tensor, the node's output, and the cloud part needs
nothing else. Node names are module paths with ``.`` replaced by ``_`` (``conv1``, ``ReLU2``,
``layer2_1_relu_1``); a function called inside a module is named after that module
(``layer2_1_add``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from edgekit.errors import EdgekitError, unknown
from edgekit.models.layers import Normalize

# Ops that only reshape: no arithmetic on the device.
_FREE_MODULES = (nn.Flatten, nn.Identity)
_FREE_FUNCTIONS = (torch.flatten, "view", "reshape", "flatten")


@dataclass(frozen=True)
class SplitPoint:
    """A place to cut: the feature that crosses (shape without batch, fp32 bytes) and the device's cost."""

    name: str
    op: str
    shape: tuple[int, ...]
    bytes: int
    flops: int
    params: int


@dataclass
class SplitParts:
    """``cloud(device(x)) == model(x)``; ``device`` maps an image to the output of ``split``."""

    device: fx.GraphModule
    cloud: fx.GraphModule
    feature_shape: tuple[int, ...]
    split: SplitPoint


class _NamingTracer(fx.Tracer):
    """Names nodes after module paths, keeping their case (``ReLU1``, not fx's ``re_lu1``)."""

    def __init__(self):
        super().__init__()
        self._scopes = [""]

    def is_leaf_module(self, module, qualified_name):
        return isinstance(module, Normalize) or super().is_leaf_module(module, qualified_name)

    def call_module(self, module, forward, args, kwargs):
        self._scopes.append(self.path_of_module(module))
        try:
            return super().call_module(module, forward, args, kwargs)
        finally:
            self._scopes.pop()

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        if name is None and kind == "call_module":
            name = target.replace(".", "_")
        elif name is None and kind in ("call_function", "call_method") and self._scopes[-1]:
            name = f"{self._scopes[-1].replace('.', '_')}_{_op_name(target)}"
        return super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)


def _op_name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target)).strip("_")


def _label(model: nn.Module) -> str:
    return type(model).__name__.lower()


def trace(model: nn.Module) -> fx.GraphModule:
    """The model as a GraphModule whose node names are stable module paths."""
    tracer = _NamingTracer()
    graph = tracer.trace(model)
    traced = fx.GraphModule(tracer.root, graph, type(model).__name__)
    return traced.train(model.training)


def _propagate_shapes(traced: fx.GraphModule, label: str, input_shape) -> None:
    try:
        with torch.no_grad():
            ShapeProp(traced).propagate(torch.zeros(1, *input_shape))
    except (RuntimeError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgekitError(f"{label} does not accept input shape {tuple(input_shape)}: {reason}") from None


def _describe(traced: fx.GraphModule, node: fx.Node) -> tuple[str, object]:
    """The op's display name and what identifies it (module or function/method)."""
    if node.op == "call_module":
        module = traced.get_submodule(node.target)
        return type(module).__name__, module
    return _op_name(node.target), node.target


def _node_flops(traced: fx.GraphModule, node: fx.Node) -> int:
    """Convolutions and linear layers: 2 x multiply-accumulates; reshapes: 0; else one per output element."""
    _, op = _describe(traced, node)
    out = node.meta["tensor_meta"].shape.numel()
    if isinstance(op, nn.Conv2d):
        return 2 * out * (op.in_channels // op.groups) * math.prod(op.kernel_size)
    if isinstance(op, nn.Linear):
        return 2 * out * op.in_features
    if isinstance(op, _FREE_MODULES) or (not isinstance(op, nn.Module) and op in _FREE_FUNCTIONS):
        return 0
    return out


def _analyse(model: nn.Module, input_shape):
    """The traced model and every node's split point, or ``None`` plus the tensors that cross."""
    label = _label(model)
    traced = trace(model)
    _propagate_shapes(traced, label, input_shape)
    nodes = list(traced.graph.nodes)
    position = {node: i for i, node in enumerate(nodes)}
    last_use = {node: max((position[user] for user in node.users), default=-1) for node in nodes}
    flops = params = 0
    seen_modules = set()
    analysed = {}
    for i, node in enumerate(nodes):
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        flops += _node_flops(traced, node)
        if node.op == "call_module" and node.target not in seen_modules:
            seen_modules.add(node.target)
            params += sum(p.numel() for p in traced.get_submodule(node.target).parameters())
        crossing = [n for n in nodes[: i + 1] if n.op != "get_attr" and last_use[n] > i]
        if crossing != [node]:
            analysed[node.name] = (None, crossing)
            continue
        shape = tuple(node.meta["tensor_meta"].shape[1:])
        point = SplitPoint(node.name, _describe(traced, node)[0], shape, 4 * math.prod(shape), flops, params)
        analysed[node.name] = (point, crossing)
    return traced, analysed


def split_points(model: nn.Module, input_shape) -> list[SplitPoint]:
    """Every node where exactly one tensor crosses from device to cloud, in graph order."""
    _, analysed = _analyse(model, input_shape)
    return [point for point, _ in analysed.values() if point is not None]


def split_model(model: nn.Module, name: str, input_shape) -> SplitParts:
    """Cut ``model`` after node ``name``: the device runs up to and including it, the cloud the rest."""
    traced, analysed = _analyse(model, input_shape)
    valid = [point.name for point, _ in analysed.values() if point is not None]
    if name not in analysed:
        raise unknown(f"{_label(model)} split point", name, valid)
    point, crossing = analysed[name]
    if point is None:
        raise EdgekitError(
            f"cannot split {_label(model)} at {name!r}: {len(crossing)} tensors cross "
            f"({', '.join(n.name for n in crossing)}); valid split points: {', '.join(valid)}")
    cut = next(node for node in traced.graph.nodes if node.name == name)
    device = _part(traced, _device_graph(traced.graph, cut), "DevicePart")
    cloud = _part(traced, _cloud_graph(traced.graph, cut), "CloudPart")
    return SplitParts(device, cloud, point.shape, point)


def _part(traced: fx.GraphModule, graph: fx.Graph, class_name: str) -> fx.GraphModule:
    part = fx.GraphModule(traced, graph, class_name)
    part.graph.eliminate_dead_code()
    part.graph.lint()
    part.recompile()
    part.delete_all_unused_submodules()
    return part.train(traced.training)


def _device_graph(source: fx.Graph, cut: fx.Node) -> fx.Graph:
    graph, env = fx.Graph(), {}
    for node in source.nodes:
        env[node] = graph.node_copy(node, env.__getitem__)
        if node is cut:
            break
    graph.output(env[cut])
    return graph


def _cloud_graph(source: fx.Graph, cut: fx.Node) -> fx.Graph:
    graph = fx.Graph()
    env = {cut: graph.placeholder("feature")}
    after = False
    for node in source.nodes:
        if after or node.op == "get_attr":
            env[node] = graph.node_copy(node, env.__getitem__)
        after = after or node is cut
    return graph
