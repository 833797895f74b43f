"""Symmetry-aware Ridge Rider through the Symmetry interface (ridge_rider.md §6): designs B, A and C.

With fields ξ_k(θ) = D_g a|_{I,θ}(h_k) (``Symmetry.tangents``) of a symmetry that keeps L:

* F1  ⟨∇L(θ), ξ_k(θ)⟩ = 0;   F2  H ξ_k = −J_{ξ_k}ᵀ ∇L, so at critical points the tangents are zero modes of H.

**B (``orbit_projector``).**  Q = orth Ξ(θ), P = I − QQᵀ; the eigensolvers see P H P, so orbit zero modes
(and round-off "ridges" along them) never become ridges.  Fields that are not exact at θ (learned ones) are
gated by their relative F1 / F2 residuals.

**A (``certify_clusters``).**  Eigenvalues within ``cluster_rtol``·‖H‖ form clusters E (basis V_E).  With
K_c v = J_{ξ_c}(θ) v (one jvp of the field θ ↦ ξ_c(θ)) for c in the residual stabiliser
stab(θ) = {c : Ξ(θ) c = 0} (all of ℝᴷ at a fixed point such as the MIS), E is *certified* symmetry-induced
when the sub-algebra that leaves it invariant, {c : (I − V_E V_Eᵀ) K_c V_E = 0} (to ``certify_tol``, on
normalised generators), acts on it non-trivially (by F3 only its H-commuting part can: a scaling K
anticommutes with H and maps the λ-space to the −λ-space).  A certified cluster is explored by one
representative, the unit e ∈ E minimising Σ_c ‖K_c e‖² (maximal residual invariance), with one sign when
exp(Σ t_c V_Eᵀ K_c V_E) maps e to −e;
uncertified (accidental) clusters are explored member by member.

**C (``orbit_distance``).**  d_G(θ_a, θ_b) = min_c ‖a(exp(Σ c_k h_k), θ_a) − θ_b‖ / ‖θ_b‖ by L-BFGS over
c from 0 and random restarts; archive entries within ``merge_tol`` are merged (the paper's "grouping together
those that are equivalent").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import jvp, vjp, vmap

from symdisc.errors import InputError
from symdisc.linalg import orth
from symdisc.symmetry.base import Symmetry

Loss = Callable[[torch.Tensor], torch.Tensor]


def check_symmetry(symmetry: Symmetry, p: int) -> None:
    """InputError unless ``symmetry`` acts on a θ of p numbers with continuous generators."""
    if not isinstance(symmetry, Symmetry):
        raise InputError(f"expected a symdisc Symmetry, got {type(symmetry).__name__}")
    if symmetry.layout.num_params != p:
        raise InputError(f"symmetry {symmetry.name!r} acts on θ of {symmetry.layout.num_params} parameters, the "
                         f"loss's θ has {p}: it belongs to another architecture")
    if symmetry.discrete:
        raise InputError(f"symmetry {symmetry.name!r} is discrete (no generators): symmetry-aware RR needs "
                         "continuous generators")


# ---- design B ---------------------------------------------------------------------------------------
@dataclass
class OrbitProjection:
    """P = I − QQᵀ with Q an orthonormal basis of the valid fields at θ; ``residuals`` their F1 / F2 checks."""

    Q: torch.Tensor
    kept: int
    dropped: int
    residuals: list[dict]

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        if self.Q.shape[1] == 0:
            return V
        return V - self.Q @ (self.Q.T @ V)


def field_residuals(symmetry: Symmetry, loss: Loss, theta: torch.Tensor, X, hvp: Callable) -> list[dict]:
    """Per generator k: F1 = |⟨∇L, ξ_k⟩|/(‖∇L‖‖ξ_k‖) and F2 = ‖H ξ_k + J_{ξ_k}ᵀ∇L‖/(‖H ξ_k‖ + ‖J_{ξ_k}ᵀ∇L‖)."""
    g = torch.func.grad(loss)(theta)
    Xi = symmetry.tangents(theta, X if symmetry.data_dependent else None)
    out = []
    for k in range(Xi.shape[1]):
        xi = Xi[:, k]
        nx = float(xi.norm())
        if nx == 0.0:
            out.append({"f1": 0.0, "f2": 0.0, "norm": 0.0})
            continue
        c = torch.zeros(Xi.shape[1], dtype=theta.dtype, device=theta.device)
        c[k] = 1.0
        _, pull = vjp(lambda th, c=c: symmetry.field(c, th, X if symmetry.data_dependent else None), theta)
        JTg = pull(g)[0]
        Hxi = hvp(xi)
        f1 = abs(float(g @ xi)) / max(float(g.norm()) * nx, 1e-300)
        f2 = float((Hxi + JTg).norm()) / max(float(Hxi.norm()) + float(JTg.norm()), 1e-300)
        out.append({"f1": f1, "f2": f2, "norm": nx})
    return out


def orbit_projector(symmetry: Symmetry, loss: Loss, theta: torch.Tensor, X=None, hvp: Callable | None = None,
                    rank_rtol: float = 1e-8, gate_tol: float = 1e-6) -> OrbitProjection:
    """Design B's projector at θ.  Exact symmetries keep every field; others (learned) keep the fields whose F1
    and F2 residuals are ≤ ``gate_tol`` (F2 needs ``hvp``)."""
    check_symmetry(symmetry, theta.shape[0])
    Xd = X if symmetry.data_dependent else None
    Xi = symmetry.tangents(theta, Xd)
    exact = symmetry.exactness(theta, Xd).get("exact") is True
    residuals: list[dict] = []
    if not exact:
        if hvp is None:
            raise InputError(f"{symmetry.name} is not known to be exact: gating its fields needs Hessian products")
        residuals = field_residuals(symmetry, loss, theta, X, hvp)
        keep = [k for k, r in enumerate(residuals) if r["f1"] <= gate_tol and r["f2"] <= gate_tol]
        Xi = Xi[:, keep]
    Q = orth(Xi, rank_rtol) if Xi.shape[1] else Xi
    return OrbitProjection(Q, Xi.shape[1], symmetry.num_generators - Xi.shape[1], residuals)


# ---- design A ---------------------------------------------------------------------------------------
def stabiliser(symmetry: Symmetry, theta: torch.Tensor, X=None, rtol: float = 1e-8) -> torch.Tensor:
    """A basis C (K × m) of stab(θ) = {c : Σ_k c_k ξ_k(θ) = 0} (orthonormal columns)."""
    Xi = symmetry.tangents(theta, X if symmetry.data_dependent else None)
    K = Xi.shape[1]
    if K == 0:
        return Xi.new_zeros(0, 0)
    _, s, Vh = torch.linalg.svd(Xi, full_matrices=True)
    scale = float(s.max()) if s.numel() else 0.0
    rank = int((s > rtol * max(scale, 1e-300)).sum()) if scale > 0 else 0
    return Vh[rank:].T.contiguous()


def field_jvps(symmetry: Symmetry, theta: torch.Tensor, V: torch.Tensor, X=None) -> torch.Tensor:
    """K_k V for every generator: shape (d, p, K), entry [j, :, k] = J_{ξ_k}(θ) V[:, j] (jvp of θ ↦ Ξ(θ))."""
    Xd = X if symmetry.data_dependent else None
    fields = lambda th: symmetry.tangents(th, Xd)
    return vmap(lambda v: jvp(fields, (theta,), (v,))[1], in_dims=1)(V)


@dataclass
class Offer:
    """A direction GetRidges offers from a cluster: ``kind`` "single" (a simple eigenvalue), "accidental"
    (a member of an uncertified cluster), "orbit" (the representative of a group-moved component) or "fixed"
    (a direction of a certified cluster the invariant sub-algebra fixes); ``one_sign`` when −e ∈ G·e."""

    vector: torch.Tensor
    kind: str
    one_sign: bool = False


@dataclass
class Cluster:
    """An eigenvalue cluster: member indices (into the ascending eigenpairs), whether it is certified
    symmetry-induced, the smallest singular value of its leak map (0 when some generator leaves it invariant)
    and the directions offered (one per isotypic component, every fixed direction)."""

    members: list[int]
    certified: bool
    score: float | None
    offers: list[Offer]

    def record(self) -> dict:
        return {"size": len(self.members), "certified": self.certified, "score": self.score,
                "offers": [o.kind for o in self.offers]}


def clusters_of(values: torch.Tensor, scale: float, rtol: float) -> list[list[int]]:
    """Consecutive ascending eigenvalues within rtol·scale of their neighbour form one cluster."""
    groups: list[list[int]] = []
    for i in range(values.shape[0]):
        if groups and float(values[i] - values[groups[-1][-1]]) <= rtol * scale:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _reaches_negative(A: torch.Tensor, e: torch.Tensor, restarts: int = 16) -> bool:
    """Whether exp(Σ_c t_c A_c) maps e to −e for some t (A: (m, d, d) restricted generators): L-BFGS on
    ‖exp(Σ t_c A_c) e + e‖² from directions u (each generator, then random ones, a fixed seed) scaled so that
    ‖(Σ u_c A_c) e‖ = π — a half turn when e lies in one rotation plane."""
    if A.shape[0] == 0:
        return False
    g = torch.Generator().manual_seed(0)
    exp_e = lambda t: torch.linalg.matrix_exp(torch.einsum("m,mij->ij", t, A)) @ e
    starts = [torch.eye(A.shape[0], dtype=A.dtype)[i] for i in range(A.shape[0])]
    starts = [u.to(A.device) for u in starts + [torch.randn(A.shape[0], generator=g, dtype=A.dtype)
                                                  for _ in range(restarts)]]
    for u in starts:
        speed = float((torch.einsum("m,mij->ij", u, A) @ e).norm())
        if speed < 1e-10:
            continue
        t = (torch.pi / speed * u).requires_grad_()
        opt = torch.optim.LBFGS([t], max_iter=100, line_search_fn="strong_wolfe")

        def closure(opt=opt, t=t):
            opt.zero_grad()
            f = (exp_e(t) + e).square().sum()
            f.backward()
            return f

        opt.step(closure)
        with torch.no_grad():
            if float((exp_e(t) + e).norm()) < 1e-6:
                return True
    return False


def _components(A: torch.Tensor, rtol: float = 1e-6) -> list[torch.Tensor]:
    """Invariant subspaces of E under the restricted sub-algebra A (r, d, d): the eigenspaces of the Casimir-like
    M = Σ_r A_rᵀ A_r (it commutes with the action), grouped by eigenvalue; the first is the fixed subspace
    (eigenvalue 0) when there is one.  Returns bases (d × d_i)."""
    M = torch.einsum("rji,rjk->ik", A, A)
    w, U = torch.linalg.eigh((M + M.T) / 2)
    top = max(float(w.max()), 1e-300)
    groups = clusters_of(w, top, rtol)
    return [U[:, g] for g in groups]


def certify_clusters(symmetry: Symmetry, theta: torch.Tensor, values: torch.Tensor, vectors: torch.Tensor,
                     scale: float, X=None, cluster_rtol: float = 1e-6, certify_tol: float = 1e-6) -> list[Cluster]:
    """Design A on ascending eigenpairs (values, vectors) at θ: clusters, certified or accidental, with the
    directions to explore.  A certified cluster splits into invariant components (``_components``): every
    direction of the fixed one is offered (the group does not relate them), each moved component offers one
    representative, the unit vector minimising Σ_c ‖K_c e‖² over the whole stabiliser (maximal residual
    invariance), with one sign when the component's group maps it to its negative."""
    C = stabiliser(symmetry, theta, X)
    out = []
    for members in clusters_of(values, scale, cluster_rtol):
        V = vectors[:, members]
        accidental = [Offer(V[:, j], "single" if len(members) == 1 else "accidental") for j in range(len(members))]
        if len(members) < 2 or C.shape[1] == 0:
            out.append(Cluster(members, False, None, accidental))
            continue
        KV = (field_jvps(symmetry, theta, V, X) @ C).permute(2, 1, 0)  # (m, p, d): K_c V, c in the stabiliser
        norms = KV.flatten(1).norm(dim=1)
        if float(norms.max()) == 0.0:
            out.append(Cluster(members, False, None, accidental))  # no generator moves E: nothing to certify
            continue
        # the invariant sub-algebra: combinations c with (I − VVᵀ) K_c V = 0 (linear in c), generators normalised
        unit = KV / norms.clamp_min(1e-300)[:, None, None]
        leak = (unit - V @ (V.T @ unit)).flatten(1).T  # (p·d, m)
        _, sv, Wh = torch.linalg.svd(leak, full_matrices=True)
        sv = torch.cat([sv, sv.new_zeros(Wh.shape[0] - sv.shape[0])])
        inv = Wh[sv <= certify_tol].T  # (m, r)
        A = torch.einsum("pi,rpd->rid", V, torch.einsum("mpd,mr->rpd", unit, inv))  # (r, d, d): restricted to E
        A = A[A.flatten(1).norm(dim=1) > 1e-8]
        score = float(sv.min())
        if A.shape[0] == 0:
            out.append(Cluster(members, False, score, accidental))
            continue
        Mall = torch.einsum("mpi,mpj->ij", KV, KV)
        offers = []
        for U in _components(A):
            moved = A @ U  # (r, d, d_i)
            if float(moved.norm()) <= 1e-8 * max(float(A.norm()), 1e-300):
                offers += [Offer(V @ U[:, j], "fixed") for j in range(U.shape[1])]
                continue
            w, R = torch.linalg.eigh(U.T @ Mall @ U)
            rep = U @ R[:, 0]
            offers.append(Offer(V @ rep, "orbit", _reaches_negative(A, rep)))
        out.append(Cluster(members, True, score, offers))
    return out


