"""Symmetry census (`symdisc.census`): count the continuous symmetries at random points exactly, from the
null spaces of Jacobians (this module is `symdisc.nullspace`; `symdisc.census` is its main function).

At θ and a batch X of B samples, directions v with J v = 0 move θ without changing

* (output level) the batch outputs:  J = D_θ f(θ, X) ∈ ℝ^{(B·out)×p};
* (loss level)   the per-sample losses: J = D_θ L(θ, X, Y) ∈ ℝ^{B×p}.

null_dim = p − rank(J).  Functional (data-independent) symmetries stay in the null space at
every B; data-dependent ones leave it as B grows.  The known symmetries' orbit dimension
rank[ξ_1(θ) … ξ_k(θ)] is the lower bound the census is checked against.

Numerics: float64.  The rank is cut (``cut``) at the largest gap of log10 σ above the float64 floor
√max(N, p)·ε·σ_max (``symdisc.linalg.gap_cut``; a point whose gap is under ``min_gap`` decades, or whose
runner-up gap is within 1 decade, is *ambiguous* and its count unsupported), or at a fixed
σ_i > rtol·σ_max when ``rtol`` is given (the faithful variant).  The σ come from a dense SVD of J or,
for large J, from the Gram matrix refined in float64 (``method``, symdisc.spectrum).  Per-sample
Jacobians are built with vmap(jacrev) (sample-wise models) or one batched jacrev.  Reaching the
data-independent dimension needs N ≥ p − d_sym (docs/census.md for costs and measurements).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.linalg import DEFAULT_RTOL, GAP_MARGIN_DECADES, MIN_GAP_DECADES, RankCut, gap_cut, rtol_cut
from symdisc.progress import track
from symdisc.spectrum import check_method, jacobian_spectrum, memory_bytes, resolve_method
from symdisc.symmetry.base import orbit_dimension, stacked_tangents
from symdisc.symmetry.known import continuous_symmetries

LEVELS = ("output", "loss", "both")
CUTS = ("gap", "rtol")


@dataclass
class CensusRow:
    batch_size: int
    output_null_dim: int | None = None
    loss_null_dim: int | None = None
    output_null_dims: list[int] = field(default_factory=list)
    loss_null_dims: list[int] = field(default_factory=list)
    output_gap_decades: float | None = None
    loss_gap_decades: float | None = None
    seconds: float = 0.0
    # per point: the count lacks a gap's support; the count at the runner-up gap; the cut's effective rtol
    output_ambiguous: list[bool] = field(default_factory=list)
    loss_ambiguous: list[bool] = field(default_factory=list)
    output_runner_up_null_dims: list[int | None] = field(default_factory=list)
    loss_runner_up_null_dims: list[int | None] = field(default_factory=list)
    output_cut_rtols: list[float | None] = field(default_factory=list)
    loss_cut_rtols: list[float | None] = field(default_factory=list)
    output_methods: list[str] = field(default_factory=list)  # svd | gram | gram>svd (ambiguous Gram, redone)
    loss_methods: list[str] = field(default_factory=list)
    output_unexplained: int | None = None  # null dim − known orbit dim: directions no known symmetry explains
    loss_unexplained: int | None = None


@dataclass
class CensusResult:
    architecture: str
    spec: dict
    num_params: int
    known_orbit_dim: int
    known_loss_orbit_dim: int
    known_symmetries: list[str]
    rows: list[CensusRow]
    level: str
    points: int
    rtol: float | None  # the fixed cut's rtol (None under the gap cut)
    seed: int
    dtype: str
    device: str
    seconds: float
    samplewise: bool = True  # per-sample Jacobians (vmap over samples) or one of the batched forward
    coupling: str = ""  # why (Architecture.coupling: detected, given, batch norm)
    cut: str = "gap"  # gap | rtol
    method: str = "auto"  # the spectrum method asked for (rows say which ran)
    min_gap: float = MIN_GAP_DECADES
    gap_margin: float = GAP_MARGIN_DECADES

    def mode(self) -> str:
        """The Jacobian mode in words, with the reason."""
        how = "per-sample Jacobians (samples independent)" if self.samplewise else \
            "Jacobians of the batched forward (samples coupled)"
        return f"{how}: {self.coupling}" if self.coupling else how

    def to_dict(self) -> dict:
        return asdict(self)

    def row(self, batch_size: int) -> CensusRow:
        return next(r for r in self.rows if r.batch_size == batch_size)


def _median(xs: list[int]) -> int | None:
    return int(statistics.median_low(xs)) if xs else None


def _min_gap(gaps: list[float | None]) -> float | None:
    real = [g for g in gaps if g is not None]
    return round(min(real), 3) if real else None


def _resolve_cut(cut: str | None, rtol: float | None) -> tuple[str, float | None]:
    if cut is None:
        cut = "gap" if rtol is None else "rtol"
    if cut not in CUTS:
        raise InputError(f"unknown cut {cut!r}; choose gap or rtol")
    if cut == "gap" and rtol is not None:
        raise InputError("rtol sets the fixed cut: pass cut='rtol' (or no cut) with it, or drop it for the gap cut")
    if cut == "rtol" and rtol is None:
        rtol = DEFAULT_RTOL
    if rtol is not None and not 0 < rtol < 1:
        raise InputError(f"rtol must lie in (0, 1), got {rtol}")
    return cut, rtol


def census(
    arch: Architecture,
    batch_sizes: Sequence[int] | None = None,
    level: str = "both",
    points: int = 3,
    seed: int = 0,
    rtol: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    max_jacobian_gb: float = 4.0,
    chunk_size: int | None = None,
    progress: bool = False,
    cut: str | None = None,
    method: str = "auto",
    min_gap: float = MIN_GAP_DECADES,
) -> CensusResult:
    """Null-space dimensions of the output and per-sample-loss Jacobians vs batch size (median over
    ``points`` random (θ, X)), beside the orbit dimension of the known continuous symmetries.

    θ_j is the same at every batch size (seeded by ``seed`` and j); X is drawn per batch size.
    ``cut``: "gap" (default; the rank at the largest spectral gap, ambiguous points flagged and left out of
    the row's median, the row None when all are) or "rtol" (σ_i > rtol·σ_max, ``rtol`` = 1e-10 unless given;
    giving ``rtol`` selects it).  ``method``: "auto" | "svd" | "gram" (symdisc.spectrum); under "auto" an
    ambiguous Gram point is redone by SVD when J fits in ``max_jacobian_gb``.
    """
    if level not in LEVELS:
        raise InputError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if points < 1:
        raise InputError("points must be ≥ 1")
    cut, rtol = _resolve_cut(cut, rtol)
    check_method(method)
    batch_sizes = list(batch_sizes or [arch.default_batch_size])
    if any(b < 1 for b in batch_sizes):
        raise InputError(f"batch sizes must be ≥ 1, got {batch_sizes}")
    arch = arch.to(dtype=dtype, device=device)
    p, start = arch.num_params, time.perf_counter()
    thetas = [arch.sample_params(make_generator(seed, 0, j)) for j in range(points)]

    functional = continuous_symmetries(arch, "output")
    with_loss = continuous_symmetries(arch, None)
    known_rtol = rtol if rtol is not None else DEFAULT_RTOL
    known = [orbit_dimension(stacked_tangents(functional, th), known_rtol) for th in thetas]
    known_loss = [orbit_dimension(stacked_tangents(with_loss, th), known_rtol) for th in thetas]
    known_dim, known_loss_dim = _median(known) or 0, _median(known_loss) or 0

    def count(theta, X, Y, lvl: str, rows: int) -> tuple[int, RankCut, str]:
        chosen = resolve_method(method, rows, p)
        _check_memory(chosen, rows, p, max_jacobian_gb)
        spec = jacobian_spectrum(arch, theta, X, Y, lvl, chosen, chunk_size)
        c = gap_cut(spec.values, p, rows, min_gap) if cut == "gap" else rtol_cut(spec.values, p, rtol)
        if c.ambiguous and method == "auto" and chosen == "gram" and \
                memory_bytes("svd", rows, p) <= max_jacobian_gb * 2**30:
            redo = gap_cut(jacobian_spectrum(arch, theta, X, Y, lvl, "svd", chunk_size).values, p, rows, min_gap)
            return p - redo.rank, redo, "gram>svd"
        return p - c.rank, c, spec.method

    per_row: dict[int, dict] = {b: {k: [] for k in ("output", "loss")} | {"t": 0.0} for b in batch_sizes}
    jobs = [(b, j) for b in batch_sizes for j in range(points)]
    levels = ("output", "loss") if level == "both" else (level,)
    for b, j in track(jobs, f"census {arch.name}", total=len(jobs), enabled=progress):
        t0 = time.perf_counter()
        X, Y = arch.sample_data(b, make_generator(seed, 1, j, b))
        for lvl in levels:
            rows = b * arch.forward(thetas[j], X[:1]).numel() if lvl == "output" else b
            per_row[b][lvl].append(count(thetas[j], X, Y, lvl, rows))
        per_row[b]["t"] += time.perf_counter() - t0
    rows_out = []
    for b in batch_sizes:
        row = CensusRow(b, seconds=round(per_row[b]["t"], 4))
        for lvl, known_here in (("output", known_dim), ("loss", known_loss_dim)):
            found = per_row[b][lvl]
            if not found:
                continue
            dims = [d for d, _, _ in found]
            supported = [d for d, c, _ in found if not c.ambiguous]
            median = _median(supported)
            runner = [None if c.runner_up_rank is None else p - c.runner_up_rank for _, c, _ in found]
            setattr(row, f"{lvl}_null_dim", median)
            setattr(row, f"{lvl}_null_dims", dims)
            setattr(row, f"{lvl}_gap_decades", _min_gap([c.gap_decades for _, c, _ in found]))
            setattr(row, f"{lvl}_ambiguous", [c.ambiguous for _, c, _ in found])
            setattr(row, f"{lvl}_runner_up_null_dims", runner)
            setattr(row, f"{lvl}_cut_rtols", [None if c.rtol is None else float(f"{c.rtol:.3g}") for _, c, _ in found])
            setattr(row, f"{lvl}_methods", [m for _, _, m in found])
            setattr(row, f"{lvl}_unexplained", None if median is None else median - known_here)
        rows_out.append(row)
    return CensusResult(
        architecture=arch.name,
        spec=arch.spec,
        num_params=p,
        known_orbit_dim=known_dim,
        known_loss_orbit_dim=known_loss_dim,
        known_symmetries=[s.name for s in with_loss],
        rows=rows_out,
        level=level,
        points=points,
        rtol=rtol,
        seed=seed,
        dtype=str(dtype).replace("torch.", ""),
        device=str(arch.device),
        seconds=round(time.perf_counter() - start, 4),
        samplewise=arch.samplewise,
        coupling=arch.coupling,
        cut=cut,
        method=method,
        min_gap=min_gap,
        gap_margin=GAP_MARGIN_DECADES,
    )


def _check_memory(method: str, rows: int, p: int, max_gb: float) -> None:
    gb = memory_bytes(method, rows, p) / 2**30
    if gb > max_gb:
        what = f"a {rows}×{p} Jacobian" if method == "svd" else f"a {min(rows, p)}² Gram matrix ({rows}×{p} Jacobian)"
        raise InputError(
            f"census would hold {what} ({gb:.1f} GiB > {max_gb} GiB): "
            "use smaller batch sizes or raise max_jacobian_gb (--max-gb)"
        )
