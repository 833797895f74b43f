"""Numerical rank and the subspaces built on it: the rank rules every module uses.

* fixed cut   rank_rtol(A) = #{σ_i > rtol·σ_max} (0 when σ_max = 0).  The known orbit dimension,
  verification's null spaces and spans, and the census with an explicit ``rtol`` use it.
* gap cut     (``gap_cut``, the census's default) the rank at the largest gap of log10 σ, every σ
  floored at φ = √max(N, n)·ε·σ_max: the computed σ of exactly-null directions lie below it (0.3–7
  ε·σ_max measured, benchmarks/census_noise.py), while MATLAB's / numpy's max(N, n)·ε·σ_max would
  hide genuine σ ≈ 1e-13·σ_max at N ≈ 10³.  The cut is *ambiguous* when that gap is under
  ``min_gap`` decades or the runner-up gap is within ``margin`` decades of it.

Also ``expm``, the one matrix exponential every group action uses, and ``lstsq``, the one least-squares solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DEFAULT_RTOL = 1e-10
MIN_GAP_DECADES = 3.0  # a cut whose gap is narrower is ambiguous
GAP_MARGIN_DECADES = 1.0  # ... and so is one whose runner-up gap is within this of it


def rank_from_singular_values(s: torch.Tensor, rtol: float = DEFAULT_RTOL) -> int:
    """#{σ_i > rtol·σ_max} for singular values ``s`` sorted in decreasing order."""
    if s.numel() == 0 or not s[0] > 0:
        return 0
    return int((s > rtol * s[0]).sum())


def numerical_rank(A: torch.Tensor, rtol: float = DEFAULT_RTOL) -> int:
    """The numerical rank of A (σ_i > rtol·σ_max)."""
    return 0 if A.numel() == 0 else rank_from_singular_values(_svdvals(A), rtol)


def _svdvals(A: torch.Tensor) -> torch.Tensor:
    # same singular values; LAPACK is several times faster on the tall orientation (benchmarks/README.md)
    return torch.linalg.svdvals(A.T if A.shape[0] < A.shape[1] else A)


def null_basis(J: torch.Tensor, rtol: float = DEFAULT_RTOL) -> torch.Tensor:
    """Orthonormal basis (p × d) of null(J), d = p − rank J."""
    _, s, Vh = torch.linalg.svd(J, full_matrices=True)
    return Vh[rank_from_singular_values(s, rtol):].T


@dataclass(frozen=True)
class NullSpace:
    """null(J) ⊂ ℝ^p held through an orthonormal basis R (p × r) of its complement, the row space of J, so nothing
    p × p is formed (a full SVD for an explicit null basis costs O(p³): minutes at p ≈ 10⁴).  With P the orthogonal
    projector onto null(J):

    * ``dim``        p − r;
    * ``share(Ξ)``   ‖Pξ‖²/‖ξ‖² = 1 − ‖Rᵀξ‖²/‖ξ‖² per column;
    * ``cos2(A)``    cos² of the principal angles between span A (orthonormal columns) and null(J), largest
                     first: the top min(k, dim) eigenvalues of AᵀPA = I − (RᵀA)ᵀ(RᵀA)."""

    rows: torch.Tensor

    @property
    def dim(self) -> int:
        return self.rows.shape[0] - self.rows.shape[1]

    def share(self, xi: torch.Tensor) -> torch.Tensor:
        return (1 - (self.rows.T @ xi).pow(2).sum(0) / xi.pow(2).sum(0).clamp_min(1e-300)).clamp(0.0, 1.0)

    def cos2(self, A: torch.Tensor) -> torch.Tensor:
        n = min(A.shape[1], self.dim)
        if n <= 0:
            return A.new_zeros(0)
        B = self.rows.T @ A
        C = torch.eye(A.shape[1], dtype=A.dtype, device=A.device) - B.T @ B
        return torch.linalg.eigvalsh((C + C.T) / 2).flip(0)[:n].clamp(0.0, 1.0)


def null_space(J: torch.Tensor, rtol: float = DEFAULT_RTOL) -> NullSpace:
    """null(J) as a ``NullSpace``, the rank cut at rtol: one thin SVD (of Jᵀ, the fast orientation), O(Np·min(N, p))."""
    if J.numel() == 0:
        return NullSpace(J.new_zeros(J.shape[1], 0))
    U, s, _ = torch.linalg.svd(J.T, full_matrices=False)
    return NullSpace(U[:, : rank_from_singular_values(s, rtol)])


def orth(A: torch.Tensor, rtol: float = 1e-8) -> torch.Tensor:
    """Orthonormal basis of span A (columns), rank cut at rtol."""
    if A.shape[1] == 0:
        return A
    U, s, _ = torch.linalg.svd(A, full_matrices=False)
    return U[:, : rank_from_singular_values(s, rtol)]


def null_dimension(J: torch.Tensor, rtol: float = DEFAULT_RTOL) -> tuple[int, float | None]:
    """(p − rank J, gap in decades at the cut; None when nothing or everything is cut)."""
    p = J.shape[1]
    if J.numel() == 0:
        return p, None
    s = _svdvals(J)
    rank = rank_from_singular_values(s, rtol)
    if rank == 0:
        return p, None
    gap = None
    if 0 < rank < len(s):  # the floor eps·σ_max caps the gap of exact zeros at ~15.7 decades
        floor = torch.finfo(s.dtype).eps * float(s[0])
        gap = math.log10(float(s[rank - 1]) / max(float(s[rank]), floor))
    return p - rank, gap


