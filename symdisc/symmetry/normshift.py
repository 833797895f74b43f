"""The mean-zero directions of a layer norm read by a linear layer (fields in 1/γ).

LN_{γ,β}(x) = γ ⊙ x̂ + β with Σ_i x̂_i = 0, so a layer y = W LN(x) + b is unchanged by

    W ↦ W + a (1/γ)ᵀ,   b ↦ b − a ⟨1/γ, β⟩      (a ∈ ℝ^{out}),

since (a (1/γ)ᵀ)(γ ⊙ x̂ + β) = a Σ x̂_i + a⟨1/γ, β⟩.  For fixed γ, β (untouched) these are translations, so
they compose additively: the group is (ℝ^{out}, +), but the field depends on θ through 1/γ — a known
symmetry that is not linear in θ.  Without γ the direction is 1; without β no bias is needed.

Tied weights (a GPT's head W = the token embedding E, no biases): moving every row, W ↦ W + c 1 (1/γ)ᵀ,
also adds c/γ to every token's embedding; subtracting c (1/γ)ᵀ from every row of an embedding indexed
independently of the data (positions) cancels it in the residual stream: one generator c (``compensate``).
"""

from __future__ import annotations

import torch

from symdisc.layout import ParamLayout
from symdisc.symmetry.base import Symmetry


class NormMeanShift(Symmetry):
    """a ↦ (W + a (1/γ)ᵀ, b − a⟨1/γ, β⟩) for a linear layer (W, b) reading LN_{γ,β} directly."""

    def __init__(self, layout: ParamLayout, weight: str, gamma: str | None, beta: str | None, bias: str | None,
                 compensate: list[str] | None = None):
        super().__init__(layout)
        self.weight, self.gamma, self.beta, self.bias = weight, gamma, beta, bias
        self.compensate = list(compensate or [])
        self.num_generators = 1 if self.compensate else layout.shape(weight)[0]
        self.name = f"norm-mean-zero[{weight}" + (f" ↔ {', '.join(self.compensate)}]" if self.compensate else "]")
        self.source = "layer norm output sums to zero (issue 10: fields in 1/γ)"

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return torch.eye(self.num_generators, dtype=dtype, device=device)

    def act(self, coeffs, theta, X=None):
        a = coeffs.to(dtype=theta.dtype, device=theta.device)
        params = dict(self.layout.unflatten(theta))
        W = params[self.weight]
        r = 1.0 / params[self.gamma] if self.gamma else torch.ones(W.shape[1], dtype=W.dtype, device=W.device)
        if self.compensate:
            for name in self.compensate:
                params[name] = params[name] - a[0] * r
            a = a[0] * torch.ones(W.shape[0], dtype=W.dtype, device=W.device)
        params[self.weight] = W + torch.outer(a, r)
        if self.beta is not None:
            params[self.bias] = params[self.bias] - a * (r @ params[self.beta])
        return self.layout.flatten(params)

    def exactness(self, theta, X=None) -> dict:
        if self.gamma is None:
            return {"exact": True, "condition": "exact (no affine weight)"}
        gamma = self.layout.unflatten(theta)[self.gamma]
        ok = bool((gamma != 0).all())
        return {"exact": ok, "condition": "exact where every γ_i ≠ 0" + ("" if ok else " (some γ_i = 0 here)")}

    def describe(self) -> dict:
        return {**super().describe(), "group": "translation",
                "acts_on": [self.weight] + ([self.bias] if self.beta is not None else []) + self.compensate,
                "source": self.source}


class StreamRotation(Symmetry):
    """Rotations of a residual stream read only by layer norms (computational invariance, as in SliceGPT).

    R ∈ SO(h) fixing 1 (so R commutes with centring and keeps norms; any R ∈ SO(h) when only RMS norms read the
    stream, ``fix_ones=False``): every writer of the stream x maps
    x ↦ R x, so each normalised x̂ ↦ R x̂; a layer norm LN_{γ,β} read by linear layers W absorbs it with

        β ↦ diag(γ) R diag(1/γ) β,    W ↦ W diag(γ) Rᵀ diag(1/γ),

    since W' (γ ⊙ R x̂ + β') = W (γ ⊙ x̂ + β).  R = exp(Σ c_k Q A_k Qᵀ), Q an orthonormal basis of 1⊥, A_k a basis
    of so(h−1): (h−1)(h−2)/2 generators (h(h−1)/2 without the constraint).  ``space``: the writers as
    HiddenSpace attachments (role "produces"); ``norms``: (γ or None, β or None, [consumer weights]).
    """

    def __init__(self, space, norms: list[tuple[str | None, str | None, list[str]]], name: str,
                 fix_ones: bool = True):
        super().__init__(space.layout)
        self.space, self.norms, self.name, self.fix_ones = space, norms, name, fix_ones
        h = space.dim - fix_ones
        self.num_generators = h * (h - 1) // 2
        self.source = "layer norms read the stream: rotations of 1⊥ (SliceGPT's computational invariance)"

    def _basis(self, dtype, device) -> torch.Tensor:
        from symdisc.symmetry.hidden import algebra_basis

        h = self.space.dim
        if not self.fix_ones:
            return algebra_basis("so", h, dtype, device)
        ones = torch.ones(h, 1, dtype=dtype, device=device) / h ** 0.5
        Q = torch.linalg.qr(torch.cat([ones, torch.eye(h, dtype=dtype, device=device)[:, : h - 1]], 1))[0][:, 1:]
        return Q @ algebra_basis("so", h - 1, dtype, device) @ Q.T

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return self._basis(dtype, device)

    def act(self, coeffs, theta, X=None):
        from symdisc.linalg import expm

        c = coeffs.to(dtype=theta.dtype, device=theta.device)
        R = expm(torch.einsum("k,kab->ab", c, self._basis(theta.dtype, theta.device)))
        theta = self.space.transform(theta, R, R)
        params = dict(self.layout.unflatten(theta))
        for gamma, beta, weights in self.norms:
            g = params[gamma] if gamma else torch.ones(self.space.dim, dtype=theta.dtype, device=theta.device)
            if beta:
                params[beta] = g * (R @ (params[beta] / g))
            for W in weights:
                params[W] = ((params[W] * g) @ R.T) / g
        return self.layout.flatten(params)

    def describe(self) -> dict:
        return {**super().describe(), "group": f"SO({self.space.dim - self.fix_ones})", "acts_on": self.space.touched()
                + [n for gm, bt, ws in self.norms for n in ([bt] if bt else []) + ws], "source": self.source}
