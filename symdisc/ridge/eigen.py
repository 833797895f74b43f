"""The most negative eigenpairs of a Hessian operator, and their tracking (ridge_rider.md §1.3, §2.1–2.4).

``most_negative(op, k)``: the k smallest (most negative) eigenpairs (λ ascending, unit columns):

* ``dense``   ``eigh`` of the p×p matrix (p HVPs): exact RR, the ground truth;
* ``lanczos`` ARPACK's implicitly restarted Lanczos (``scipy eigsh``, which="SA") on HVPs, started
              from the previous ridge when one is given;
* ``lobpcg``  block LOBPCG (``scipy lobpcg``) warm-started from the previous ridges (a block of k);
* ``auto``    dense for p ≤ ``DENSE_MAX``, else lobpcg with a warm start, lanczos without.

Every Krylov result is checked: each residual ‖H e − λ e‖ ≤ ``check_tol``·‖H‖ (‖H‖ estimated from the
Ritz values), else NumericalError — a non-converged eigenpair is never returned as a ridge.

Tracking: ``align(new, old)`` gives each new vector the sign of its overlap with the old one (continuity);
``descent_sign(e, g)`` orients e so that θ − α e descends to first order (⟨e, g⟩ ≥ 0, Alg. 2's sign(e·g)).

The paper's approximate UpdateRidge (§2.3, [A D.3]) is ``gradient_update``: S gradient steps on
𝓛(e, λ) = ‖(H − λ I) ẽ‖²/λ² (ẽ = e/‖e‖), two HVPs per step, after the first-order warm start
λ ← λ′ + e′ᵀ(H(θ) − H(θ′)) e′ (``warm_start``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from symdisc.errors import InputError, NumericalError
from symdisc.ridge.hessian import HessianOperator

METHODS = ("auto", "dense", "lanczos", "lobpcg")
DENSE_MAX = 2000
CHECK_TOL = 1e-6
LOBPCG_MAXITER = 500  # block iterations (each k HVPs); LOBPCG stalls on clustered spectra, Lanczos does not


@dataclass
class Eigenpairs:
    """k eigenpairs, ascending: ``values`` (k,), ``vectors`` (p, k) orthonormal, ``residuals`` (k,) relative to
    ‖H‖; ``norm`` the estimate of ‖H‖ used; ``hvps`` spent; ``method`` used."""

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    norm: float
    hvps: int
    method: str


def _method(op: HessianOperator, method: str, warm: torch.Tensor | None) -> str:
    if method not in METHODS:
        raise InputError(f"unknown eigensolver {method!r}; choose {', '.join(METHODS)}")
    if method != "auto":
        return method
    return "dense" if op.p <= DENSE_MAX else ("lobpcg" if warm is not None else "lanczos")


def _residuals(op: HessianOperator, values: torch.Tensor, vectors: torch.Tensor, norm: float) -> torch.Tensor:
    R = op.matvec(vectors) - vectors * values
    return R.norm(dim=0) / max(norm, 1e-300)


def _top_magnitude(op: HessianOperator, maxiter: int, tol: float) -> float:
    """‖H‖₂ = the largest |λ| (Lanczos, which="LM")."""
    from scipy.sparse.linalg import eigsh

    if op.p <= 2:
        return float(torch.linalg.eigvalsh(op.dense()).abs().max())
    vals = eigsh(op.scipy(), k=1, which="LM", tol=tol, maxiter=maxiter, return_eigenvectors=False)
    return float(np.abs(vals).max())


def _missed_copies(op: HessianOperator, values: torch.Tensor, vectors: torch.Tensor, norm: float, tol: float,
                   maxiter: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-vector Lanczos sees one direction per exactly repeated eigenvalue, so a k-fold cluster can come back
    short ([−2, −2, −1] for a threefold −2) with tiny residuals.  Deflate what was found, H + c·VVᵀ (c = 3‖H‖
    lifts it above the spectrum), and ask Lanczos for the smallest eigenvalue left; while it lies below the
    largest one kept, it is a missed pair: swap it in and ask again."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    k, c = values.shape[0], 3.0 * norm
    for _ in range(k):
        V = vectors

        def mv(x, V=V):
            X = torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(op.p, -1)).to(op.theta)
            return (op.matvec(X) + c * V @ (V.T @ X)).cpu().numpy()

        A = LinearOperator((op.p, op.p), matvec=mv, matmat=mv, rmatvec=mv, dtype=np.float64)
        v0 = torch.randn(op.p, generator=generator, dtype=torch.float64).numpy()
        mu, u = eigsh(A, k=1, which="SA", v0=v0, tol=tol, maxiter=maxiter)
        if not float(mu[0]) < float(values[-1]) - 1e-8 * norm:
            break
        u = torch.from_numpy(np.ascontiguousarray(u[:, 0])).to(op.theta)
        u = u - V @ (V.T @ u)
        u = u / u.norm()
        values = torch.cat([values[:-1], values.new_tensor([float(mu[0])])])
        vectors = torch.cat([vectors[:, :-1], u[:, None]], dim=1)
        order = torch.argsort(values)
        values, vectors = values[order], vectors[:, order]
    return values, vectors


def most_negative(op: HessianOperator, k: int, method: str = "auto", warm: torch.Tensor | None = None,
                  tol: float = 1e-10, maxiter: int | None = None, check_tol: float = CHECK_TOL,
                  generator: torch.Generator | None = None) -> Eigenpairs:
    """The k most negative eigenpairs of ``op`` (see the module docstring); ``warm`` (p,) or (p, m): start vectors."""
    if not 1 <= k <= op.p:
        raise InputError(f"asked for {k} eigenpairs of a {op.p}×{op.p} Hessian; choose 1 ≤ k ≤ {op.p}")
    used = _method(op, method, warm)
    before = op.hvps
    if used != "dense" and k >= op.p - 1:
        used = "dense"  # ARPACK needs k < p − 1
    if used == "dense":
        vals, vecs = torch.linalg.eigh(op.dense())
        values, vectors, norm = vals[:k], vecs[:, :k], float(vals.abs().max())
        res = torch.zeros(k, dtype=vals.dtype, device=vals.device)  # eigh is backward stable: nothing to check
        return Eigenpairs(values, vectors, res, norm, op.hvps - before, used)
    maxiter = maxiter or 20 * op.p
    A = op.scipy()
    g = generator or torch.Generator().manual_seed(0)
    try:
        if used == "lanczos":
            from scipy.sparse.linalg import eigsh

            v0 = None
            if warm is not None:
                v0 = warm.reshape(op.p, -1).sum(dim=1).cpu().numpy()
            if v0 is None or not np.any(v0):
                v0 = torch.randn(op.p, generator=g, dtype=torch.float64).numpy()
            vals, vecs = eigsh(A, k=k, which="SA", v0=v0, tol=tol, maxiter=maxiter)
        else:
            from scipy.sparse.linalg import lobpcg

            X = torch.randn(op.p, k, generator=g, dtype=torch.float64)
            if warm is not None:
                W = warm.reshape(op.p, -1)[:, :k].cpu().to(torch.float64)
                X[:, : W.shape[1]] = W + 1e-3 * X[:, : W.shape[1]]
            with warnings.catch_warnings():  # its accuracy / conditioning warnings: the residual check decides
                warnings.simplefilter("ignore")
                vals, vecs = lobpcg(A, X.numpy(), largest=False, tol=tol, maxiter=min(maxiter, LOBPCG_MAXITER))
        top = _top_magnitude(op, maxiter, 1e-6)
    except Exception as e:  # ARPACK's and LOBPCG's non-convergence and breakdowns
        if isinstance(e, (NumericalError, InputError)):
            raise
        raise NumericalError(f"the {used} eigensolver failed for the {k} most negative eigenpairs "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                             "raise maxiter or use the dense solver on a small model") from None
    order = np.argsort(vals)
    values = torch.from_numpy(np.ascontiguousarray(vals[order])).to(op.theta)
    vectors = torch.from_numpy(np.ascontiguousarray(vecs[:, order])).to(op.theta)
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    norm = max(float(values.abs().max()), top)
    if used == "lanczos":
        values, vectors = _missed_copies(op, values, vectors, norm, tol, maxiter, g)
    res = _residuals(op, values, vectors, norm)
    if bool((res > check_tol).any()):
        worst = int(res.argmax())
        raise NumericalError(f"the {used} eigensolver did not converge: eigenpair {worst} has residual "
                             f"‖He − λe‖ = {float(res[worst]):.1e}·‖H‖ > {check_tol:g}; raise maxiter or tol, "
                             "ask for fewer pairs, or use the dense solver on a small model")
    return Eigenpairs(values, vectors, res, norm, op.hvps - before, used)


def align(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Columns of ``new`` with the sign of their overlap with the matching columns of ``old`` (continuity)."""
    s = torch.sign((new * old).sum(dim=0))
    return new * torch.where(s == 0, torch.ones_like(s), s)


