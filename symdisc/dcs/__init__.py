"""DCS: differentiable constraints by symmetry (Ziyin, ICML 2024; reference dcs.md).

* ``constraints`` — T(z), penalty and induced regulariser of one block: ``Sparse`` (mask; spred), ``Basis``
  (any orthogonal projection, basis-aware), ``Group`` (group gates: group lasso), ``LowRank`` (A Bᵀ: nuclear norm);
* ``model``       — ``DCS``: constraints on an nn.Module (torch.nn.utils.parametrize) or a flat θ; ``materialize``;
* ``optimizer``   — ``DCSOptimizer``: the penalty, an α schedule and balancing moves on any torch.optim optimizer;
* ``lasso``       — the check against scikit-learn's Lasso (λ = 2α) and the critical α;
* ``mirrors``     — verified reflections R = I − 2P extracted from any Symmetry (dcs.md §9 design 1);
* ``coverage``    — which parameter blocks a verified mirror already constrains, so DCS goes only where none
  does (design 2); ``targets`` — the per-block plan and a training run on an architecture (``symdisc dcs``).
"""

from symdisc.dcs.constraints import Basis, Constraint, Group, LowRank, Sparse, constraint_from_projection
from symdisc.dcs.coverage import Coverage, coverage_map
from symdisc.dcs.mirrors import Mirror, MirrorReport, accepted_mirrors, extract_all, extract_mirrors
from symdisc.dcs.model import CONSTRAINTS, DCS, Materialized
from symdisc.dcs.optimizer import DCSOptimizer
from symdisc.dcs.rescaling import DCSRescaling

__all__ = ["CONSTRAINTS", "DCS", "Basis", "Constraint", "Coverage", "DCSOptimizer", "DCSRescaling", "Group", "LowRank",
           "Materialized", "Mirror", "MirrorReport", "Sparse", "accepted_mirrors", "constraint_from_projection",
           "coverage_map", "extract_all", "extract_mirrors"]
