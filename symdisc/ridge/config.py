"""Ridge Rider's configuration (ridge_rider.md §1.6; defaults marked where the paper gives them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from symdisc.errors import InputError
from symdisc.ridge.archive import STRATEGIES
from symdisc.ridge.eigen import METHODS

UPDATES = ("exact", "gradient", "fixed")
SIGNS = ("saddle", "both", "descent")


@dataclass(frozen=True)
class RRConfig:
    """Exact RR (Alg. 1) with ``update="exact"``; scalable RR (Alg. 2) with ``update="gradient"``.

    GetRidges: the ``n_ridges`` most negative eigenpairs with λ < −``neg_tol``·‖H‖ ([P] tree: 6), both signs
    where ‖∇L‖ ≤ ``grad_tol`` (``signs="saddle"``; or always ``both``, or the ``descent`` sign only).
    UpdateRidge ``exact``: step θ − α e, recompute the spectrum, follow the eigenvector of maximum overlap;
    α adapts — the last accepted α doubled (≤ ``alpha``), halved until the overlap is ≥ ``delta_break``
    ([P] 0.95) and the loss decreased, down to ``alpha_min``.  ``gradient``: fixed α, warm-started λ, then
    ``inner_steps`` gradient steps on the eigen-loss with ``lr_e`` / ``lr_lambda`` (lr_e = 0: the LR_x = 0
    ablation).  ``fixed``: fixed α, e never updated (the FixedRidge ablation).
    EndRide: overlap below δ_break at α_min, λ ≥ −neg_tol·‖H‖, no decrease (``require_decrease``), or
    ``max_ride_steps``; with ``min_decrease`` a step must lower L by more than min_decrease·max(1, |L|) ("the policy
    stops improving").  ``budget``: total ride iterations (trial points) of the search ([P] tree: 10⁵);
    ``max_depth``: branchings along a path; ``search``: ChooseFromArchive.  ``finish_steps`` gradient-descent
    steps (lr ``finish_lr``) polish every ride's end point before it is branched from.  Symmetry designs (with a
    symmetry): ``project`` (B), ``adapt`` (A), ``merge`` (C), each switchable; B projects only at critical
    points, ‖∇L‖ ≤ ``grad_tol`` (there the orbit tangents are exact zero modes; elsewhere their curvature
    −∇Lᵀ J_ξ ξ can be a genuine descent, F2), or everywhere with ``project_everywhere`` (the reference's
    literal design).  ``compile_hvp`` runs the Hessian-vector products through ``torch.compile`` (pays at large p
    after a few hundred products; ridge/hessian.py).
    """

    n_ridges: int = 6
    signs: str = "saddle"
    grad_tol: float = 1e-8
    neg_tol: float = 1e-8
    update: str = "exact"
    alpha: float = 1.0
    alpha_min: float = 1e-4
    delta_break: float = 0.95
    require_decrease: bool = True
    min_decrease: float = 0.0
    max_ride_steps: int = 1000
    budget: int = 100_000
    max_depth: int = 8
    max_rides: int = 1000
    search: str = "bfs"
    eigensolver: str = "auto"
    eig_tol: float = 1e-10
    eig_maxiter: int | None = None
    inner_steps: int = 1
    lr_e: float = 0.1
    lr_lambda: float = 0.01
    finish_steps: int = 0
    finish_lr: float = 0.1
    project: bool = True
    project_everywhere: bool = False
    adapt: bool = True
    merge: bool = True
    cluster_rtol: float = 1e-6
    certify_tol: float = 1e-6
    gate_tol: float = 1e-6
    merge_tol: float = 1e-6
    checkpoint_every: int = 1
    compile_hvp: bool = False

    def validate(self) -> RRConfig:
        if self.update not in UPDATES:
            raise InputError(f"unknown ridge update {self.update!r}; choose {', '.join(UPDATES)}")
        if self.signs not in SIGNS:
            raise InputError(f"unknown sign rule {self.signs!r}; choose {', '.join(SIGNS)}")
        if self.search not in STRATEGIES:
            raise InputError(f"unknown archive search {self.search!r}; choose {', '.join(STRATEGIES)}")
        if self.eigensolver not in METHODS:
            raise InputError(f"unknown eigensolver {self.eigensolver!r}; choose {', '.join(METHODS)}")
        positive = ("n_ridges", "alpha", "alpha_min", "max_ride_steps", "budget", "max_rides", "checkpoint_every")
        for name in positive:
            if not getattr(self, name) > 0:
                raise InputError(f"RR's {name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.delta_break <= 1:
            raise InputError(f"delta_break must be in (0, 1], got {self.delta_break}")
        if self.alpha_min > self.alpha:
            raise InputError(f"alpha_min ({self.alpha_min}) exceeds alpha ({self.alpha})")
        for name in ("neg_tol", "grad_tol", "min_decrease", "lr_e", "lr_lambda", "finish_lr", "max_depth",
                     "inner_steps", "finish_steps"):
            if getattr(self, name) < 0:
                raise InputError(f"RR's {name} must be ≥ 0, got {getattr(self, name)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RRConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown RR option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d).validate()