# ---- design C ---------------------------------------------------------------------------------------
def orbit_distance(symmetry: Symmetry, theta_a: torch.Tensor, theta_b: torch.Tensor, X=None, restarts: int = 3,
                   max_iter: int = 200, generator: torch.Generator | None = None) -> float:
    """d_G = min_c ‖a(exp(Σ c_k h_k), θ_a) − θ_b‖ / max(‖θ_b‖, 1) by L-BFGS from c = 0 and random restarts."""
    Xd = X if symmetry.data_dependent else None
    scale = max(float(theta_b.norm()), 1.0)
    best = float((theta_a - theta_b).norm()) / scale
    if symmetry.discrete or best == 0.0:
        return best
    g = generator or torch.Generator().manual_seed(0)
    for r in range(restarts):
        c0 = torch.zeros(symmetry.num_generators, dtype=theta_a.dtype) if r == 0 else \
            0.5 * torch.randn(symmetry.num_generators, generator=g, dtype=theta_a.dtype)
        c = c0.to(theta_a.device).requires_grad_()
        opt = torch.optim.LBFGS([c], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                                tolerance_change=1e-16)

        def closure(opt=opt, c=c):
            opt.zero_grad()
            f = (symmetry.act(c, theta_a, Xd) - theta_b).square().sum() / scale ** 2
            f.backward()
            return f

        try:
            opt.step(closure)
        except (RuntimeError, torch.linalg.LinAlgError):
            continue
        with torch.no_grad():
            d = float((symmetry.act(c, theta_a, Xd) - theta_b).norm()) / scale
        if d == d:  # not NaN
            best = min(best, d)
    return best
