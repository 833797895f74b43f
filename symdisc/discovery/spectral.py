"""Spectral initialisation of the generators: the best *linear* symmetries, in closed form.

For the linear action a(g, θ) = gθ the field of h is ξ_h(θ) = hθ, and the pooled scale-free
invariance of the objective is a generalised Rayleigh quotient in vec(h):

    E[(Ĵ_i · hθ)²] / E[‖hθ‖²] = vec(h)ᵀ Q vec(h) / vec(h)ᵀ P vec(h),
    Q = E[(Ĵ_i ⊗ θ)(Ĵ_i ⊗ θ)ᵀ],   P = I_p ⊗ C,  C = E[θθᵀ]     (row-major vec, Ĵ_i = J_i/‖J_i‖).

Its minimisers are the bottom generalised eigenvectors of (Q, P) (cf. LieGG, Moskalev et al.
2022).  The eigenvalues near 0 count the linear symmetries of the sampled (θ, X).  Two solvers:

* ``dense``: forms Q (p²×p²) and calls ``scipy.linalg.eigh``: the reference, p ≤ MAX_P.
* ``operator``: matrix-free.  Whitening h = g C^{-1/2} (C + tiny ridge) makes the problem standard,
  Q̃(g) = mean_{s,i} (Ĵ_si · g θ̃_s) Ĵ_si θ̃_sᵀ with θ̃_s = C^{-1/2} θ_s, applied to p×p matrices only
  (O(S p² + N p) per vector; N = S·B rows), and a block LOBPCG finds its bottom eigenpairs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import torch
from torch.func import vmap

from symdisc.architecture import Architecture
from symdisc.errors import InputError, SymdiscWarning
from symdisc.jacobians import loss_jacobian, output_jacobian

MAX_P = 64
OPERATOR_MAX_P = 256  # the trainer's operator start costs O(m·S·p²) per LOBPCG step with S ≈ 2p draws
TRAINER_MAXITER = 100  # the trainer's budget: a start needs approximate eigenvectors, not converged ones
TOL = 1e-7  # LOBPCG: residual ‖Q̃g − λg‖ ≤ TOL·λ_max for every eigenpair used (fields invariant to ~TOL)
MAXITER = 300
PRECOND_RIDGE = 1e-2  # δ = PRECOND_RIDGE/p in the block preconditioner (D'_s + δ)^{-1}; tr D'_s = 1


def spectral_generators(arch: Architecture, k: int, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor,
                        level: str = "loss", *, method: str = "auto", generator: torch.Generator | None = None,
                        maxiter: int = MAXITER) -> tuple[torch.Tensor, np.ndarray]:
    """The k bottom eigen-generators (k, p, p) of (Q, P), unit Frobenius norm, and the eigenvalues.

    θ (S, p), X (S, B, …), Y (S, B, …): S draws of B samples.  ``method``: "dense" (all p² eigenvalues;
    p ≤ MAX_P), "operator" (the bottom m = min(p², 2k+8) Ritz values; never a p²×p² matrix) or "auto"
    (dense for p ≤ MAX_P).  ``generator`` seeds the operator solver's random start; ``maxiter`` bounds its
    LOBPCG steps.

    Within the near-null eigenspace, of dimension m' = max(k, #{λ_j ≤ max(λ_{k−1}, 1e-6 λ_max)}) (often
    larger than k: e.g. fields hθ that are pointwise combinations of the GL fields), the k combinations
    whose fields hθ_s carry the most energy across the draws are chosen (top right singular vectors of
    the stacked, normalised fields), so that the chosen fields are independent at each θ.  The operator
    path counts m' among its m computed eigenvalues (so m' ≤ m) and takes λ_max from a power iteration;
    only those m' are converged (residual ≤ TOL·λ_max; the rest are upper bounds), and it warns
    (SymdiscWarning) when LOBPCG stops at MAXITER.  It costs ≈ 6 S p² per vector per step: prefer few
    draws with many samples each (B ≈ p, S ≈ 2–4p) — Q's rank needs S·min(B, p) ≳ 2p² rows.
    """
    p = arch.num_params
    if method == "auto":
        method = "dense" if p <= MAX_P else "operator"
    if method not in ("dense", "operator"):
        raise InputError(f"unknown spectral method {method!r}; choose auto, dense or operator")
    if not 1 <= k <= p * p:
        raise InputError(f"need 1 ≤ k ≤ p² = {p * p} generators, got k = {k}")
    if method == "dense" and p > MAX_P:
        raise InputError(f"the dense spectral solver forms p²×p² matrices; p = {p} > {MAX_P}: use the operator one")
    theta = theta.to(torch.float64)
    J = _unit_jacobians(arch, theta, X, Y, level)  # (S, B, p)
    if method == "dense":
        V, vals, lmax = _dense(J, theta)
    else:
        V, vals, lmax = _operator(J, theta, k, generator, maxiter)
    m = max(k, int((vals <= max(vals[k - 1], 1e-6 * lmax)).sum()))
    return _select(V[:m], theta, k), vals


def start_draws(p: int, batch: int, method: str = "auto") -> tuple[int, int]:
    """(S draws, B samples each) for a spectral start: the rank of Q needs S·min(B, p) ≳ 2p² rows.  Dense
    (``auto``: p ≤ MAX_P): the training batch, S = max(64, ⌈2p²/B⌉).  Operator: B = max(batch, p) samples per
    draw (per-sample rows pool the same linear symmetries at any batch) and S = max(64, ⌈2p²/B⌉, 2p), so the
    cost per vector, ≈ 6 S p², stays O(p³)."""
    if method == "dense" or (method == "auto" and p <= MAX_P):
        return max(64, math.ceil(2 * p * p / batch)), batch
    B = max(batch, p)
    return max(64, math.ceil(2 * p * p / B), 2 * p), B


def _unit_jacobians(arch: Architecture, theta, X, Y, level: str) -> torch.Tensor:
    """Ĵ (S, B, p) in float64: per-sample loss gradients (or output Jacobian rows), unit norm."""
    arch64 = arch.to(dtype=torch.float64)
    X = X.to(torch.float64) if X.is_floating_point() else X
    Y = Y.to(torch.float64) if Y.is_floating_point() else Y
    if level == "loss":
        J = vmap(lambda t, x, y: loss_jacobian(arch64, t, x, y))(theta, X, Y)
    else:
        J = vmap(lambda t, x: output_jacobian(arch64, t, x))(theta, X)
    return J / J.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def _select(V: torch.Tensor, theta: torch.Tensor, k: int) -> torch.Tensor:
    """The k combinations of the m' near-null generators V (m', p, p) whose fields hθ_s (p-vectors)
    carry the most energy across the draws, each of unit Frobenius norm."""
    fields = torch.einsum("mab,sb->sam", V, theta).reshape(-1, V.shape[0])
    fields = fields / fields.norm(dim=0, keepdim=True).clamp_min(1e-300)
    _, _, Vh = torch.linalg.svd(fields, full_matrices=False)
    H = torch.einsum("km,mab->kab", Vh[:k], V)
    return H / H.flatten(1).norm(dim=1)[:, None, None]


def _dense(J: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, float]:
    """Reference: Q and P = I ⊗ C formed (p²×p²), generalised eigh; all eigenpairs."""
    p = theta.shape[1]
    feats = torch.einsum("sia,sb->siab", J, theta).reshape(-1, p * p)
    Q = (feats.T @ feats / feats.shape[0]).numpy()
    C = (theta.T @ theta / theta.shape[0]).numpy()
    P = np.kron(np.eye(p), C)
    vals, vecs = scipy.linalg.eigh(Q, P + 1e-12 * np.trace(P) / P.shape[0] * np.eye(p * p))
    return torch.from_numpy(vecs.T.copy()).reshape(-1, p, p), vals, float(vals[-1])


class WhitenedForm:
    """Q̃ = (I ⊗ C^{-1/2}) Q (I ⊗ C^{-1/2}) as an operator on blocks G (m, p, p) of generators g.

    With Π g = (g θ̃_s)_s ∈ ℝ^{S×p}, Πᵀ Z = Σ_s z_s θ̃_sᵀ and D'_s = (1/B) Σ_i Ĵ_si Ĵ_siᵀ (p×p, trace 1):

        Q̃ g = (1/S) Σ_s D'_s g θ̃_s θ̃_sᵀ = (1/S) Πᵀ D' Π g,     ΠᵀΠ = S·I (whitened θ̃).

    D'_s is kept as the rows Ĵ_s (B×p) when B ≤ p, else as the p×p matrix: O(S p² + S p min(B, p))
    per vector.  ``precondition`` applies T = (1/S) Πᵀ (D' + δ)^{-1} Π (blockwise inverse, Woodbury
    when B ≤ p; in float32), which cuts the LOBPCG iterations ≈ 2–3× for about one more product.
    """

    def __init__(self, J: torch.Tensor, theta: torch.Tensor):
        S, B, p = J.shape
        self.S, self.p = S, p
        C = theta.T @ theta / S
        C = C + 1e-12 * torch.trace(C) / p * torch.eye(p, dtype=C.dtype)  # the dense path's ridge on P
        w, U = torch.linalg.eigh(C)
        self.W = (U * w.rsqrt()) @ U.T  # C^{-1/2}: h = g W
        self.theta_w = theta @ self.W  # (S, p) rows θ̃_s
        self.delta = PRECOND_RIDGE / p
        eye = torch.eye(min(B, p), dtype=J.dtype)
        if B <= p:
            self.J, self.D = J / B**0.5, None  # D'_s = J_sᵀ J_s
            K = torch.linalg.inv(self.delta * eye + self.J @ self.J.transpose(1, 2))  # (S, B, B)
        else:
            self.D = J.transpose(1, 2) @ J / B  # (S, p, p)
            K = torch.cholesky_inverse(torch.linalg.cholesky(self.D + self.delta * eye))
        # the preconditioner runs in float32: LOBPCG needs it only approximately
        self.K32, self.theta_w32 = K.float(), self.theta_w.float()
        self.J32 = self.J.float() if self.D is None else None

    def _pi(self, G: torch.Tensor, tw: torch.Tensor) -> torch.Tensor:  # (m, p, p) -> (S, p, m): z_s = g θ̃_s
        m, p = G.shape[0], self.p
        return (G.reshape(m * p, p) @ tw.T).reshape(m, p, self.S).permute(2, 1, 0).contiguous()

    def _pi_t(self, Z: torch.Tensor, tw: torch.Tensor) -> torch.Tensor:  # (S, p, m) -> (m, p, p): Σ_s z_s θ̃_sᵀ / S
        m, p = Z.shape[2], self.p
        return (Z.permute(2, 1, 0).reshape(m * p, self.S) @ tw).reshape(m, p, p) / self.S

    def apply(self, G: torch.Tensor) -> torch.Tensor:
        Z = self._pi(G, self.theta_w)
        Z = self.D @ Z if self.D is not None else self.J.transpose(1, 2) @ (self.J @ Z)
        return self._pi_t(Z, self.theta_w)

    def precondition(self, G: torch.Tensor) -> torch.Tensor:
        Z = self._pi(G.float(), self.theta_w32)
        if self.D is not None:
            Z = self.K32 @ Z
        else:
            Z = (Z - self.J32.transpose(1, 2) @ (self.K32 @ (self.J32 @ Z))) / self.delta
        return self._pi_t(Z, self.theta_w32).double()

    def matmat(self, V: torch.Tensor, fn=None) -> torch.Tensor:
        """(p², m) columns vec(g) (row-major) → (p², m)."""
        m = V.shape[1]
        out = (fn or self.apply)(V.T.reshape(m, self.p, self.p))
        return out.reshape(m, -1).T


def block_size(k: int) -> int:
    """Eigenpairs computed by the operator path: k plus guard vectors (they speed LOBPCG up)."""
    return 2 * k + 8


def _operator(J: torch.Tensor, theta: torch.Tensor, k: int, generator: torch.Generator | None, maxiter: int):
    """Matrix-free path: bottom m = min(p², 2k+8) eigenpairs of Q̃ by LOBPCG; h = g C^{-1/2}."""
    p = theta.shape[1]
    n, m = p * p, min(p * p, block_size(k))
    form = WhitenedForm(J, theta)
    lmax = _power_lmax(form, n, generator)
    X0 = torch.randn(n, m, dtype=torch.float64, generator=generator)
    if 3 * m >= n:  # tiny p (p² ≤ 3m): LOBPCG's basis would be everything; Rayleigh–Ritz on ℝ^{p²}
        vals, vecs = torch.linalg.eigh(_sym(form.matmat(torch.eye(n, dtype=torch.float64))))
        vals, G = vals[:m], vecs[:, :m]
    else:
        def need(lam):  # the eigenpairs that the selection uses
            return max(k, int((lam <= max(lam[k - 1].item(), 1e-6 * lmax)).sum()))
        vals, G = lobpcg(form.matmat, lambda R: form.matmat(R, form.precondition), X0, need, TOL * lmax, maxiter)
    V = G.T.reshape(-1, p, p) @ form.W  # h = g C^{-1/2}: P-orthonormal like the dense eigenvectors
    return V, vals.numpy(), lmax


def _sym(A: torch.Tensor) -> torch.Tensor:
    return (A + A.T) / 2


def _power_lmax(form: WhitenedForm, n: int, generator, iters: int = 15) -> float:
    """λ_max(Q̃) by power iteration (≤ λ_max; within a few % — it only scales thresholds)."""
    v = torch.randn(n, 1, dtype=torch.float64, generator=generator)
    v = v / v.norm()
    lam = 0.0
    for _ in range(iters):
        w = form.matmat(v)
        lam = float((v * w).sum())
        v = w / w.norm().clamp_min(1e-300)
    return max(lam, 1e-300)


def _svqb(W: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of span(W) from its Gram matrix (SVQB, Stathopoulos & Wu 2002): W U Σ^{-1/2}
    after scaling the columns to unit norm (so that small residuals are not mistaken for dependence),
    dropping directions with σ ≤ 1e-12 σ_max (matmuls + a small eigh: no tall QR)."""
    W = W / W.norm(dim=0).clamp_min(1e-300)
    sig, U = torch.linalg.eigh(_sym(W.T @ W))
    keep = sig > 1e-12 * sig[-1].clamp_min(1e-300)
    return W @ (U[:, keep] * sig[keep].rsqrt())


