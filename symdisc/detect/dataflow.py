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
"""

from __future__ import annotations

import operator

import torch

from symdisc.detect.coords import Coordinates
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
LINEAR_SCALE_OPS = {"neg", "mul", "div"}  # with a number or an untracked tensor
REDUCE_OPS = {"sum", "mean", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
              "adaptive_avg_pool3d"}
MAX_OPS = {"amax", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "max_pool2d_with_indices", "max_pool1d_with_indices", "max_pool3d_with_indices",
           "adaptive_max_pool2d_with_indices"}
CONSTANT_OPS = {"arange", "ones", "zeros", "full", "empty", "tril", "triu", "ones_like", "zeros_like", "full_like",
                "scalar_tensor", "eye", "sym_size", "logical_not", "bitwise_not", "eq", "ne", "lt", "le", "gt", "ge",
                "randn", "rand"}


class ParamRef:
    """A parameter tensor (or a transposed view of one) flowing through the graph."""

    def __init__(self, name: str, perm: tuple[int, ...], frozen: bool):
        self.name, self.perm, self.frozen = name, perm, frozen

    def axis(self, view_axis: int) -> int:
        """The parameter's own axis that the view's ``view_axis`` is."""
        return self.perm[view_axis % len(self.perm)]


def _opname(node) -> str:
    if node.target is operator.getitem:
        return "getitem"
    return getattr(node.target, "_opname", None) or getattr(node.target, "__name__", str(node.target))


def _val(node):
    return node.meta.get("val") if hasattr(node, "meta") else None


class Dataflow:
    """Run the shadow interpretation of ``traced``; results in ``self.coords`` and ``self.notes``."""

    def __init__(self, traced: Traced):
        self.traced = traced
        self.coords = Coordinates()
        self.env: dict[str, object] = {}
        self.poisoned: set[str] = set()
        self.consumer_bias: dict[str, str | None] = {}  # consuming weight → its layer's bias (bias shifts)
        self.made_by: dict[str, str] = {}  # node → the weight of the x @ W that made it (a later + b is its bias)
        self.norms: list[dict] = []  # layer norms: node, gamma, beta, output coordinates, normalised coordinates
        self.scales: set[str] = set()  # parameters that produce coordinates multiplicatively (norm weights)
        self.notes: list[str] = []
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

    # ---- helpers -------------------------------------------------------------------------------------------
    def _ids(self, a):
        """The shadow of an argument: a LongTensor, a ParamRef, a list of them, or the literal."""
        if isinstance(a, torch.fx.Node):
            return self.env.get(a.name)
        if isinstance(a, (list, tuple)):
            return type(a)(self._ids(x) for x in a)
        return a

    def _blank(self, node):
        v = _val(node)
        if isinstance(v, torch.Tensor):
            return torch.full(tuple(v.shape), -1, dtype=torch.long)
        if isinstance(v, (list, tuple)):
            return [torch.full(tuple(t.shape), -1, dtype=torch.long) if isinstance(t, torch.Tensor) else None
                    for t in v]
        return None

    def _present(self, t) -> list[int]:
        if not isinstance(t, torch.Tensor):
            return []
        return [int(x) for x in torch.unique(t) if x >= 0]

    def _kill(self, t, why: str) -> None:
        for x in self._present(t):
            self.coords.kill(x, why)

    def _restrict(self, t, level: int, nonlinear: bool) -> None:
        for x in self._present(t):
            self.coords.restrict(x, level, nonlinear)

    def _channel(self, t: torch.Tensor, axis: int) -> torch.Tensor | None:
        """The coordinate of each position along ``axis`` if it is the same at every other index, else None."""
        moved = t.movedim(axis, -1).reshape(-1, t.shape[axis])
        if moved.shape[0] == 0:
            return None
        first = moved[0]
        return first if bool((moved == first).all()) else None

    def _produce(self, param: ParamRef | None, axis_in_param: int, n: int, level: int = 0):
        """Fresh coordinates along an output axis of size n, produced by ``param``'s axis."""
        ids = self.coords.new(n, level)
        if param is not None:
            if param.frozen or param.name in self.poisoned:
                for x in ids:
                    self.coords.kill(x, f"produced by {param.name}, which is frozen or used elsewhere")
            for pos, x in enumerate(ids):
                self.coords.attach(x, param.name, axis_in_param, pos, "produces")
        return torch.tensor(ids, dtype=torch.long)

    def _consume(self, ids: torch.Tensor | None, param: ParamRef, axis_in_param: int) -> None:
        if ids is None:
            return
        for pos, x in enumerate(ids.tolist()):
            if x >= 0:
                self.coords.attach(x, param.name, axis_in_param, pos, "consumes")
                if param.frozen:
                    self.coords.kill(x, f"consumed by frozen {param.name}")

    def _poison(self, args, why: str) -> None:
        for a in args:
            if isinstance(a, ParamRef):
                self.poisoned.add(a.name)
            elif isinstance(a, (list, tuple)):
                self._poison(a, why)
            elif isinstance(a, torch.Tensor):
                self._kill(a, why)

    @staticmethod
    def _broadcast(shape, t: torch.Tensor) -> torch.Tensor:
        return t.expand(shape) if t.dim() <= len(shape) else t

    # ---- the interpreter -----------------------------------------------------------------------------------
    def _step(self, node) -> None:
        tr = self.traced
        if node.op == "placeholder":
            v = _val(node)
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
        name = _opname(node)
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

    def _unknown(self, node, name, args, kwargs):
        self.unknown.add(name)
        self._poison(list(args) + list(kwargs.values()), f"read by an op detection does not know ({name})")
        self.env[node.name] = self._blank(node)

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

    # ---- layers with parameters -----------------------------------------------------------------------------
    def _op_linear(self, node, args, kwargs):
        x, W = args[0], args[1]
        b = args[2] if len(args) > 2 else kwargs.get("bias")
        if not isinstance(W, ParamRef) or isinstance(x, ParamRef):
            return self._unknown(node, "linear", args, kwargs) or self._blank(node)
        ch = self._channel(x, -1)
        if ch is None:
            self._kill(x, "a linear layer reads it with position-dependent coordinates")
        else:
            self._consume(ch, W, W.axis(1))
        self.consumer_bias[W.name] = b.name if isinstance(b, ParamRef) else None
        out_shape = tuple(_val(node).shape)
        ids = self._produce(W, W.axis(0), out_shape[-1])
        if isinstance(b, ParamRef):
            for pos, c in enumerate(ids.tolist()):
                self.coords.attach(c, b.name, 0, pos, "produces")
        return ids.expand(out_shape).clone()

    def _op_matmul(self, node, args, kwargs):
        a, b = args
        out_shape = tuple(_val(node).shape)
        if isinstance(b, ParamRef) and not isinstance(a, ParamRef) and len(b.perm) == 2:  # x @ W, W: (in, out)
            ch = self._channel(a, -1)
            if ch is None:
                self._kill(a, "a matmul reads it with position-dependent coordinates")
            else:
                self._consume(ch, b, b.axis(0))
            self.consumer_bias[b.name] = None
            self.made_by[node.name] = b.name
            return self._produce(b, b.axis(1), out_shape[-1]).expand(out_shape).clone()
        if isinstance(a, ParamRef) or isinstance(b, ParamRef):
            return self._unknown(node, "matmul", args, kwargs) or self._blank(node)
        return self._contract(node, a, b, out_shape)

    _op_mm = _op_matmul
    _op_bmm = _op_matmul

    def _contract(self, node, a: torch.Tensor, b: torch.Tensor, out_shape):
        """out[..., i, j] = Σ_k a[..., i, k] b[..., k, j] for two hidden (or constant) tensors."""
        if a.dim() < 2 or b.dim() < 2:
            return self._unknown(node, "matmul", [a, b], {}) or self._blank(node)
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = a.expand(*batch, *a.shape[-2:])
        b = b.expand(*batch, *b.shape[-2:])
        a_k, a_i = self._varies(a, -1), self._varies(a, -2)
        b_k, b_j = self._varies(b, -2), self._varies(b, -1)
        if (a >= 0).any() and a_k and a_i:
            self._kill(a, "a contraction reads it along two axes")
            a_k = a_i = False
        if (b >= 0).any() and b_k and b_j:
            self._kill(b, "a contraction reads it along two axes")
            b_k = b_j = False
        if a_k and b_k:  # q kᵀ: the contracted coordinates pair contragrediently
            pa, pb = a[..., 0, :], b[..., :, 0]
            for x, y in zip(pa.reshape(-1).tolist(), pb.reshape(-1).tolist(), strict=True):
                if x >= 0 and y >= 0:
                    self.coords.link(x, y, 1)
                elif x >= 0 or y >= 0:
                    self.coords.kill(max(x, y), "contracted with a constant")
        elif a_k or b_k:
            self._kill(a if a_k else b, "contracted with a constant tensor")
        self._batch_labels(node, "a", a)
        self._batch_labels(node, "b", b)
        rows = a[..., :, 0] if not a_k else torch.full(a.shape[:-1], -1, dtype=torch.long)
        cols = b[..., 0, :] if not b_k else torch.full(b.shape[:-2] + b.shape[-1:], -1, dtype=torch.long)
        if (rows >= 0).any() and (cols >= 0).any():
            self._kill(rows, "a product of two hidden tensors")
            self._kill(cols, "a product of two hidden tensors")
        out = torch.maximum(rows.unsqueeze(-1).expand(*batch, rows.shape[-1], cols.shape[-1]),
                            cols.unsqueeze(-2).expand(*batch, rows.shape[-1], cols.shape[-1]))
        return out.reshape(out_shape)

    @staticmethod
    def _varies(t: torch.Tensor, axis: int) -> bool:
        """Whether the coordinates change along ``axis`` (then it is the axis they live on)."""
        if t.shape[axis] <= 1 or not (t >= 0).any():
            return False
        ref = t.narrow(axis % t.dim(), 0, 1)
        return bool((t != ref).any())

    def _batch_labels(self, node, side: str, t: torch.Tensor) -> None:
        """Coordinates in different slices of a batched contraction never mix (one attention head each)."""
        if t.dim() <= 2 or not (t >= 0).any():
            return
        lead = t.reshape(*t.shape[:-2], -1)
        for axis in range(lead.dim() - 1):
            if not self._varies(lead, axis):
                continue
            moved = lead.movedim(axis, 0)
            for i in range(moved.shape[0]):
                for x in self._present(moved[i]):
                    self.coords.label(x, (node.name, side, axis, i))

    def _op_scaled_dot_product_attention(self, node, args, kwargs):
        q, k, v = args[:3]
        if any(isinstance(t, ParamRef) for t in (q, k, v)):
            return self._unknown(node, "scaled_dot_product_attention", args, kwargs) or self._blank(node)
        self._contract(node, q, k.transpose(-2, -1), tuple(q.shape[:-1]) + (k.shape[-2],))
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        if isinstance(mask, torch.Tensor):
            self._kill(mask, "an attention mask")
        if self._varies(v, -2):
            self._kill(v, "attention reads values along the time axis")
        self._batch_labels(node, "v", v)
        out_shape = tuple(_val(node).shape)
        return v[..., :1, :].expand(*out_shape).clone() if v.shape[-1] == out_shape[-1] else self._blank(node)

    def _op_embedding(self, node, args, kwargs):
        W = args[0]
        if not isinstance(W, ParamRef):
            return self._unknown(node, "embedding", args, kwargs) or self._blank(node)
        out_shape = tuple(_val(node).shape)
        if isinstance(node.args[1], torch.fx.Node) and node.args[1].name in self._from_data:
            self.data_indexed.add(W.name)
        ids = self._produce(W, W.axis(1), out_shape[-1])
        self.embeddings.setdefault(W.name, ids.tolist())
        return ids.expand(out_shape).clone()

    def _op_conv(self, node, args, kwargs, transposed: bool = False):
        x, W = args[0], args[1]
        b = args[2] if len(args) > 2 else None
        groups = node.args[-1] if isinstance(node.args[-1], int) else 1
        if not isinstance(W, ParamRef) or isinstance(x, ParamRef) or transposed:
            return self._unknown(node, "conv", args, kwargs) or self._blank(node)
        ch = self._channel(x, 1)
        if groups != 1 or ch is None:
            self._kill(x, "a grouped convolution or position-dependent channels")
        else:
            self._consume(ch, W, 1)
        self.consumer_bias[W.name] = b.name if isinstance(b, ParamRef) else None
        out_shape = tuple(_val(node).shape)
        ids = self._produce(W, 0, out_shape[1])
        if isinstance(b, ParamRef):
            for pos, c in enumerate(ids.tolist()):
                self.coords.attach(c, b.name, 0, pos, "produces")
        view = [1] * len(out_shape)
        view[1] = out_shape[1]
        return ids.reshape(view).expand(out_shape).clone()

    def _op_conv1d(self, node, args, kwargs):
        return self._op_conv(node, args, kwargs)

    _op_conv2d = _op_conv1d
    _op_conv3d = _op_conv1d

    def _op_convolution(self, node, args, kwargs):
        return self._op_conv(node, args, kwargs, transposed=bool(node.args[6]))

    def _op_layer_norm(self, node, args, kwargs):
        x, shape = args[0], args[1]
        w = args[2] if len(args) > 2 else kwargs.get("weight")
        b = args[3] if len(args) > 3 else kwargs.get("bias")
        return self._norm(node, x, len(shape), w, b, "layer_norm", mean=True)

    def _op_rms_norm(self, node, args, kwargs):
        x, shape = args[0], args[1]
        w = args[2] if len(args) > 2 else kwargs.get("weight")
        return self._norm(node, x, len(shape), w, None, "rms_norm", mean=False)

    def _norm(self, node, x, ndims: int, w, b, kind: str, mean: bool):
        """y = γ ⊙ N(x) + β over the last ``ndims`` axes: x's coordinates end here (N is invariant to
        x ↦ x + c·1 when ``mean``); γ, β produce fresh coordinates a positive diagonal g may rescale."""
        out_shape = tuple(_val(node).shape)
        normed = None
        if isinstance(x, torch.Tensor):
            ch = self._channel(x, -1) if ndims == 1 else None
            normed = ch
            for c in self._present(x):
                self.coords.cls(c).consumers.add(f"{kind}:{node.name}" if ch is not None else kind)
                self.coords.kill(c, f"normalised by {kind}")
        params = [p for p in (w, b) if isinstance(p, ParamRef)]
        tag = f"{kind}:{node.name}"
        if ndims != 1 or not params:
            self.norms.append({"node": node.name, "gamma": getattr(w, "name", None), "beta": getattr(b, "name", None),
                               "coords": None, "normed": normed, "mean": mean, "tag": tag})
            return self._blank(node)
        ids = self._produce(params[0], 0, out_shape[-1], level=1)
        if isinstance(w, ParamRef):
            self.scales.add(w.name)
        for p in params[1:]:
            for pos, c in enumerate(ids.tolist()):
                self.coords.attach(c, p.name, 0, pos, "produces")
        self.norms.append({"node": node.name, "gamma": getattr(w, "name", None), "beta": getattr(b, "name", None),
                           "coords": ids.tolist(), "normed": normed, "mean": mean, "tag": tag})
        return ids.expand(out_shape).clone()

    def _op_batch_norm(self, node, args, kwargs):
        """Batch-norm over the channel axis 1 (batch statistics): like a norm whose affine is per channel."""
        x, w, b = args[0], args[1], args[2]
        out_shape = tuple(_val(node).shape)
        if isinstance(x, torch.Tensor):
            for c in self._present(x):
                self.coords.cls(c).consumers.add("batch_norm")
                self.coords.kill(c, "normalised by batch_norm")
        params = [p for p in (w, b) if isinstance(p, ParamRef)]
        if not params:
            return self._blank(node)
        ids = self._produce(params[0], 0, out_shape[1], level=1)
        if isinstance(w, ParamRef):
            self.scales.add(w.name)
        for p in params[1:]:
            for pos, c in enumerate(ids.tolist()):
                self.coords.attach(c, p.name, 0, pos, "produces")
        view = [1] * len(out_shape)
        view[1] = out_shape[1]
        return ids.reshape(view).expand(out_shape).clone()

    _op__native_batch_norm_legit_functional = _op_batch_norm
    _op_native_batch_norm = _op_batch_norm
    _op__native_batch_norm_legit_no_training = _op_batch_norm

    def _op_group_norm(self, node, args, kwargs):
        self._kill(args[0], "normalised by group_norm")
        self._poison(args[2:4], "group_norm affine")
        return self._blank(node)

    # ---- pointwise arithmetic -------------------------------------------------------------------------------
    def _op_add(self, node, args, kwargs):
        """x + y and x − y alike: g commutes with either."""
        a, b = args[0], args[1]
        out_shape = tuple(_val(node).shape)
        if isinstance(a, ParamRef) or isinstance(b, ParamRef):
            return self._add_param(node, a, b, out_shape)
        if not isinstance(b, torch.Tensor):  # x + number
            self._kill(a, "a constant is added")
            return a.clone()
        A, B = self._broadcast(out_shape, a), self._broadcast(out_shape, b)
        both = (A >= 0) & (B >= 0)
        for x, y in zip(A[both].tolist(), B[both].tolist(), strict=True):
            self.coords.link(x, y, 0)
        only = (A >= 0) ^ (B >= 0)
        self._kill(torch.where(only, torch.maximum(A, B), -1), "a constant is added")
        return torch.maximum(A, B).clone()

    def _op_sub(self, node, args, kwargs):
        return self._op_add(node, args, kwargs)

    def _add_param(self, node, a, b, out_shape):
        """x + b with b a bias parameter: b produces x's coordinates along its axis."""
        x, p = (a, b) if isinstance(b, ParamRef) else (b, a)
        if not isinstance(x, torch.Tensor) or isinstance(x, ParamRef) or len(p.perm) != 1:
            self._poison([a, b], "added in an unrecognised way")
            return self._blank(node)
        ch = self._channel(self._broadcast(out_shape, x), -1)
        if ch is None or (ch < 0).any():
            self._kill(x, "a parameter is added to it")
            self.poisoned.add(p.name)
            return self._blank(node)
        for pos, c in enumerate(ch.tolist()):
            self.coords.attach(c, p.name, 0, pos, "produces")
        source = next((a.name for a in node.args if isinstance(a, torch.fx.Node) and a.name in self.made_by), None)
        if source is not None:
            self.consumer_bias[self.made_by[source]] = p.name
        return self._broadcast(out_shape, x).clone()

    def _op_mul(self, node, args, kwargs):
        a, b = args[0], args[1]
        out_shape = tuple(_val(node).shape)
        if isinstance(a, ParamRef) or isinstance(b, ParamRef):
            x, p = (a, b) if isinstance(b, ParamRef) else (b, a)
            if isinstance(x, torch.Tensor) and not (x >= 0).any() and len(p.perm) == 1 and not p.frozen:
                # γ ⊙ x̂ with x̂ free of coordinates: γ produces a rescalable axis
                self.scales.add(p.name)
                ids = self._produce(p, 0, out_shape[-1], level=1)
                src = next((n.name for n in node.args if isinstance(n, torch.fx.Node) and n.name in self.normalised),
                           None)
                if src is not None:  # the affine weight of a written-out RMS norm: its output is this node
                    rec = self.normalised.pop(src)
                    rec.update(node=node.name, gamma=p.name, coords=ids.tolist())
                    self.normalised[node.name] = rec
                return ids.expand(out_shape).clone()
            self._poison([a, b], "multiplied in an unrecognised way")
            self._kill(x, "multiplied by a parameter")
            return self._blank(node)
        if not isinstance(b, torch.Tensor) or not isinstance(a, torch.Tensor):
            return (a if isinstance(a, torch.Tensor) else b).clone()  # times a number: linear
        A, B = self._broadcast(out_shape, a), self._broadcast(out_shape, b)
        if (A >= 0).any() and (B >= 0).any():
            return self._gate(A, B)
        x, factor = (A, b) if (A >= 0).any() else (B, a)
        other = node.args[1] if x is A else node.args[0]
        if isinstance(other, torch.fx.Node) and other.name in self.norm_of and \
                {self.coords.find(c)[0] for c in self._present(x)} <= self.norm_of[other.name]:
            return self._rms(node, x)
        varying = [d for d in range(x.dim()) if self._varies(x, d)]
        lead = x.dim() - factor.dim()
        if any(d >= lead and factor.shape[d - lead] != 1 for d in varying):
            self._restrict(x, 1, nonlinear=True)  # a factor varying along the coordinates: diagonal g only
        return x.clone()

    def _gate(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """a ⊙ b of two hidden tensors (a gated unit, SwiGLU's silu(W₁y) ⊙ W₃y): when one side can no longer be
        rescaled (after a non-homogeneous map), the product carries the other side's coordinates, rescalable
        by a positive diagonal g only; otherwise neither survives."""
        fixed = [all(self.coords.cls(c).level >= 2 for c in self._present(t)) for t in (A, B)]
        if fixed[0] != fixed[1] and bool(((A >= 0) == (B >= 0)).all()):
            live, dead = (B, A) if fixed[0] else (A, B)
            self._kill(dead, "gates another hidden tensor")
            self._restrict(live, 1, nonlinear=True)
            return live.clone()
        self._kill(A, "a product of two hidden tensors")
        self._kill(B, "a product of two hidden tensors")
        return torch.full_like(A, -1)

    def _rms(self, node, x: torch.Tensor) -> torch.Tensor:
        """x · r(‖x‖) — an RMS norm written out (x · rsqrt(mean(x²) + ε)): x's coordinates end in a norm that a
        rotation of them keeps; the (untracked) result may then be scaled by an affine weight."""
        normed = self._channel(x, -1)
        for c in self._present(x):
            self.coords.cls(c).consumers.add(f"rms_norm:{node.name}")
            self.coords.kill(c, "normalised by an RMS norm")
        rec = {"node": node.name, "gamma": None, "beta": None, "coords": None, "normed": normed, "mean": False,
               "tag": f"rms_norm:{node.name}"}
        self.norms.append(rec)
        self.normalised[node.name] = rec
        return torch.full(tuple(_val(node).shape), -1, dtype=torch.long)

    def _op_div(self, node, args, kwargs):
        a, b = args[0], args[1]
        if isinstance(b, torch.Tensor) and (b >= 0).any() or isinstance(b, ParamRef) or isinstance(a, ParamRef):
            self._poison([a, b], "a division by a hidden tensor")
            return self._blank(node)
        return self._op_mul(node, [a, b], kwargs)

    def _op_neg(self, node, args, kwargs):
        if isinstance(args[0], ParamRef):
            self._poison(args, "negated parameter")
            return self._blank(node)
        return args[0].clone()

    def _op_softmax(self, node, args, kwargs):
        x = args[0]
        if isinstance(x, torch.Tensor) and (x >= 0).any():
            for c in self._present(x):
                self.coords.cls(c).consumers.add("softmax")
            self._kill(x, "normalised by a softmax")
        return self._blank(node)

    _op__softmax = _op_softmax
    _op_log_softmax = _op_softmax
    _op__log_softmax = _op_softmax

    def _op_masked_fill(self, node, args, kwargs):
        x = args[0]
        if isinstance(x, torch.Tensor) and (x >= 0).any():
            self._kill(x, "masked_fill with a constant")
        return self._blank(node) if not isinstance(x, torch.Tensor) else x.clone()

    def _op_where(self, node, args, kwargs):
        for t in args[1:]:
            if isinstance(t, torch.Tensor):
                self._kill(t, "selected by where")
            elif isinstance(t, ParamRef):
                self.poisoned.add(t.name)
        return self._blank(node)

    # ---- reductions and pooling -----------------------------------------------------------------------------
    def _reduce(self, node, x, dims, level: int, out_shape: tuple[int, ...] | None = None):
        """A reduction or pooling over ``dims``: equivariant when no coordinate varies along them (each output
        mixes one coordinate's entries); a max commutes with a positive diagonal g only (``level`` 1)."""
        out_shape = tuple(_val(node).shape) if out_shape is None else out_shape
        blank = torch.full(out_shape, -1, dtype=torch.long)
        if isinstance(x, ParamRef):
            self._poison([x], "reduced")
            return blank
        if not (x >= 0).any():
            return blank
        dims = [d % x.dim() for d in dims]
        keep = [d for d in range(x.dim()) if d not in dims]
        if any(self._varies(x, d) for d in dims):
            self._kill(x, "summed over coordinates")
            self.norm_of[node.name] = {self.coords.find(c)[0] for c in self._present(x)}
            return blank
        self._restrict(x, level, nonlinear=level > 0)
        sliced = x
        for d in sorted(dims, reverse=True):
            sliced = sliced.narrow(d, 0, 1)
        sliced = sliced.reshape([x.shape[d] for d in keep]) if len(out_shape) == len(keep) else sliced
        if tuple(sliced.shape) == out_shape:
            return sliced.clone()
        ch = self._channel(x, 1) if x.dim() > 1 else None
        if ch is not None and len(out_shape) > 1 and out_shape[1] == ch.numel():  # pooling keeps the channel axis
            view = [1] * len(out_shape)
            view[1] = ch.numel()
            return ch.reshape(view).expand(out_shape).clone()
        self._kill(x, "a reduction detection cannot follow")
        return blank

    def _op_sum(self, node, args, kwargs):
        dims = args[1] if len(args) > 1 and args[1] is not None else list(range(args[0].dim()))
        return self._reduce(node, args[0], [dims] if isinstance(dims, int) else list(dims), 0)

    _op_mean = _op_sum

    def _op_amax(self, node, args, kwargs):
        dims = args[1] if len(args) > 1 else list(range(args[0].dim()))
        return self._reduce(node, args[0], [dims] if isinstance(dims, int) else list(dims), 1)

    def _pool(self, node, args, kwargs, level: int):
        """Pooling over the spatial axes 2, …; variants returning (values, indices) keep the values' coordinates."""
        x, out = args[0], _val(node)
        spatial = list(range(2, x.dim())) if isinstance(x, torch.Tensor) else []
        if isinstance(out, (list, tuple)):
            return [self._reduce(node, x, spatial, level, tuple(out[0].shape)),
                    torch.full(tuple(out[1].shape), -1, dtype=torch.long)]
        return self._reduce(node, x, spatial, level)

    def _op_avg_pool2d(self, node, args, kwargs):
        return self._pool(node, args, kwargs, 0)

    _op_avg_pool1d = _op_avg_pool2d
    _op_avg_pool3d = _op_avg_pool2d
    _op_adaptive_avg_pool1d = _op_avg_pool2d
    _op_adaptive_avg_pool2d = _op_avg_pool2d
    _op_adaptive_avg_pool3d = _op_avg_pool2d
    _op__adaptive_avg_pool2d = _op_avg_pool2d

    def _op_max_pool2d(self, node, args, kwargs):
        return self._pool(node, args, kwargs, 1)

    _op_max_pool1d = _op_max_pool2d
    _op_max_pool3d = _op_max_pool2d
    _op_max_pool2d_with_indices = _op_max_pool2d
    _op_adaptive_max_pool2d = _op_max_pool2d
