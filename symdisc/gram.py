"""Singular values of a tall N×n matrix A from its Gram matrix, refined in float64 (the census's ``gram`` method).

    G = AᵀA = Σ_b A_bᵀ A_b        (accumulated over row blocks: memory n², not N·n)
    Pᵀ G P = Rᵀ R                 (pivoted Cholesky, stopped at the first pivot ≤ τ·max diag G, τ = 1e-10)

The r accepted pivots span the "top" coordinates T, on which A is well conditioned (σ ≳ √τ·max‖a_j‖);
the n − r others, B, hold every direction with σ below that, the null space included.  Squaring costs
half the digits (G resolves σ only down to ≈ √ε·σ_max), so the bottom is recomputed from A itself:

    V = P [−R₁₁⁻¹R₁₂; I]          (n × d, d = n − r: every v with A_T v_T + A_B v_B ⊥ range A_T)
    V_T ← V_T − R₁₁⁻¹R₁₁⁻ᵀ (Aᵀ A V)_T   (corrected semi-normal equations, twice, with A applied in float64)
    σ_bottom = σ(A Q),  Q = orth V    (an n×d SVD in float64)

null A ⊆ span V (A_T has full column rank), and by interlacing the i-th smallest σ of A is ≤ the i-th
smallest of σ(A Q): the bottom values are float64-exact upper bounds, the top ones the diagonal |R_kk|
(estimates of the large σ: a pivoted Cholesky of G is a pivoted QR of A).  The spectrum returned is
[|R_11|, …, |R_rr|, σ_bottom] (n values, descending), cut by the same rules as an SVD's.

Cost: N·n² (the Gram, BLAS-3 ``syrk``) + n³/3 (the factorisation) + O(N·n·d + n²·d) for the bottom,
against ≈ 4·N·n² − 4n³/3 of mostly BLAS-2 bidiagonalisation for ``svdvals``.  On the CPU the factor is
LAPACK's ``dpstrf``; elsewhere (no pivoted Cholesky in torch) ``eigh`` of G plays its part: top = √λ for
λ > τ·λ_max, V = the other eigenvectors, refined the same way with the eigen-solve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager

import numpy as np
import scipy.linalg
import torch

GRAM_TOL = 1e-10  # pivots ≤ GRAM_TOL·max diag G go to the bottom (σ-level 1e-5), recomputed from A
REFINE_STEPS = 2
POWER_STEPS = 12  # power iterations for σ_max (the scale of the rank floor)

Apply = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def blas_threads():
    """scipy's BLAS / LAPACK (its own OpenBLAS) on torch.get_num_threads() threads, like torch's own kernels."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        yield


