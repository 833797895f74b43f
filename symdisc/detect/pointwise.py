"""Shadow handlers of pointwise arithmetic, softmax, masking, reductions and pooling (see ``dataflow.py``)."""

from __future__ import annotations

import torch

from symdisc.detect.shadow import ParamRef, Shadow, meta_value


class PointwiseOps(Shadow):
    """Sums link coordinates, products and nonlinearities restrict their group, reductions must not mix them."""

    # ---- pointwise arithmetic -------------------------------------------------------------------------------
    def _op_add(self, node, args, kwargs):
        """x + y and x − y alike: g commutes with either."""
        a, b = args[0], args[1]
        out_shape = tuple(meta_value(node).shape)
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
        out_shape = tuple(meta_value(node).shape)
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
        return torch.full(tuple(meta_value(node).shape), -1, dtype=torch.long)

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
        out_shape = tuple(meta_value(node).shape) if out_shape is None else out_shape
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
        x, out = args[0], meta_value(node)
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
