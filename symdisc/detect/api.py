"""Known-symmetry detection for any architecture: trace, propose, verify, report.

    detection = detect(arch)            # or arch built by from_module (then done automatically)
    detection.symmetries                # verified Symmetry objects (the seam every consumer takes)
    detection.orbit_dim                 # rank of their stacked fields at a random θ (the "explained" dim)

Nothing is reported that did not pass :func:`symdisc.detect.check.invariance` (float64, ≤ 1e-10); an op the
dataflow does not know makes the symmetries through it unclaimed, never wrong; a forward that cannot be
traced gives no symmetries and says why (the census still counts them).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from symdisc.architecture import Architecture, make_generator
from symdisc.detect.candidates import (
    Candidate,
    mean_shift_candidates,
    norm_candidates,
    softmax_candidates,
    space_candidates,
    translation_candidates,
)
from symdisc.detect.check import TOL, invariance, unused_entries
from symdisc.detect.dataflow import Dataflow
from symdisc.detect.trace import Untraceable, trace
from symdisc.linalg import DEFAULT_RTOL, numerical_rank
from symdisc.symmetry.base import Symmetry, stacked_tangents


@dataclass
class DetectedEntry:
    name: str
    kind: str
    num_generators: int
    rule: str
    max_rel_change: float
    verified: bool
    rank_added: int = 0  # orbit dimension this symmetry adds to the ones listed before it


@dataclass
class Detection:
    architecture: str
    traced: bool
    message: str
    orbit_dim: int  # output-preserving symmetries: the census's explained output null dimension
    entries: list[DetectedEntry]
    rejected: list[DetectedEntry]
    notes: list[str]
    unknown_ops: list[str]
    seconds: float
    loss_orbit_dim: int = 0  # with the loss-level ones (softmax translation of a cross-entropy head)
    symmetries: list[Symmetry] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("symmetries")
        return d

    def by_kind(self) -> dict[str, int]:
        """Orbit dimension added per kind of symmetry (in the order they were ranked)."""
        out: dict[str, int] = {}
        for e in self.entries:
            if e.rank_added:
                out[e.kind] = out.get(e.kind, 0) + e.rank_added
        return out


KIND_ORDER = ("GL", "SO", "rescaling", "bias-shift", "norm-mean-zero", "mean-shift", "unused", "translation",
              "softmax-translation")


def detect(arch: Architecture, module: nn.Module | None = None, tol: float = TOL, points: int = 2,
           seed: int = 0, device: str | torch.device = "cpu") -> Detection:
    """Detect, verify and rank the known symmetries of ``arch`` (``module``: the nn.Module behind it).  The graph
    is traced on the CPU (a structural pass); verification and ranking run in float64 on ``device``."""
    start = time.perf_counter()
    arch64 = arch.to(dtype=torch.float64, device=device)
    try:
        traced = trace(arch64, module)
    except Untraceable as e:
        return Detection(arch.name, False, f"{e}; no known symmetries are claimed (the census still counts them)",
                         0, [], [], [], [], round(time.perf_counter() - start, 3))
    flow = Dataflow(traced)
    cands, notes = space_candidates(flow, arch.layout)
    cands += norm_candidates(flow, arch.layout, traced.graph)
    cands += mean_shift_candidates(flow, arch.layout)
    if arch.loss_name == "cross_entropy":
        cands += softmax_candidates(flow, arch.layout)
    names = [n for n in arch.layout.names if n not in flow.data_indexed]
    cands += translation_candidates(arch.layout, unused_entries(arch64, names, seed=seed))
    kept, rejected = _verify(cands, arch64, tol, points, seed)
    kept.sort(key=lambda ce: KIND_ORDER.index(ce[1].kind))
    message = "traced" + (f"; ops not followed (no claim through them): {', '.join(sorted(flow.unknown))}"
                          if flow.unknown else "")
    return _report(arch64, True, message, kept, rejected, notes, sorted(flow.unknown), seed, start)


def _verify(cands: list[Candidate], arch64: Architecture, tol: float, points: int, seed: int):
    """(kept, rejected): (candidate, entry) pairs split by :func:`invariance` at ``tol``."""
    kept, rejected = [], []
    for cand in cands:
        inv = invariance(cand.symmetry, arch64, points=points, seed=seed)
        entry = DetectedEntry(cand.symmetry.name, cand.kind, cand.symmetry.num_generators, cand.rule,
                              inv["max_rel_change"], inv["moved"] and inv["max_rel_change"] <= tol)
        (kept if entry.verified else rejected).append((cand, entry))
    return kept, rejected


def _report(arch64: Architecture, traced: bool, message: str, kept, rejected, notes: list[str], unknown: list[str],
            seed: int, start: float) -> Detection:
    """Rank the kept symmetries (in their order) and assemble the report; orbit_dim counts output-level ones."""
    loss_orbit, symmetries, entries, ranked = _rank(arch64, kept, seed)
    orbit = sum(e.rank_added for (c, _), e in zip(kept, entries, strict=True) if c.symmetry.preserves == "output")
    if not ranked:
        notes = notes + [f"orbit dimension not ranked (the p × Σk fields would exceed {RANK_MAX_BYTES / 2**30:.0f} "
                         "GiB): counts are generator numbers, an upper bound; check fields with `symdisc census "
                         "--matrix-free`"]
    return Detection(arch64.name, traced, message, orbit, entries, [e for _, e in rejected], notes, unknown,
                     round(time.perf_counter() - start, 3), loss_orbit, symmetries)

RANK_MAX_BYTES = 2 * 2**30  # the fields of all kept symmetries as one p × Σk float64 matrix


def _rank(arch64: Architecture, kept: list[tuple[Candidate, DetectedEntry]], seed: int):
    """Keep the symmetries that add orbit dimension at a random θ, in kind order; record what each adds.  When
    the p × Σk fields would exceed RANK_MAX_BYTES, nothing is ranked: every verified symmetry is kept and counts
    its generators (an upper bound on the orbit dimension, said in the report's notes)."""
    if 8 * arch64.num_params * sum(c.symmetry.num_generators for c, _ in kept) > RANK_MAX_BYTES:
        for _, entry in kept:
            entry.rank_added = entry.num_generators
        return sum(e.num_generators for _, e in kept), [c.symmetry for c, _ in kept], [e for _, e in kept], False
    theta = arch64.sample_params(make_generator(seed, 30))
    cols, rank, symmetries, entries = [], 0, [], []
    for cand, entry in kept:
        xi = stacked_tangents([cand.symmetry], theta)
        new = numerical_rank(torch.cat(cols + [xi], dim=1), DEFAULT_RTOL) if cols or xi.shape[1] else 0
        entry.rank_added = new - rank
        entries.append(entry)
        if entry.rank_added > 0:
            cols.append(xi)
            rank = new
            symmetries.append(cand.symmetry)
    return rank, symmetries, entries, True


def declared(arch: Architecture, tol: float = TOL, seed: int = 0, device: str | torch.device = "cpu") -> Detection:
    """The architecture's own known symmetries (a zoo preset's, or those given to from_module), each verified
    and ranked like detected ones (on ``device``): the reference detection is compared against."""
    start = time.perf_counter()
    arch64 = arch.to(dtype=torch.float64, device=device)
    cands = [Candidate(s, s.describe().get("group", "?"), "declared") for s in arch.known_symmetries()
             if not s.discrete and not s.data_dependent]
    kept, rejected = _verify(cands, arch64, tol, 2, seed)
    kept.sort(key=lambda ce: ce[0].symmetry.preserves != "output")
    return _report(arch64, False, "declared by the architecture", kept, rejected, [], [], seed, start)

def detect_known(arch: Architecture, device: str | torch.device = "cpu") -> Detection:
    """Detection for ``arch``: through its module if it came from ``from_module``, else its functional forward."""
    return detect(arch, getattr(arch.symmetry_factory, "detect_module", None), device=device)
