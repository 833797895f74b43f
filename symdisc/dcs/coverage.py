"""Symmetry-coverage map (dcs.md §9, design 2): where the network already has a mirror, and where DCS is needed.

Theorems 2–4 say a *native* mirror plus weight decay already produces sparsity, low rank or homogeneity, so DCS
is redundant there and needed only where no mirror of the wanted type exists.  For each layout tensor B:

* ``fraction`` c_B(θ) = rank(Π_B Ξ(θ))/|B|: the share of B's coordinates the symmetries' fields move at one θ
  (Ξ = the stacked tangents of every continuous symmetry given, data-dependent ones on one sampled batch).  The
  rank counts singular values of Π_B Ξ above ``rank_rtol``·σ_max(Ξ) — relative to the whole field matrix, so a
  block the fields barely touch (noise of a learned field) is not counted as moved.
* ``mirror_kinds``: the kinds of the verified mirrors whose P touches B (``Mirror.blocks``).
* ``native``: which constraints those mirrors give (``constraints_of``): a rescaling flip → ``sparse`` and
  ``group`` (neuron sparsity, Theorem 2); a rotation (a rotation by π inside a rotation or double-rotation
  group, Theorem 3) → ``lowrank``; a permutation swap → ``homogeneous`` (Theorem 4).  Discrete mirrors and
  products count by their structure: a coordinate mask → sparse and group, a pure swap → homogeneous.

Decision rule (``Coverage.decide``): a block covered for the wanted constraint gets weight decay only; an
uncovered one gets DCS — a Hadamard mask (``sparse``), a group gate (``group``), a factorisation A Bᵀ with
α(‖A‖² + ‖B‖²) (``lowrank``, nuclear norm); for ``homogeneous`` the paper gives no DCS construction (dcs.md §6),
so an uncovered block is reported as such.  Fractions are informative (how much of B a symmetry moves); coverage
is decided by verified mirrors only, because a continuous symmetry without a mirror (ReLU rescaling, §4.1
caveat) constrains nothing.

Worked target (§9): on ``tiny-transformer`` the known symmetries cover W_Q, W_K (attention GL: flips and a
rotation), W_1, W_2 (FFN GL and permutations) and leave W_V uncovered for every constraint, fraction 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from symdisc.architecture import Architecture, make_generator
from symdisc.dcs.mirrors import Mirror, accepted_mirrors, check_compatible, extract_mirrors
from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry

CONSTRAINTS = ("sparse", "group", "lowrank", "homogeneous")
DCS_METHOD = {"sparse": "hadamard mask (Sparse)", "group": "group gate (Group)",
              "lowrank": "factorisation A Bᵀ, nuclear norm (LowRank)", "homogeneous": None}
_THEOREM = {"sparse": "Theorem 2", "group": "Theorem 2", "lowrank": "Theorem 3", "homogeneous": "Theorem 4"}


def constraints_of(mirror: Mirror) -> tuple[str, ...]:
    """The constraints a verified mirror gives natively (module docstring)."""
    if mirror.kind == "rescaling":
        return ("sparse", "group")
    if mirror.kind == "rotation":
        return ("lowrank",)
    if mirror.kind == "permutation":
        return ("homogeneous",)
    structure = mirror.structure
    if structure == "mask":
        return ("sparse", "group")
    if structure == "swap":
        return ("homogeneous",)
    return ()


def _check_constraint(constraint: str) -> None:
    if constraint not in CONSTRAINTS:
        raise InputError(f"unknown constraint {constraint!r}; choose {', '.join(CONSTRAINTS)}")


@dataclass
class Coverage:
    """Per layout tensor: ``size``, ``rank``, ``fraction``, ``mirror_kinds``, ``native`` {constraint: bool}."""

    blocks: dict[str, dict]
    mirrors: list[Mirror] = field(default_factory=list)
    symmetries: list[str] = field(default_factory=list)

    def covered(self, constraint: str) -> list[str]:
        _check_constraint(constraint)
        return [b for b, info in self.blocks.items() if info["native"][constraint]]

    def uncovered(self, constraint: str) -> list[str]:
        """Blocks with no verified mirror giving ``constraint`` (sparse | group | lowrank | homogeneous)."""
        _check_constraint(constraint)
        return [b for b, info in self.blocks.items() if not info["native"][constraint]]

    def decide(self, constraint: str) -> dict[str, dict]:
        """The decision rule per block: {"action": "weight-decay" | "dcs" | "none", "method", "why"}."""
        _check_constraint(constraint)
        out = {}
        for b, info in self.blocks.items():
            skipped = info.get("rotation_search_skipped", [])
            if constraint == "lowrank" and skipped and not info["native"][constraint]:
                out[b] = {"action": "unknown", "method": None,
                          "why": f"the rotation search of {', '.join(skipped)} was skipped (more moved coordinates "
                                 "than max_active): no claim either way"}
            elif info["native"][constraint]:
                kinds = ", ".join(sorted({m.kind for m in self.mirrors
                                          if b in m.blocks and constraint in constraints_of(m)}))
                out[b] = {"action": "weight-decay", "method": None,
                          "why": f"native {kinds} mirror ({_THEOREM[constraint]})"}
            elif DCS_METHOD[constraint] is None:
                out[b] = {"action": "none", "method": None,
                          "why": "no native mirror and no DCS construction for homogeneity (dcs.md §6)"}
            else:
                out[b] = {"action": "dcs", "method": DCS_METHOD[constraint],
                          "why": f"no verified mirror gives {constraint} here"}
        return out

    def to_dict(self) -> dict:
        return {"symmetries": list(self.symmetries), "blocks": {b: dict(v) for b, v in self.blocks.items()},
                "mirrors": [m.to_dict() for m in self.mirrors],
                "uncovered": {c: self.uncovered(c) for c in CONSTRAINTS}}


def coverage_map(arch: Architecture, symmetries: list[Symmetry], mirrors: list[Mirror] | None = None, *,
                 theta: torch.Tensor | None = None, seed: int = 0, rank_rtol: float = 1e-6,
                 **extract_options) -> Coverage:
    """The coverage map of ``arch`` under ``symmetries`` (module docstring).  ``mirrors``: verified mirrors to
    use (default: ``extract_mirrors`` of each symmetry with ``seed`` and ``extract_options``); ``theta``: where
    the fractions are taken (default: a draw of the architecture's sampler, stream (seed, 0))."""
    symmetries = list(symmetries)
    for s in symmetries:
        check_compatible(s, arch)
    arch64 = arch.to(dtype=torch.float64)
    p = arch64.num_params
    skipped: set[str] = set()
    if mirrors is None:
        reports = [extract_mirrors(s, arch, seed=seed, **extract_options) for s in symmetries]
        mirrors = accepted_mirrors(reports)
        skipped = {s.name for s, r in zip(symmetries, reports, strict=True)
                   if "skipped" in r.subalgebras.get("antisymmetric", {})}
    for m in mirrors:
        if not isinstance(m, Mirror) or m.num_params != p:
            raise InputError(f"mirrors must be Mirror objects on p = {p} parameters")
    if theta is None:
        theta = arch64.sample_params(make_generator(seed, 0))
    elif tuple(theta.shape) != (p,):
        raise InputError(f"θ has shape {tuple(theta.shape)}, {arch.name} expects ({p},)")
    theta = theta.to(torch.float64)
    cols, owners = [], []
    for i, s in enumerate(symmetries):
        if s.discrete:
            continue
        X = None
        if s.data_dependent:
            B = s.data_shape[0] if s.data_shape else arch64.default_batch_size
            X = arch64.sample_data(B, make_generator(seed, 1, i))[0]
        cols.append(s.tangents(theta, X).detach().to(torch.float64))
        owners.append(s.name)
    Xi = torch.cat(cols, 1) if cols else theta.new_zeros(p, 0)
    smax = float(torch.linalg.svdvals(Xi)[0]) if Xi.numel() else 0.0
    blocks = {}
    for name in arch64.layout.names:
        sl = arch64.layout.slice(name)
        size = sl.stop - sl.start
        rank = 0
        if smax > 0:
            rank = int((torch.linalg.svdvals(Xi[sl]) > rank_rtol * smax).sum())
        touching = [m for m in mirrors if name in m.blocks]
        native = {c: any(c in constraints_of(m) for m in touching) for c in CONSTRAINTS}
        unsearched = sorted({o for o, c in zip(owners, cols, strict=True) if o in skipped and bool(c[sl].any())})
        blocks[name] = {"size": size, "rank": rank, "fraction": rank / size,
                        "mirror_kinds": sorted({m.kind for m in touching}), "mirrors": len(touching),
                        "native": native, "rotation_search_skipped": unsearched}
    return Coverage(blocks, list(mirrors), [s.name for s in symmetries])
