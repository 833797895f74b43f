"""Shadow handlers of layers with parameters and of contractions: linear, matmul, attention, embedding,
convolution, layer / RMS / batch norm (see ``dataflow.py`` for the rules)."""

from __future__ import annotations

import torch

from symdisc.detect.shadow import ParamRef, Shadow, meta_value


class LayerOps(Shadow):
    """Layers consume their input's coordinates with a weight axis and produce fresh ones with another."""

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
        out_shape = tuple(meta_value(node).shape)
        ids = self._produce(W, W.axis(0), out_shape[-1])
        if isinstance(b, ParamRef):
            for pos, c in enumerate(ids.tolist()):
                self.coords.attach(c, b.name, 0, pos, "produces")
        return ids.expand(out_shape).clone()

    def _op_matmul(self, node, args, kwargs):
        a, b = args
        out_shape = tuple(meta_value(node).shape)
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
        out_shape = tuple(meta_value(node).shape)
        return v[..., :1, :].expand(*out_shape).clone() if v.shape[-1] == out_shape[-1] else self._blank(node)

    def _op_embedding(self, node, args, kwargs):
        W = args[0]
        if not isinstance(W, ParamRef):
            return self._unknown(node, "embedding", args, kwargs) or self._blank(node)
        out_shape = tuple(meta_value(node).shape)
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
        out_shape = tuple(meta_value(node).shape)
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
        out_shape = tuple(meta_value(node).shape)
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
        out_shape = tuple(meta_value(node).shape)
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
