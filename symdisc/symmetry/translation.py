"""Translations θ ↦ θ + V c along constant directions V ∈ ℝ^{p×k} (an abelian group (ℝ^k, +)).

Softmax translation (Table 1.1): logits z = W x + b with softmax over the class axis are
unchanged by W ↦ W + 1 vᵀ, b ↦ b + c·1, since z ↦ z + (vᵀx + c)·1.  The field ξ_v = 1 vᵀ is
constant, so the action is affine, not linear, in θ.  Only the loss (cross-entropy of the
softmax) is preserved, not the logits f(θ, X).  Batch-norm also makes the preceding bias a
translation symmetry (b_i ↦ b_i + c_i is removed by the mean subtraction).
"""

from __future__ import annotations

import torch

from symdisc.layout import ParamLayout
from symdisc.symmetry.base import Level, Symmetry


class TranslationSymmetry(Symmetry):
    """a(c, θ) = θ + V c; V's columns are built once from the layout (float64)."""

    def __init__(self, layout: ParamLayout, directions: torch.Tensor, name: str, preserves: Level, source=""):
        super().__init__(layout)
        self.directions = directions.to(torch.float64)
        self.name, self.preserves, self.source = name, preserves, source
        self.num_generators = directions.shape[1]

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return self.directions.T.to(dtype=dtype, device=device)

    def act(self, coeffs, theta, X=None):
        V = self.directions.to(dtype=theta.dtype, device=theta.device)
        return theta + V @ coeffs.to(dtype=theta.dtype, device=theta.device)

    def describe(self) -> dict:
        return {**super().describe(), "group": "translation", "source": self.source}


def softmax_translation(layout: ParamLayout, weight: str, bias: str | None = None) -> TranslationSymmetry:
    """W ↦ W + 1 vᵀ (and b ↦ b + c 1) for logits W x + b normalised by softmax over classes."""
    C, n = layout.shape(weight)
    k = n + (bias is not None)
    V = torch.zeros(layout.num_params, k, dtype=torch.float64)
    sl = layout.slice(weight)
    block = V[sl].view(C, n, k)
    for j in range(n):
        block[:, j, j] = 1.0
    if bias is not None:
        V[layout.slice(bias), n] = 1.0
    return TranslationSymmetry(layout, V, f"softmax-translation({weight})", "loss",
                               source="Table 1.1 / Ex. 1.2.8 (softmax over classes, per sample)")


def bias_translation(layout: ParamLayout, bias: str, name: str | None = None) -> TranslationSymmetry:
    """b ↦ b + c (each coordinate): the bias before a batch-norm (mean subtraction removes it)."""
    V = torch.zeros(layout.num_params, layout.shape(bias)[0], dtype=torch.float64)
    sl = layout.slice(bias)
    V[sl] = torch.eye(sl.stop - sl.start, dtype=torch.float64)
    return TranslationSymmetry(layout, V, name or f"bias-translation({bias})", "output",
                               source="batch-norm mean subtraction")


class HiddenBiasShift(Symmetry):
    """Affine re-centring of a linear hidden layer: b_j ↦ b_j + v, b_{j+1} ↦ b_{j+1} − W_{j+1} v.

    With σ = id, W_{j+1}(z + v) + b_{j+1} − W_{j+1} v is unchanged; W_{j+1} is untouched, so
    the shifts compose additively (the translation part of Aff(h) = GL_h ⋉ ℝ^h).  ``positions_in`` /
    ``positions_out`` restrict the shift to entries of b_j and columns of W_{j+1} (one head of a fused
    projection); ``more`` lists further consumers (W, b, columns) read from the same coordinates.
    """

    def __init__(self, layout: ParamLayout, b_in: str, b_out: str, w_out: str,
                 positions_in: tuple[int, ...] | None = None, positions_out: tuple[int, ...] | None = None,
                 more: list[tuple[str, str, tuple[int, ...]]] | None = None):
        super().__init__(layout)
        self.b_in = b_in
        n = layout.shape(b_in)[0]
        self.positions_in = tuple(range(n)) if positions_in is None else tuple(positions_in)
        cols = tuple(range(layout.shape(w_out)[1])) if positions_out is None else tuple(positions_out)
        self.consumers = [(w_out, b_out, cols)] + list(more or [])
        self.b_out, self.w_out = b_out, w_out
        self.num_generators = len(self.positions_in)
        self.name = f"bias-shift({b_in})"
        self.source = "affine layers compose (σ = id with biases)"

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return torch.eye(self.num_generators, dtype=dtype, device=device)

    def act(self, coeffs, theta, X=None):
        v = coeffs.to(dtype=theta.dtype, device=theta.device)
        params = dict(self.layout.unflatten(theta))
        for W, b, cols in self.consumers:
            params[b] = params[b] - params[W][:, list(cols)] @ v
        params[self.b_in] = params[self.b_in].index_add(0, torch.tensor(self.positions_in, device=theta.device), v)
        return self.layout.flatten(params)

    def describe(self) -> dict:
        return {**super().describe(), "group": "translation",
                "acts_on": [self.b_in] + [name for W, b, _ in self.consumers for name in (b,)],
                "source": self.source}
