"""Matrix-free checks for large models (p up to 10⁶ and beyond): J is applied, never formed.

J = D_θ F(θ, X) at the output level (F = f, N = B·out rows) or the loss level (F = per-sample losses,
N = B); J v is one jvp, Jᵀ e one vjp (``symdisc.jacobians``), k of them vmapped in chunks.

* ``check_fields``  per field ξ: the relative residual ‖J ξ‖ / (‖J‖₂ ‖ξ‖) — 0 for an exact symmetry
  (float64 rounding gives ~1e-16..1e-13), O(√(stable rank / p)) … O(1) for a direction that is not one.
  ‖J‖₂ comes from ``power_steps`` power iterations on JᵀJ (jvp then vjp, a fixed start): a lower bound, so
  the residual reported is an upper bound.  Fields are a (p, k) tensor or Symmetry objects, whose fields
  ξ_h(θ) = Symmetry.field(e_h, θ) are built ``chunk`` at a time (never p×k when k is large).
* ``subspace_null_dimension``  dim null(J) ∩ span V for a basis V (p, k) (J V by k jvps, whitened by
  (VᵀV)^{-1/2}, then the SVD of the N×k result, gap cut as the census), or for ``block`` = named tensors
  (the N×k Jacobian of those tensors alone by reverse mode).

Time is wall-clock seconds; memory is reported as ``peak_memory_mib``: on CUDA torch's
max_memory_allocated during the call; on the CPU the growth of the process's peak resident set
(getrusage ru_maxrss, a high-water mark: 0 if the call stays under an earlier peak, so measure in a
fresh process — benchmarks/census_matrixfree.py does).
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch.func import jacrev, vmap

from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.gram import top_singular_value
from symdisc.jacobians import _check_level, _parts, jacobian_times, jacobian_transpose_times
from symdisc.linalg import RankCut, gap_cut, rtol_cut
from symdisc.progress import track
from symdisc.symmetry.base import Symmetry

POWER_STEPS = 20
FIELD_CHUNK_ELEMENTS = 2**25  # p·k of one chunk of fields (256 MiB in float64)


@dataclass
class FieldCheck:
    level: str
    num_params: int
    rows: int
    names: list[str]
    residuals: list[float]  # ‖J ξ‖ / (‖J‖₂ ‖ξ‖)
    field_norms: list[float]
    jacobian_norm: float  # ‖J‖₂ estimate (power iteration: a lower bound)
    norm_estimate: str
    seconds: float
    peak_memory_mib: float
    memory_kind: str
    max_residual: float | None = None
    median_residual: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SubspaceNull:
    level: str
    num_params: int
    rows: int
    subspace: str  # "basis" or the block's tensor names
    dim: int  # dim span V
    null_dim: int | None  # None when the cut is ambiguous
    rank: int
    gap_decades: float | None
    cut_rtol: float | None
    ambiguous: bool
    runner_up_null_dim: int | None
    seconds: float
    peak_memory_mib: float
    memory_kind: str
    singular_values: list[float] = field(default_factory=list)  # σ(J Q), descending

    def to_dict(self) -> dict:
        return asdict(self)


class _Peak:
    mib: float = 0.0
    kind: str = ""


@contextmanager
def peak_memory(device: torch.device) -> Iterator[_Peak]:
    """The call's peak memory (MiB): CUDA max_memory_allocated, or the growth of ru_maxrss on the CPU."""
    out = _Peak()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield out
        torch.cuda.synchronize(device)
        out.mib, out.kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
        return
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield out
    out.mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # Linux: KiB
    out.kind = "ru_maxrss growth (CPU process peak RSS)"


def _ops(arch: Architecture, theta, X, Y, level: str, chunk: int | None):
    times = lambda V: jacobian_times(arch, theta, X, V, Y, level, chunk_size=chunk)
    ttimes = lambda E: jacobian_transpose_times(arch, theta, X, E, Y, level, chunk_size=chunk)
    return times, ttimes


