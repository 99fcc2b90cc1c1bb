"""Graph rewrites for the reduced-precision (bf16/fp16) path.

Two fixes keep bf16 within the quality bound (cosine >= 0.99 to fp32 on real photos; what each
gains: docs/constants.md):

- BatchNorm folded into the convolution before it. Unfolded, a bf16 convolution rounds outputs of
  magnitude ~100 to 8 mantissa bits and BatchNorm then subtracts a mean of the same size: the
  difference keeps little of its precision. Folded, the subtraction happens inside the fp32 accumulator.
- The first convolution (the stem) kept in fp32: it sees the raw normalised pixels through weights
  scaled up by its BatchNorm, so input rounding is amplified most there; it is a few % of the FLOPs.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


class _ConvLeafTracer(fx.Tracer):
    """Traces into custom modules but keeps every Conv2d (subclasses too) and BatchNorm2d whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, nn.Conv2d | nn.BatchNorm2d) or super().is_leaf_module(m, module_qualified_name)


class Fp32Island(nn.Module):
    """Runs the wrapped module in fp32 with autocast off; the next layer casts back down."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.inner(x.float())


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """A copy of `model` with each BatchNorm2d that alone follows a Conv2d folded into that conv."""
    tracer = _ConvLeafTracer()
    root = copy.deepcopy(model).eval()
    gm = fx.GraphModule(root, tracer.trace(root))
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        source = node.args[0]
        if not (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1):
            continue
        conv, bn = modules[source.target], modules[node.target]
        if not isinstance(conv, nn.Conv2d):
            continue
        conv.weight, conv.bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
        node.replace_all_uses_with(source)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def stem_in_fp32(gm: fx.GraphModule) -> fx.GraphModule:
    """Wrap the first convolution the graph calls in an Fp32Island (in place)."""
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.Conv2d):
            parent_name, _, child = node.target.rpartition(".")
            parent = gm.get_submodule(parent_name) if parent_name else gm
            setattr(parent, child, Fp32Island(getattr(parent, child)))
            return gm
    raise ValueError("the model has no Conv2d to keep in fp32")


def for_reduced_precision(model: nn.Module) -> fx.GraphModule:
    """The model as the bf16/fp16 path runs it: BatchNorm folded, stem in fp32."""
    return stem_in_fp32(fold_batchnorm(model))
