"""Learnable Lie algebra generators h_1..h_k ∈ gl(p) acting on θ ∈ ℝ^p.

* ``free``: the paper's full p×p matrices (dissertation §6.5).  Stored as the columns of
  H ∈ ℝ^{p²×k} on the Stiefel manifold (geoopt): each h_k has unit Frobenius norm and the h_k are
  mutually orthogonal, so the set cannot collapse to 0 or to one direction.
* ``lowrank``: h_k = U_k V_kᵀ / ‖U_k V_kᵀ‖_F with U_k, V_k ∈ ℝ^{p×r}: O(k p r) parameters and
  exp(Σ c_k h_k) θ computed in (kr+1)² work through φ_1 (below), never forming a p×p matrix.

Group elements are products exp(M_n)···exp(M_1) with M_i = Σ_k c_ik h_k, represented by the
coefficient rows c_i; only their action on vectors (``exp_apply``) or, in free mode, their
matrix (``exp_matrix``) is needed.
"""

from __future__ import annotations

import math
from typing import Literal

import geoopt
import torch
from torch import nn

from symdisc.errors import InputError
from symdisc.linalg import expm

Kind = Literal["free", "lowrank"]


def taylor_degree(x: float, eps: float) -> int:
    """The least n with xⁿ⁺¹/(n+1)!·eˣ ≤ eps: the Taylor polynomial T_n of exp then meets ‖exp(A)v − T_n(A)v‖
    ≤ eps·‖v‖ for ‖A‖₂ ≤ x (the remainder Σ_{j>n} xʲ/j! ≤ xⁿ⁺¹/(n+1)!·eˣ)."""
    n, term = 0, 1.0
    while term * x / (n + 1) * math.exp(x) > eps:
        n += 1
        term *= x / n
    return n


def taylor_exp_apply(M: torch.Tensor, v: torch.Tensor, bound: float) -> torch.Tensor:
    """exp(M) v for ‖M‖₂ ≤ ``bound``: (T_n(M/s))^s v with s = ⌈bound⌉ and T_n the Taylor polynomial of the least
    degree accurate to the dtype's unit roundoff (``taylor_degree``; n ≤ 18 since ‖M/s‖ ≤ 1), by matrix-vector
    products only: O(s·n·p²), and cheap to differentiate (matrix_exp's backward evaluates a 2p×2p
    exponential: O(p³)).  At the composition term's small t (‖M‖ ≈ 0.1–0.3) n is 8–11 in float64."""
    s = max(1, math.ceil(bound))
    n = taylor_degree(bound / s, torch.finfo(v.dtype).eps / 2)
    A = M / s
    for _ in range(s):
        term, total = v, v
        for j in range(1, n + 1):
            term = A @ term / j
            total = total + term
        v = total
    return v