def _orth(W: torch.Tensor, *bases: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of W's columns projected off the orthonormal ``bases`` (twice, for accuracy)."""
    for _ in range(2):
        for Z in bases:
            W = W - Z @ (Z.T @ W)
        W = _svqb(W)
    return W


def lobpcg(apply, precond, X0: torch.Tensor, need, tol: float, maxiter: int = MAXITER,
           history: list | None = None):
    """Bottom eigenpairs of a symmetric operator by block LOBPCG (Knyazev 2001) on an orthonormal basis.

    ``apply``/``precond`` map (n, b) → (n, b).  Each step: W = T(AX − XΛ) for the unconverged columns,
    Rayleigh–Ritz on span[X, W, P] (orthonormal: W projected off X and P, then SVQB; P ⊥ X by construction),
    X ← bottom Ritz vectors, P ← their component outside the old X (orthonormalised in the small
    space, Hetmaniuk–Lehoucq).  A·X, A·P are carried as combinations; A·X is recomputed at the end.
    Stops when the first ``need(λ)`` residual norms are ≤ tol (``history`` collects the needed residual
    norms of each step).  Returns (λ ascending, X).
    """
    m = X0.shape[1]
    X = _orth(X0)
    AX = apply(X)
    lam, C = torch.linalg.eigh(_sym(X.T @ AX))
    X, AX = X @ C, AX @ C
    P = AP = None
    for _ in range(maxiter):
        res = (AX - X * lam).norm(dim=0)
        active, nd = res > tol, need(lam)
        if history is not None:
            history.append(res[:nd].clone())
        if not active[:nd].any():
            break
        W = _orth(precond(AX[:, active] - X[:, active] * lam[active]), *([X] if P is None else [X, P]))
        AW = apply(W)
        Z = torch.cat([X, W] + ([] if P is None else [P]), dim=1)
        AZ = torch.cat([AX, AW] + ([] if P is None else [AP]), dim=1)
        lam_all, Call = torch.linalg.eigh(_sym(Z.T @ AZ))
        Y, lam, rest = Call[:, :m], lam_all[:m], Call[:, m:]
        # P: the new vectors' component outside span(X_old), orthonormal and ⊥ the new X — taken
        # within the other Ritz vectors (the complement of Y in the small space).
        E = rest if rest.shape[1] <= m else rest @ _orth(rest[m:].T @ Y[m:])
        X, AX, P, AP = Z @ Y, AZ @ Y, Z @ E, AZ @ E
    else:
        warnings.warn(f"spectral LOBPCG stopped at {maxiter} iterations with residual {res[:nd].max():.1e} "
                      f"(tolerance {tol:.1e}); the initial generators are approximate", SymdiscWarning, stacklevel=3)
    X = _orth(X)
    AX = apply(X)
    lam, C = torch.linalg.eigh(_sym(X.T @ AX))
    return lam, X @ C
