"""Jacobians of an architecture with respect to θ, batched with torch.func (never a loop over samples).

* ``output_jacobian``  D_θ f(θ, X) ∈ ℝ^{(B·out)×p};
* ``loss_jacobian``    D_θ L(θ, X, Y) ∈ ℝ^{B×p} (row i = ∇_θ ℓ_i).

Sample-wise models use vmap over samples; models whose outputs couple samples (batch statistics) use
one jacrev of the whole batch.  Used by the census, discovery and verification.
"""

from __future__ import annotations

import torch
from torch.func import grad, jacrev, vmap

from symdisc.architecture import Architecture


def _parts(arch: Architecture, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """θ as named tensors: differentiating per tensor avoids the full-width, zero-filled (rows × p)
    gradient that every slice of a flat θ would otherwise get (≈ 4× J memory; benchmarks/README.md)."""
    return {n: t.clone() for n, t in arch.layout.unflatten(theta).items()}


def _cat(arch: Architecture, jac: dict, rows: int) -> torch.Tensor:
    return torch.cat([jac[n].reshape(rows, -1) for n in arch.layout.names], dim=1)


def output_jacobian(arch: Architecture, theta: torch.Tensor, X: torch.Tensor, chunk_size=None) -> torch.Tensor:
    """D_θ f(θ, X) as an (N, p) matrix, N = B·(outputs per sample)."""
    parts, f = _parts(arch, theta), arch.forward_named
    if arch.samplewise:
        f1 = lambda ps, x: f(ps, x.unsqueeze(0)).reshape(-1)
        jac = vmap(jacrev(f1), in_dims=(None, 0), chunk_size=chunk_size)(parts, X)
    else:
        jac = jacrev(lambda ps: f(ps, X).reshape(-1), chunk_size=chunk_size)(parts)
    rows = arch.forward(theta, X[:1]).numel() * X.shape[0]
    return _cat(arch, jac, rows)


def loss_jacobian(arch: Architecture, theta, X, Y, chunk_size=None) -> torch.Tensor:
    """D_θ L(θ, X, Y) ∈ ℝ^{B×p}: row i is the per-sample gradient ∇_θ ℓ_i."""
    parts, f = _parts(arch, theta), arch.forward_named
    if arch.samplewise:
        l1 = lambda ps, x, y: arch.loss(f(ps, x.unsqueeze(0)), y.unsqueeze(0))[0]
        jac = vmap(grad(l1), in_dims=(None, 0, 0), chunk_size=chunk_size)(parts, X, Y)
    else:
        jac = jacrev(lambda ps: arch.loss(f(ps, X), Y), chunk_size=chunk_size)(parts)
    return _cat(arch, jac, X.shape[0])