def phi1_apply(A: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """φ_1(A) w = Σ_j A^j w/(j+1)!, from the top-right column of exp([[A, w], [0, 0]])."""
    n = A.shape[0]
    aug = torch.cat([torch.cat([A, w[:, None]], dim=1), torch.zeros(1, n + 1, dtype=A.dtype, device=A.device)])
    return expm(aug)[:n, n]


class WoodburyStiefel(geoopt.CanonicalStiefel):
    """geoopt's canonical Stiefel manifold with its Cayley retraction / transport solved by Woodbury.

    The Cayley map solves (I − ½A) q = (I + ½A) v with A = u xᵀ − x uᵀ ∈ ℝ^{n×n}; geoopt forms A and
    solves densely, O(n³) — for free generators n = p², so p = 128 meant a 16384² system per step.
    A = U Vᵀ with U = [u, x], V = [x, −u] (n×2k), hence (I − ½A)⁻¹ = I + U (2I − VᵀU)⁻¹ Vᵀ and
    q = r + U (2I − VᵀU)⁻¹ Vᵀ r, r = v + ½ U Vᵀ v: the same retraction in O(n k²).  The projection
    u − x uᵀ x is likewise evaluated as u − x (uᵀ x), never forming the n×n product x uᵀ."""

    def proju(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u - x @ (u.transpose(-1, -2) @ x)

    egrad2rgrad = proju

    def _transp_follow_one(self, x: torch.Tensor, v: torch.Tensor, *, u: torch.Tensor) -> torch.Tensor:
        U = torch.cat([u, x], dim=-1)
        V = torch.cat([x, -u], dim=-1)
        rhs = v + 0.5 * U @ (V.transpose(-1, -2) @ v)
        eye = torch.eye(U.shape[-1], dtype=U.dtype, device=U.device)
        small = 2 * eye - V.transpose(-1, -2) @ U
        return rhs + U @ torch.linalg.solve(small, V.transpose(-1, -2) @ rhs)


class Generators(nn.Module):
    """k generators of gl(p); see the module docstring for the two parameterisations."""

    def __init__(self, p: int, k: int, kind: Kind = "free", rank: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        if k < 1:
            raise InputError(f"need at least one generator, got k = {k}")
        if kind not in ("free", "lowrank"):
            raise InputError(f"unknown generator kind {kind!r}; choose free or lowrank")
        if k > p:
            raise InputError(f"k = {k} generators but only p = {p} parameters: at most p fields can be independent")
        if rank < 1:
            raise InputError(f"low-rank generators need rank ≥ 1, got {rank}")
        self.p, self.k, self.kind, self.rank = p, k, kind, rank
        if kind == "free":
            init = torch.linalg.qr(torch.randn(p * p, k, generator=generator))[0]
            self.H = geoopt.ManifoldParameter(init, manifold=WoodburyStiefel())
        else:
            scale = 1.0 / math.sqrt(p)
            self.U = nn.Parameter(scale * torch.randn(k, p, rank, generator=generator))
            self.V = nn.Parameter(scale * torch.randn(k, p, rank, generator=generator))

    def subset(self, indices: list[int]) -> Generators:
        """The generators h_i, i ∈ ``indices``, as a new module (copies; free columns stay orthonormal)."""
        if not indices:
            raise InputError("a subset of generators needs at least one index")
        out = Generators(self.p, len(indices), self.kind, self.rank)
        idx = torch.as_tensor(indices)
        with torch.no_grad():
            if self.kind == "free":
                out.H.data = self.H.detach()[:, idx].clone()
            else:
                out.U.data, out.V.data = self.U.detach()[idx].clone(), self.V.detach()[idx].clone()
        return out

    # ---- the generators themselves ------------------------------------------------------------
    def matrices(self) -> torch.Tensor:
        """(k, p, p).  Forms p×p matrices: meant for small p, figures and export."""
        if self.kind == "free":
            return self.H.T.reshape(self.k, self.p, self.p)
        M = torch.einsum("kar,kbr->kab", self.U, self.V)
        return M / M.flatten(1).norm(dim=1)[:, None, None]

    def _lowrank_factors(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Σ_k c_k h_k = A Bᵀ with A, B ∈ ℝ^{p×kr} (normalisation folded into A), in c's dtype."""
        U, V = self.U.to(c), self.V.to(c)
        norms = torch.sqrt(torch.einsum("kar,kas,kbr,kbs->k", U, U, V, V))
        A = (U * (c / norms)[:, None, None]).permute(1, 0, 2).reshape(self.p, -1)
        return A, V.permute(1, 0, 2).reshape(self.p, -1)

    def apply(self, c: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """(Σ_k c_k h_k) θ without forming p×p matrices in low-rank mode."""
        c = c.to(theta)
        if self.kind == "free":
            return torch.einsum("k,kab,b->a", c, self.matrices().to(theta), theta)
        A, B = self._lowrank_factors(c)
        return A.to(theta) @ (B.to(theta).T @ theta)

    def exp_apply(self, c: torch.Tensor, theta: torch.Tensor, bound: float | None = None) -> torch.Tensor:
        """exp(Σ_k c_k h_k) θ.  Low rank: θ + A φ_1(BᵀA) Bᵀθ (M = ABᵀ ⇒ exp(M) = I + A φ_1(BᵀA) Bᵀ).
        Free: with ``bound`` ≥ ‖c‖₂ — which bounds ‖Σ c_k h_k‖₂ ≤ ‖Σ c_k h_k‖_F = ‖c‖₂, the h_k being
        orthonormal — by ``taylor_exp_apply``; else through matrix_exp."""
        c = c.to(theta)
        if self.kind == "free":
            if bound is not None:
                M = torch.einsum("k,kab->ab", c, self.matrices().to(c))
                return taylor_exp_apply(M, theta, bound)
            return self.exp_matrix(c) @ theta
        A, B = (t.to(theta) for t in self._lowrank_factors(c))
        return theta + A @ phi1_apply(B.T @ A, B.T @ theta)

    def exp_matrix(self, c: torch.Tensor) -> torch.Tensor:
        """exp(Σ_k c_k h_k) as a p×p matrix (free mode only)."""
        if self.kind != "free":
            raise InputError("group-element matrices are only formed for free generators")
        M = torch.einsum("k,kab->ab", c, self.matrices().to(c))
        return expm(M)

    def bracket_matrix(self, a: int, b: int) -> torch.Tensor:
        """[h_a, h_b] = h_a h_b − h_b h_a as a p×p matrix (forms p×p matrices: the matrix encoding's small p)."""
        H = self.matrices()
        return H[a] @ H[b] - H[b] @ H[a]

    def bracket_apply(self, a: int, b: int, theta: torch.Tensor) -> torch.Tensor:
        """[h_a, h_b] θ = h_a(h_b θ) − h_b(h_a θ)."""
        ea = torch.zeros(self.k, dtype=theta.dtype, device=theta.device)
        eb = ea.clone()
        ea[a], eb[b] = 1.0, 1.0
        return self.apply(ea, self.apply(eb, theta)) - self.apply(eb, self.apply(ea, theta))

    def sparsity(self) -> torch.Tensor:
        """Σ_k ‖h_k‖_1 (the paper's L_reg_h_sparse); low rank: of the factors."""
        if self.kind == "free":
            return self.H.abs().sum()
        return self.U.abs().sum() + self.V.abs().sum()

    def orthogonality(self) -> torch.Tensor:
        """Σ_{i<j} |cos(h_i, h_j)| (LieGAN's L_reg_h_orth, absolute cosine)."""
        if self.k == 1:
            return torch.zeros((), dtype=self.matrices().dtype)
        if self.kind == "free":
            flat = self.H.T
            flat = flat / flat.norm(dim=1, keepdim=True)
            C = flat @ flat.T
        else:  # ⟨U_iV_iᵀ, U_jV_jᵀ⟩_F = Σ_rs (U_iᵀU_j)_rs (V_iᵀV_j)_rs: O(k²r²p), never a p×p matrix
            G = torch.einsum("iar,jas,ibr,jbs->ij", self.U, self.U, self.V, self.V)
            d = G.diagonal().sqrt()
            C = G / (d[:, None] * d[None, :])
        return torch.triu(C, diagonal=1).abs().sum()
