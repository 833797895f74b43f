"""Dataflow of hidden coordinates through a traced ATen graph.

Each tensor in the graph gets a shadow tensor of the same shape holding, per entry, the hidden coordinate
it carries (−1: none — data, constants, quantities no parameter writes along a feature axis).  Shape ops
(view, transpose, split, cat …) are applied to the shadow as they are to the data; every other op is
interpreted by what it does to a change of basis g of the coordinates it reads:

* a layer with a parameter (linear, conv, embedding, norm affine) *consumes* its input's coordinates with
  its weight's input axis and *produces* fresh ones with its output axis (and bias);
* a contraction of two hidden tensors (q kᵀ) links the contracted coordinates contragrediently;
* a sum of two hidden tensors (a residual) links them alike; adding a constant kills them;
* pointwise maps restrict the group (ReLU: positive diagonal; GELU, tanh …: none);
* batched contractions (attention) label coordinates by their batch slice (the head), so one g never
  mixes heads; splits label the pieces (q, k, v);
* an op the analysis does not know kills every coordinate it reads, and poisons the parameters it reads:
  detection is conservative, never wrong (and every candidate is verified numerically afterwards).

The interpreter is here; the helpers in ``shadow.py``, the handlers in ``layers.py`` and ``pointwise.py``.
"""

from __future__ import annotations

import torch

from symdisc.detect.coords import Coordinates
from symdisc.detect.layers import LayerOps
from symdisc.detect.pointwise import PointwiseOps
from symdisc.detect.shadow import ParamRef, meta_value, op_name
from symdisc.detect.trace import Traced

SHAPE_OPS = {
    "view", "_unsafe_view", "reshape", "transpose", "permute", "t", "unsqueeze", "squeeze", "expand", "flatten",
    "unflatten", "contiguous", "clone", "alias", "detach", "slice", "select", "split", "split_with_sizes", "chunk",
    "unbind", "cat", "stack", "movedim", "narrow", "repeat", "lift_fresh_copy", "_to_copy", "to", "type_as",
    "expand_as", "view_as", "reshape_as", "flip", "roll",
}
IDENTITY_OPS = {"dropout", "feature_dropout", "alpha_dropout", "identity"}
DIAG_OPS = {"relu", "relu_", "leaky_relu", "abs", "hardshrink"}  # positively homogeneous of degree 1
NONLINEAR_OPS = {
    "gelu", "silu", "tanh", "sigmoid", "softplus", "elu", "selu", "celu", "mish", "exp", "log", "sin", "cos",
    "pow", "sqrt", "rsqrt", "erf", "hardtanh", "hardswish", "hardsigmoid", "log_sigmoid", "square", "reciprocal",
    "clamp", "clip", "logit", "sign", "tan", "atan", "sinh", "cosh", "softsign", "threshold", "round", "floor",
}
CONSTANT_OPS = {"arange", "ones", "zeros", "full", "empty", "tril", "triu", "ones_like", "zeros_like", "full_like",
                "scalar_tensor", "eye", "sym_size", "logical_not", "bitwise_not", "eq", "ne", "lt", "le", "gt", "ge",
                "randn", "rand"}