def descent_sign(e: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """±e with ⟨e, g⟩ ≥ 0, so the ridge step θ − α e descends to first order; at ⟨e, g⟩ = 0 the sign that makes
    e's largest-magnitude entry positive (a deterministic choice)."""
    dot = float(e @ g)
    if dot == 0.0:
        dot = float(e[e.abs().argmax()])
    return e if dot >= 0 else -e


def max_overlap(vectors: torch.Tensor, e: torch.Tensor) -> tuple[int, float]:
    """(j*, ⟨e_{j*}, e⟩) with j* = argmax_j |⟨e_j, e⟩| (exact UpdateRidge's choice)."""
    ov = vectors.T @ e
    j = int(ov.abs().argmax())
    return j, float(ov[j])


def warm_start(lam: float, e: torch.Tensor, He_new: torch.Tensor, He_old: torch.Tensor) -> float:
    """λ ← λ′ + e′ᵀ(H(θ) − H(θ′)) e′ (first-order eigenvalue update, Alg. 2)."""
    return lam + float(e @ (He_new - He_old)) / float(e @ e)


def eigen_loss(op: HessianOperator, e: torch.Tensor, lam: float) -> float:
    """𝓛(e, λ) = ‖(H − λI) ẽ‖² / λ² (Alg. 2's UpdateRidge objective)."""
    u = e / e.norm()
    return float(((op.matvec(u) - lam * u).norm() / lam) ** 2)


def gradient_update(op: HessianOperator, e: torch.Tensor, lam: float, steps: int, lr_e: float,
                    lr_lambda: float) -> tuple[torch.Tensor, float]:
    """S gradient steps on 𝓛(e, λ) = ‖u‖²/λ² − 2ẽᵀu/λ + 1 (u = Hẽ, w = Hu; closed forms of ridge_rider.md §2.3):

        ∇_e 𝓛 = (2/‖e‖)[(w − (ẽᵀw)ẽ)/λ² − 2(u − (ẽᵀu)ẽ)/λ],   ∂𝓛/∂λ = −2‖u‖²/λ³ + 2ẽᵀu/λ²

    e-step, λ-step, then e normalised ([A D.3]).  lr_e = 0 keeps the direction (the paper's LR_x = 0 ablation)."""
    if lam == 0.0:
        raise NumericalError("the ridge's eigenvalue estimate is 0: the eigen-loss is undefined (end the ride)")
    for _ in range(steps):
        n = e.norm()
        et = e / n
        u = op.matvec(et)
        w = op.matvec(u)
        eu, ew = float(et @ u), float(et @ w)
        grad_e = (2 / n) * ((w - ew * et) / lam ** 2 - 2 * (u - eu * et) / lam)
        grad_l = -2 * float(u @ u) / lam ** 3 + 2 * eu / lam ** 2
        e = e - lr_e * grad_e
        lam = lam - lr_lambda * grad_l
        e = e / e.norm()
        if not (torch.isfinite(e).all() and np.isfinite(lam)):
            raise NumericalError("the eigenpair update diverged (lower the eigenvector / eigenvalue learning rates)")
    return e, lam