def accumulate_gram(blocks: Iterable[torch.Tensor], n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Σ_b A_bᵀ A_b for row blocks A_b (rows_b × n); its upper triangle is valid.  CPU, float64: BLAS ``dsyrk``
    into a Fortran-ordered array (half the flops of a product, no copy of the blocks); elsewhere ``addmm``."""
    cpu = device is None or torch.device(device).type == "cpu"
    if cpu and dtype == torch.float64:
        C = np.zeros((n, n), dtype=np.float64, order="F")
        for A in blocks:  # the block is built outside the BLAS thread limit
            a = A.detach().to(torch.float64).cpu().numpy()
            with blas_threads():
                if a.flags.f_contiguous:  # e.g. Jᵀ of a row-major J: C = aᵀa without a copy
                    C = scipy.linalg.blas.dsyrk(1.0, a, beta=1.0, c=C, trans=1, lower=0, overwrite_c=1)
                else:  # aᵀ is n × rows in Fortran order: C = (aᵀ)(aᵀ)ᵀ without a copy
                    a = np.ascontiguousarray(a)
                    C = scipy.linalg.blas.dsyrk(1.0, a.T, beta=1.0, c=C, trans=0, lower=0, overwrite_c=1)
        return torch.from_numpy(C)  # strides (1, n); only the upper triangle is filled
    G = torch.zeros(n, n, dtype=dtype, device=device)
    for A in blocks:
        G.addmm_(A.T, A)
    return G


def gram_singular_values(G: torch.Tensor, times: Apply, ttimes: Apply, tol: float = GRAM_TOL,
                         refine: int = REFINE_STEPS, factor: str = "auto") -> torch.Tensor:
    """The n singular values of A (descending) from G = AᵀA (see the module docstring); ``times(V)`` = A V and
    ``ttimes(E)`` = Aᵀ E in float64.  ``factor``: "cholesky" (CPU, LAPACK dpstrf), "eigh", or "auto".  G may be
    overwritten."""
    n = G.shape[0]
    if n == 0:
        return G.new_zeros(0)
    if factor == "auto":
        factor = "cholesky" if G.device.type == "cpu" else "eigh"
    top, V, solve = (_cholesky if factor == "cholesky" else _eigh)(G, tol)
    if V.shape[1]:
        for _ in range(refine):
            V = V - solve(ttimes(times(V)))
        bottom = torch.linalg.svdvals(times(torch.linalg.qr(V).Q)).to(top)
        top = torch.cat([top, bottom, top.new_zeros(V.shape[1] - bottom.numel())])  # A Q wide: the rest are 0
    s = torch.sort(top, descending=True).values
    s[0] = max(float(s[0]), top_singular_value(times, ttimes, n, G.dtype, G.device))  # |R_11| = max‖a_j‖ ≤ σ_max
    return s


def top_singular_value(times: Apply, ttimes: Apply, n: int, dtype=torch.float64, device=None,
                       iters: int = POWER_STEPS) -> float:
    """σ_max(A) by power iteration on AᵀA (a lower bound; a fixed start, so repeatable)."""
    x = torch.randn(n, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x.to(dtype=dtype, device=device)
    sigma = 0.0
    for _ in range(iters):
        y = times(x / x.norm())
        sigma = float(y.norm())
        if sigma == 0.0:
            return 0.0
        x = ttimes(y)
    return sigma


def _cholesky(G: torch.Tensor, tol: float):
    """Pivoted Cholesky (LAPACK dpstrf, upper, in place): top |R_kk|, the candidate basis V and its Newton solve.
    Triangular solves use the factor in place, its trailing block set to I: U = [R₁₁ R₁₂; 0 I] (no r² copy)."""
    a = G.detach().to(torch.float64).cpu().numpy()
    if not a.flags.f_contiguous:  # a full symmetric matrix in C order: its transpose is the same, in F order
        a = a.T if a.flags.c_contiguous else np.asfortranarray(a)
    thresh = tol * float(np.max(np.diag(a)))
    with blas_threads():  # reads the upper triangle, factors in place
        c, piv, r, info = scipy.linalg.lapack.dpstrf(a, tol=thresh, lower=0, overwrite_a=1)
    if info < 0:
        raise RuntimeError(f"dpstrf failed (info {info})")
    n, r = c.shape[0], int(r)
    top = torch.from_numpy(np.abs(np.diag(c)[:r]).copy())
    R12 = np.zeros((n, n - r), order="F")
    R12[:r] = c[:r, r:]
    c[r:, r:] = np.eye(n - r)
    piv = torch.from_numpy(piv.astype(np.int64) - 1)
    top_idx, bottom_idx = piv[:r], piv[r:]

    def tri(B: np.ndarray, trans: int) -> np.ndarray:  # op(U)⁻¹ B for B with zero bottom rows
        with blas_threads():
            return scipy.linalg.blas.dtrsm(1.0, c, B, lower=0, trans_a=trans)

    V = torch.zeros(n, n - r, dtype=torch.float64)
    V[top_idx] = -torch.from_numpy(tri(R12, 0)[:r])
    V[bottom_idx, torch.arange(n - r)] = 1.0

    def solve(H: torch.Tensor) -> torch.Tensor:  # δ with δ_T = R₁₁⁻¹R₁₁⁻ᵀ H_T, δ_B = 0
        B = np.zeros((n, H.shape[1]), order="F")
        B[:r] = H[top_idx].cpu().numpy()
        y = tri(B, 1)
        y[r:] = 0.0
        out = torch.zeros_like(H)
        out[top_idx] = torch.from_numpy(tri(y, 0)[:r]).to(H)
        return out

    return top, V, solve


def _eigh(G: torch.Tensor, tol: float):
    """The same from eigh(G): top √λ (λ > tol·λ_max), V = the remaining eigenvectors."""
    Gs = torch.triu(G) + torch.triu(G, 1).T  # the valid (upper) triangle, symmetrised
    lam, U = torch.linalg.eigh(Gs)
    keep = lam > tol * lam[-1].clamp_min(0)
    Ut, lt = U[:, keep], lam[keep]

    def solve(H: torch.Tensor) -> torch.Tensor:
        return Ut @ ((Ut.T @ H) / lt[:, None])

    return lt.sqrt(), U[:, ~keep], solve
