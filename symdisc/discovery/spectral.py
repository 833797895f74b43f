"""Spectral initialisation of the generators: the best *linear* symmetries, in closed form.

For the linear action a(g, θ) = gθ the field of h is ξ_h(θ) = hθ, and the pooled scale-free
invariance of the objective is a generalised Rayleigh quotient in vec(h):

    E[(Ĵ_i · hθ)²] / E[‖hθ‖²] = vec(h)ᵀ Q vec(h) / vec(h)ᵀ P vec(h),
    Q = E[(Ĵ_i ⊗ θ)(Ĵ_i ⊗ θ)ᵀ],   P = I_p ⊗ E[θθᵀ]     (row-major vec, Ĵ_i = J_i/‖J_i‖).

Its minimisers are the bottom generalised eigenvectors of (Q, P) (cf. LieGG, Moskalev et al.
2022).  The eigenvalues near 0 count the linear symmetries of the sampled (θ, X).  Q is p²×p²:
this is for free generators at small p (≤ ~60); the low-rank kind takes the best rank-r part of
each.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from torch.func import vmap

from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.jacobians import loss_jacobian, output_jacobian

MAX_P = 64


def spectral_generators(arch: Architecture, k: int, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor,
                        level: str = "loss") -> tuple[torch.Tensor, np.ndarray]:
    """The k bottom eigen-generators (k, p, p), unit Frobenius norm, and all eigenvalues (ascending)."""
    p = arch.num_params
    if p > MAX_P:
        raise InputError(f"spectral initialisation forms p²×p² matrices; p = {p} > {MAX_P}")
    arch64 = arch.to(dtype=torch.float64)
    theta, X = theta.to(torch.float64), X.to(torch.float64) if X.is_floating_point() else X
    Y = Y.to(torch.float64) if Y.is_floating_point() else Y
    if level == "loss":
        J = vmap(lambda t, x, y: loss_jacobian(arch64, t, x, y))(theta, X, Y)
    else:
        J = vmap(lambda t, x: output_jacobian(arch64, t, x))(theta, X)
    J = J / J.norm(dim=-1, keepdim=True).clamp_min(1e-300)  # (S, B, p)
    feats = torch.einsum("sia,sb->siab", J, theta).reshape(-1, p * p)
    Q = (feats.T @ feats / feats.shape[0]).numpy()
    C = (theta.T @ theta / theta.shape[0]).numpy()
    P = np.kron(np.eye(p), C)
    vals, vecs = scipy.linalg.eigh(Q, P + 1e-12 * np.trace(P) / P.shape[0] * np.eye(p * p))
    # Within the near-null eigenspace (often larger than k: e.g. fields hθ that are pointwise
    # combinations of the GL fields), pick the k combinations whose fields carry the most energy
    # across the draws, so that the chosen fields are independent at each θ.
    m = max(k, int((vals <= max(vals[k - 1], 1e-6 * vals[-1])).sum()))
    V = torch.from_numpy(vecs[:, :m].T.copy()).reshape(m, p, p)
    fields = torch.einsum("mab,sb->sam", V, theta).reshape(-1, m)
    fields = fields / fields.norm(dim=0, keepdim=True).clamp_min(1e-300)
    _, _, Vh = torch.linalg.svd(fields, full_matrices=False)
    H = torch.einsum("km,mab->kab", Vh[:k], V)
    return H / H.flatten(1).norm(dim=1)[:, None, None], vals