def _rows(arch: Architecture, theta, X, level: str) -> int:
    return X.shape[0] * (arch.forward(theta, X[:1]).numel() if level == "output" else 1)


def _field_chunks(fields, theta, X, chunk: int) -> Iterator[tuple[list[str], torch.Tensor]]:
    """(names, p×c fields) chunk by chunk, from a tensor or from Symmetry objects (one jvp per field)."""
    if isinstance(fields, torch.Tensor):
        for i in range(0, fields.shape[1], chunk):
            block = fields[:, i:i + chunk].to(theta)
            yield [f"field[{j}]" for j in range(i, i + block.shape[1])], block
        return
    pending: list[tuple[str, torch.Tensor]] = []
    for s in fields:
        if s.discrete:
            continue
        data = X if s.data_dependent else None
        for h in range(s.num_generators):
            e = torch.zeros(s.num_generators, dtype=theta.dtype, device=theta.device)
            e[h] = 1.0
            pending.append((f"{s.name}[{h}]", s.field(e, theta, data)))
            if len(pending) == chunk:
                yield [n for n, _ in pending], torch.stack([v for _, v in pending], dim=1)
                pending = []
    if pending:
        yield [n for n, _ in pending], torch.stack([v for _, v in pending], dim=1)


def check_fields(arch: Architecture, theta: torch.Tensor, X: torch.Tensor, fields: torch.Tensor | Sequence[Symmetry],
                 Y: torch.Tensor | None = None, level: str = "output", power_steps: int = POWER_STEPS,
                 chunk: int | None = None, progress: bool = False) -> FieldCheck:
    """Relative residuals ‖J ξ‖ / (‖J‖₂ ‖ξ‖) of ``fields`` at (θ, X), matrix-free (see the module docstring)."""
    p = arch.num_params
    _check_level(level, Y)
    if theta.shape != (p,):
        raise InputError(f"θ has shape {tuple(theta.shape)}, {arch.name} has p = {p}")
    if isinstance(fields, torch.Tensor) and (fields.ndim != 2 or fields.shape[0] != p):
        raise InputError(f"fields must be a (p, k) = ({p}, k) tensor, got {tuple(fields.shape)}")
    N = _rows(arch, theta, X, level)
    chunk = chunk or max(1, min(256, FIELD_CHUNK_ELEMENTS // p))
    start = time.perf_counter()
    with peak_memory(theta.device) as peak:
        times, ttimes = _ops(arch, theta, X, Y, level, chunk)
        norm = top_singular_value(times, ttimes, p, theta.dtype, theta.device, power_steps)
        names, res, norms = [], [], []
        k = fields.shape[1] if isinstance(fields, torch.Tensor) else sum(s.num_generators for s in fields)
        chunks = track(_field_chunks(fields, theta, X, chunk), f"fields of {arch.name}", total=-(-k // chunk),
                       enabled=progress)
        for chunk_names, Xi in chunks:
            r = torch.linalg.vector_norm(times(Xi), dim=0)
            n = torch.linalg.vector_norm(Xi, dim=0)
            names += chunk_names
            norms += n.tolist()
            res += torch.where(n > 0, r / (norm * n).clamp_min(torch.finfo(theta.dtype).tiny), 0.0).tolist()
    return FieldCheck(
        level=level, num_params=p, rows=N, names=names, residuals=res, field_norms=norms, jacobian_norm=norm,
        norm_estimate=f"power iteration on JᵀJ, {power_steps} steps (a lower bound)",
        seconds=round(time.perf_counter() - start, 4), peak_memory_mib=round(peak.mib, 1), memory_kind=peak.kind,
        max_residual=max(res) if res else None, median_residual=statistics.median(res) if res else None,
    )


def subspace_null_dimension(arch: Architecture, theta: torch.Tensor, X: torch.Tensor,
                            basis: torch.Tensor | None = None, block: Sequence[str] | None = None,
                            Y: torch.Tensor | None = None, level: str = "output", rtol: float | None = None,
                            max_gb: float = 4.0, chunk: int | None = None) -> SubspaceNull:
    """dim(null J ∩ span V) for ``basis`` V (p, k), or for the coordinates of the ``block`` tensors."""
    if (basis is None) == (block is None):
        raise InputError("give exactly one of basis (a (p, k) tensor) and block (tensor names)")
    _check_level(level, Y)
    p, N = arch.num_params, _rows(arch, theta, X, level)
    start = time.perf_counter()
    with peak_memory(theta.device) as peak:
        if block is not None:
            names = list(dict.fromkeys(block))
            for n in names:
                arch.layout.index(n)  # InputError naming the layout's tensors
            k = sum(math.prod(arch.layout.shape(n)) for n in names)
            _guard(N, k, max_gb, "block Jacobian")
            A, what = _block_jacobian(arch, theta, X, Y, level, names), ",".join(names)
            dim = k
        else:
            if basis.ndim != 2 or basis.shape[0] != p:
                raise InputError(f"basis must be a (p, k) = ({p}, k) tensor, got {tuple(basis.shape)}")
            _guard(N, basis.shape[1], max_gb, "J V")
            V = basis.to(theta)
            lam, U = torch.linalg.eigh(V.T @ V)  # whitening: span V = span V W, W = U Λ^{-1/2} on λ > tol
            keep = lam > lam[-1].clamp_min(0) * basis.shape[1] * torch.finfo(theta.dtype).eps
            W = U[:, keep] / lam[keep].sqrt()
            times, _ = _ops(arch, theta, X, Y, level, chunk or max(1, min(256, FIELD_CHUNK_ELEMENTS // max(N, p))))
            A, what, dim = times(V) @ W, "basis", int(keep.sum())
        s = torch.linalg.svdvals(A.T if A.shape[0] < A.shape[1] else A) if A.numel() else A.new_zeros(0)
        cut: RankCut = gap_cut(s, dim, N) if rtol is None else rtol_cut(s, dim, rtol)
    return SubspaceNull(
        level=level, num_params=p, rows=N, subspace=what, dim=dim,
        null_dim=None if cut.ambiguous else dim - cut.rank, rank=cut.rank, gap_decades=cut.gap_decades,
        cut_rtol=cut.rtol, ambiguous=cut.ambiguous,
        runner_up_null_dim=None if cut.runner_up_rank is None else dim - cut.runner_up_rank,
        seconds=round(time.perf_counter() - start, 4), peak_memory_mib=round(peak.mib, 1), memory_kind=peak.kind,
        singular_values=[float(x) for x in s[:256]],
    )


def _guard(rows: int, cols: int, max_gb: float, what: str) -> None:
    gb = 8 * rows * cols / 2**30
    if gb > max_gb:
        raise InputError(f"{what} would be {rows}×{cols} ({gb:.1f} GiB > {max_gb} GiB): use a smaller batch, "
                         "block or basis, or raise max_gb")


def _block_jacobian(arch: Architecture, theta, X, Y, level: str, names: list[str]) -> torch.Tensor:
    """D F / D (the named tensors) as N × k, by reverse mode (vmapped over samples when sample-wise)."""
    parts = _parts(arch, theta)
    sub = {n: parts[n] for n in names}
    rest = {n: t for n, t in parts.items() if n not in sub}
    if level == "output":
        F = lambda s, x: arch.forward_named({**rest, **s}, x).reshape(-1)
    else:
        F = lambda s, x, y: arch.loss(arch.forward_named({**rest, **s}, x), y).reshape(-1)
    if arch.samplewise:
        if level == "output":
            jac = vmap(jacrev(lambda s, x: F(s, x.unsqueeze(0))), in_dims=(None, 0))(sub, X)
        else:
            jac = vmap(jacrev(lambda s, x, y: F(s, x.unsqueeze(0), y.unsqueeze(0))), in_dims=(None, 0, 0))(sub, X, Y)
    else:
        jac = jacrev(lambda s: F(s, X) if level == "output" else F(s, X, Y))(sub)
    N = _rows(arch, theta, X, level)
    return torch.cat([jac[n].reshape(N, -1) for n in names], dim=1)
