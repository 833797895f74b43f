"""Symmetry census (`symdisc.census`): count the continuous symmetries at random points exactly, from the
null spaces of Jacobians (this module is `symdisc.nullspace`; `symdisc.census` is its main function).

At θ and a batch X of B samples, directions v with J v = 0 move θ without changing

* (output level) the batch outputs:  J = D_θ f(θ, X) ∈ ℝ^{(B·out)×p};
* (loss level)   the per-sample losses: J = D_θ L(θ, X, Y) ∈ ℝ^{B×p}.

null_dim = p − rank(J).  Functional (data-independent) symmetries stay in the null space at
every B; data-dependent ones leave it as B grows.  The known symmetries' orbit dimension
rank[ξ_1(θ) … ξ_k(θ)] is the lower bound the census is checked against.

Numerics: float64; rank = #{σ_i > rtol·σ_max} (default rtol = 1e-10); each row reports the
spectral gap at the cut, log10(σ_r / σ_{r+1}), so a threshold that falls inside a smooth
spectrum is visible.  Per-sample Jacobians are built with vmap(jacrev) (sample-wise models) or
one batched jacrev; nothing p×p is formed: memory is 8·N·p bytes for N = B·out rows and time
O(N·p·min(N, p)) for the SVD.  Reaching the data-independent dimension needs N ≥ p − d_sym, so
a full census of a p-parameter model costs ≈ 8p² bytes (see docs/census.md for measurements).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.jacobians import loss_jacobian, output_jacobian
from symdisc.linalg import DEFAULT_RTOL, null_dimension
from symdisc.progress import track
from symdisc.symmetry.base import orbit_dimension, stacked_tangents
from symdisc.symmetry.known import continuous_symmetries

LEVELS = ("output", "loss", "both")


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
    rtol: float
    seed: int
    dtype: str
    device: str
    seconds: float
    samplewise: bool = True  # per-sample Jacobians (vmap over samples) or one of the batched forward
    coupling: str = ""  # why (Architecture.coupling: detected, given, batch norm)

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


def census(
    arch: Architecture,
    batch_sizes: Sequence[int] | None = None,
    level: str = "both",
    points: int = 3,
    seed: int = 0,
    rtol: float = DEFAULT_RTOL,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    max_jacobian_gb: float = 4.0,
    chunk_size: int | None = None,
    progress: bool = False,
) -> CensusResult:
    """Null-space dimensions of the output and per-sample-loss Jacobians vs batch size (median over
    ``points`` random (θ, X)), beside the orbit dimension of the known continuous symmetries.

    θ_j is the same at every batch size (seeded by ``seed`` and j); X is drawn per batch size.
    """
    if level not in LEVELS:
        raise InputError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if points < 1:
        raise InputError("points must be ≥ 1")
    batch_sizes = list(batch_sizes or [arch.default_batch_size])
    if any(b < 1 for b in batch_sizes):
        raise InputError(f"batch sizes must be ≥ 1, got {batch_sizes}")
    arch = arch.to(dtype=dtype, device=device)
    p, start = arch.num_params, time.perf_counter()
    thetas = [arch.sample_params(make_generator(seed, 0, j)) for j in range(points)]

    functional = continuous_symmetries(arch, "output")
    with_loss = continuous_symmetries(arch, None)
    known = [orbit_dimension(stacked_tangents(functional, th), rtol) for th in thetas]
    known_loss = [orbit_dimension(stacked_tangents(with_loss, th), rtol) for th in thetas]

    rows = []
    jobs = [(b, j) for b in batch_sizes for j in range(points)]
    per_row: dict[int, dict] = {b: {"out": [], "loss": [], "go": [], "gl": [], "t": 0.0} for b in batch_sizes}
    for b, j in track(jobs, f"census {arch.name}", total=len(jobs), enabled=progress):
        t0 = time.perf_counter()
        X, Y = arch.sample_data(b, make_generator(seed, 1, j, b))
        acc = per_row[b]
        if level in ("output", "both"):
            out_dim = arch.forward(thetas[j], X[:1]).numel()
            _check_memory(b * out_dim, p, max_jacobian_gb)
            d, gap = null_dimension(output_jacobian(arch, thetas[j], X, chunk_size), rtol)
            acc["out"].append(d)
            acc["go"].append(gap)
        if level in ("loss", "both"):
            _check_memory(b, p, max_jacobian_gb)
            d, gap = null_dimension(loss_jacobian(arch, thetas[j], X, Y, chunk_size), rtol)
            acc["loss"].append(d)
            acc["gl"].append(gap)
        acc["t"] += time.perf_counter() - t0
    for b in batch_sizes:
        acc = per_row[b]
        rows.append(CensusRow(b, _median(acc["out"]), _median(acc["loss"]), acc["out"], acc["loss"],
                              _min_gap(acc["go"]), _min_gap(acc["gl"]), round(acc["t"], 4)))
    return CensusResult(
        architecture=arch.name,
        spec=arch.spec,
        num_params=p,
        known_orbit_dim=_median(known) or 0,
        known_loss_orbit_dim=_median(known_loss) or 0,
        known_symmetries=[s.name for s in with_loss],
        rows=rows,
        level=level,
        points=points,
        rtol=rtol,
        seed=seed,
        dtype=str(dtype).replace("torch.", ""),
        device=str(arch.device),
        seconds=round(time.perf_counter() - start, 4),
        samplewise=arch.samplewise,
        coupling=arch.coupling,
    )


def _check_memory(rows: int, p: int, max_gb: float) -> None:
    gb = 8 * rows * p / 2**30
    if gb > max_gb:
        raise InputError(
            f"census would build a {rows}×{p} Jacobian ({gb:.1f} GiB > {max_gb} GiB): "
            "use smaller batch sizes or raise max_jacobian_gb (--max-gb)"
        )