class Dataflow(LayerOps, PointwiseOps):
    """Run the shadow interpretation of ``traced``; the result is ``self.coords`` and the records beside it."""

    def __init__(self, traced: Traced):
        self.traced = traced
        self.coords = Coordinates()
        self.env: dict[str, object] = {}
        self.poisoned: set[str] = set()
        self.consumer_bias: dict[str, str | None] = {}  # consuming weight → its layer's bias (bias shifts)
        self.made_by: dict[str, str] = {}  # node → the weight of the x @ W that made it (a later + b is its bias)
        self.norms: list[dict] = []  # layer norms: node, gamma, beta, output coordinates, normalised coordinates
        self.scales: set[str] = set()  # parameters that produce coordinates multiplicatively (norm weights)
        self.unknown: set[str] = set()
        self.norm_of: dict[str, set[int]] = {}  # untracked tensors that are functions of a norm of these coordinates
        self.normalised: dict[str, dict] = {}  # node of x / r(x) (an RMS normalisation written out) → its record
        self.output_classes: torch.Tensor | None = None  # the coordinates along the output's last (class) axis
        self.data_indexed: set[str] = set()  # embeddings indexed by the data (their unused rows depend on X)
        self.embeddings: dict[str, list[int]] = {}  # embedding table → the coordinates its columns write
        self._from_data: set[str] = {traced.user_input}
        for node in traced.graph.nodes:
            if any(isinstance(a, torch.fx.Node) and a.name in self._from_data
                   for a in torch.utils._pytree.tree_leaves((node.args, node.kwargs))):
                self._from_data.add(node.name)
            self._step(node)

    # ---- the interpreter -----------------------------------------------------------------------------------
    def _step(self, node) -> None:
        tr = self.traced
        if node.op == "placeholder":
            v = meta_value(node)
            if node.name in tr.params:
                self.env[node.name] = ParamRef(tr.params[node.name], tuple(range(v.dim())), False)
            elif node.name in tr.frozen and isinstance(v, torch.Tensor) and node.name not in (tr.user_input,):
                self.env[node.name] = ParamRef(node.name, tuple(range(v.dim())), True)
            else:
                self.env[node.name] = self._blank(node)
            return
        if node.op == "output":
            leaves = [t for t in torch.utils._pytree.tree_leaves(self._ids(node.args)) if isinstance(t, torch.Tensor)]
            self.output_classes = self._channel(leaves[0], -1) if len(leaves) == 1 else None
            for t in leaves:
                self._kill(t, "reaches the output")
                if isinstance(t, torch.Tensor):
                    for x in self._present(t):
                        self.coords.cls(x).consumers.add("output")
            return
        if node.op != "call_function":
            self.env[node.name] = self._blank(node)
            return
        name = op_name(node)
        args = [self._ids(a) for a in node.args]
        kwargs = {k: self._ids(v) for k, v in node.kwargs.items()}
        handler = getattr(self, f"_op_{name}", None)
        if handler is not None:
            self.env[node.name] = handler(node, args, kwargs)
            self._tag_norm(node)
            return
        leaves = torch.utils._pytree.tree_leaves((args, kwargs))
        tensors = [a for a in leaves if isinstance(a, (torch.Tensor, ParamRef))]
        tracked = any(isinstance(a, ParamRef) or (a >= 0).any() for a in tensors)
        if name in CONSTANT_OPS or not tracked:
            self.env[node.name] = self._blank(node)
            self._tag_norm(node)
        elif name in SHAPE_OPS or name in IDENTITY_OPS:
            self.env[node.name] = self._shape(node, name, args, kwargs)
        elif name in DIAG_OPS or name in NONLINEAR_OPS:
            level = 1 if name in DIAG_OPS else 2
            if name == "leaky_relu" and len(node.args) > 1 and float(node.args[1]) < 0:
                level = 2
            x = args[0]
            if isinstance(x, ParamRef):
                self._poison([x], name)
                self.env[node.name] = self._blank(node)
                return
            self._restrict(x, level, nonlinear=True)
            self.env[node.name] = x.clone()
        else:
            self._unknown(node, name, args, kwargs)

    def _tag_norm(self, node) -> None:
        """An untracked result computed only from untracked tensors, one of which is a function of a norm of
        coordinates S (mean of x² over the feature axis, its rsqrt …), is one too."""
        out = self.env.get(node.name)
        if not isinstance(out, torch.Tensor) or (out >= 0).any() or node.name in self.norm_of:
            return
        tags = [self.norm_of[a.name] for a in torch.utils._pytree.tree_leaves((node.args, node.kwargs))
                if isinstance(a, torch.fx.Node) and a.name in self.norm_of]
        inputs = [self.env.get(a.name) for a in torch.utils._pytree.tree_leaves((node.args, node.kwargs))
                  if isinstance(a, torch.fx.Node)]
        if tags and not any(isinstance(t, torch.Tensor) and (t >= 0).any() for t in inputs):
            self.norm_of[node.name] = set().union(*tags)
    def _shape(self, node, name, args, kwargs):
        if any(isinstance(a, ParamRef) for a in args):
            return self._param_shape(node, name, args)
        if name in IDENTITY_OPS or name in ("_to_copy", "to", "lift_fresh_copy", "type_as"):
            return args[0].clone()
        try:
            if name in ("view", "_unsafe_view"):  # the shadow's strides differ from the data's: reshape
                return args[0].reshape(args[1])
            out = node.target(*args, **{k: v for k, v in kwargs.items() if k not in ("dtype", "memory_format",
                                                                                     "layout", "device")})
        except Exception:  # noqa: BLE001 - a shape op on the shadow that the aten overload refuses
            self._unknown(node, name, args, kwargs)
            return self._blank(node)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(outs) > 1 or name in ("slice", "select", "narrow"):
            for i, t in enumerate(outs):  # pieces of a split never share a group element
                for x in self._present(t):
                    self.coords.label(x, (node.name, i))
        return out

    def _param_shape(self, node, name, args):
        p = args[0]
        if name in ("t",) and len(p.perm) == 2:
            return ParamRef(p.name, (p.perm[1], p.perm[0]), p.frozen)
        if name == "transpose":
            perm = list(p.perm)
            a, b = args[1] % len(perm), args[2] % len(perm)
            perm[a], perm[b] = perm[b], perm[a]
            return ParamRef(p.name, tuple(perm), p.frozen)
        if name == "permute":
            return ParamRef(p.name, tuple(p.perm[i] for i in args[1]), p.frozen)
        if name in ("_to_copy", "to", "contiguous", "clone", "alias", "detach", "lift_fresh_copy"):
            return p
        self.poisoned.add(p.name)  # reshaped / sliced parameters: not followed
        return self._blank(node)

    # ---- getitem of multi-output ops ------------------------------------------------------------------------
    def _op_getitem(self, node, args, kwargs):
        seq, i = args
        if isinstance(seq, (list, tuple)):
            return seq[i]
        return self._blank(node)