@dataclass(frozen=True)
class RankCut:
    """Where a spectrum was cut.  ``rank`` (of n columns); ``gap_decades`` = log10(σ_r / max(σ_{r+1}, floor))
    at the cut (None when nothing or everything is cut); ``rtol`` the effective relative threshold of the cut
    (gap cut: the geometric middle of the gap over σ_max; fixed cut: the rtol given); ``ambiguous`` whether
    the gap fails to support the count; ``runner_up_rank`` / ``runner_up_decades`` the second-largest gap."""

    rank: int
    gap_decades: float | None
    rtol: float | None
    ambiguous: bool = False
    runner_up_rank: int | None = None
    runner_up_decades: float | None = None


def rank_floor(smax: float, rows: int, cols: int, dtype: torch.dtype = torch.float64) -> float:
    """φ = √max(rows, cols)·ε·σ_max: singular values below it are indistinguishable from 0."""
    return math.sqrt(max(rows, cols)) * torch.finfo(dtype).eps * smax


def _padded(s: torch.Tensor, n: int) -> torch.Tensor:
    s = torch.sort(s.detach().abs().to(torch.float64).cpu(), descending=True).values
    return torch.cat([s, s.new_zeros(max(n - s.numel(), 0))])[:n]


def gap_cut(s: torch.Tensor, n: int, rows: int, min_gap: float = MIN_GAP_DECADES,
            margin: float = GAP_MARGIN_DECADES, dtype: torch.dtype = torch.float64) -> RankCut:
    """Rank of an (rows × n) matrix with singular values ``s`` (any order; missing ones are 0) at the
    largest gap of log10 max(σ_i, φ), with a virtual σ_{n+1} = φ (so full rank is a candidate)."""
    s = _padded(s, n)
    if n == 0 or not s[0] > 0:
        return RankCut(0, None, None)
    smax = float(s[0])
    floor = rank_floor(smax, rows, n, dtype)
    logs = torch.log10(torch.cat([s.clamp_min(floor), s.new_tensor([floor])]))
    gaps = logs[:-1] - logs[1:]  # gaps[k]: between σ_{k+1} and σ_{k+2}, i.e. rank k + 1
    order = torch.argsort(gaps, descending=True, stable=True)
    best = int(order[0])
    gap = float(gaps[best])
    second = int(order[1]) if n > 1 else None
    gap2 = float(gaps[second]) if second is not None else None
    rtol = 10 ** (0.5 * float(logs[best] + logs[best + 1])) / smax
    ambiguous = gap < min_gap or (gap2 is not None and gap - gap2 < margin)
    return RankCut(best + 1, gap, rtol, ambiguous, None if second is None else second + 1, gap2)


def rtol_cut(s: torch.Tensor, n: int, rtol: float = DEFAULT_RTOL) -> RankCut:
    """The fixed cut #{σ_i > rtol·σ_max}, with the gap at it (the dropped σ floored at ε·σ_max; None when
    every computed σ is kept, as ``null_dimension`` reports it)."""
    computed = min(s.numel(), n)
    s = _padded(s, n)
    rank = rank_from_singular_values(s, rtol)
    gap = None
    if 0 < rank < computed:
        floor = torch.finfo(torch.float64).eps * float(s[0])
        gap = math.log10(float(s[rank - 1]) / max(float(s[rank]), floor))
    return RankCut(rank, gap, rtol)


def singular_values(J: torch.Tensor) -> torch.Tensor:
    """σ(J), descending (LAPACK on the tall orientation)."""
    return _svdvals(J) if J.numel() else J.new_zeros(0)


# torch.linalg.matrix_exp evaluates a single matrix by a Taylor polynomial of a degree chosen from its 1-norm;
# the degree-8 polynomial has a wrong coefficient (pytorch/pytorch#196592; torch 2.13): relative errors up to
# ≈1e-10 (float64) / 4e-5 (float32) for 1-norms in these bands.  (lower, upper, shift a) per dtype.
_T8_BAND = {torch.float64: (3.397168839976962e-04, 4.991228871115323e-02, 0.1),
            torch.float32: (5.116619363445086e-02, 5.800524627688768e-01, 1.6)}


def expm(M: torch.Tensor) -> torch.Tensor:
    """exp(M) for a matrix (…, n, n), accurate to rounding: in torch's faulty degree-8 band (above) it is
    evaluated as e^{−a} exp(M + aI), whose 1-norm lies in [a − ‖M‖₁, a + ‖M‖₁], a band torch gets right.
    Tensor ops only (no branching on values): safe under vmap, jvp, grad."""
    band = _T8_BAND.get(M.dtype)
    if band is None:
        return torch.linalg.matrix_exp(M)
    lower, upper, shift = band
    norm = M.abs().sum(-2).amax(-1)
    a = torch.where((norm > lower) & (norm <= upper), shift, 0.0).to(M.dtype)[..., None, None]
    eye = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    return torch.linalg.matrix_exp(M + a * eye) * torch.exp(-a)


def lstsq(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """X minimising ‖AX − B‖ (the minimum-norm one for a rank-deficient A; batched like ``torch.linalg.lstsq``).

    On the CPU by LAPACK's gelsd (SVD): torch's default there, gelsy, returns last-bit different X for identical
    inputs from call to call (measured 1e-15; it made DCS's mirror search differ between runs with one seed,
    docs/reliability.md).  On CUDA torch's one driver, gels (A of full rank)."""
    return torch.linalg.lstsq(A, B, driver="gelsd" if A.device.type == "cpu" else None).solution
