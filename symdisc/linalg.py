"""Numerical rank and the subspaces built on it: the one rank rule every module uses.

rank_rtol(A) = #{σ_i > rtol·σ_max} (0 when σ_max = 0).  The census, the known orbit dimension,
verification's null spaces and spans all cut singular values with this rule.  Also ``expm``, the one
matrix exponential every group action uses.
"""

from __future__ import annotations

import math

import torch

DEFAULT_RTOL = 1e-10


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
