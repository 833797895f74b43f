"""DCS: differentiable constraints by symmetry (Ziyin, ICML 2024; reference dcs.md).

* ``constraints`` — T(z), penalty and induced regulariser of one block: ``Sparse`` (mask; spred), ``Basis``
  (any orthogonal projection, basis-aware), ``Group`` (group gates: group lasso), ``LowRank`` (A Bᵀ: nuclear norm);
* ``model``       — ``DCS``: constraints on an nn.Module (torch.nn.utils.parametrize) or a flat θ; ``materialize``;
* ``optimizer``   — ``DCSOptimizer``: the penalty, an α schedule and balancing moves on any torch.optim optimizer;
* ``lasso``       — the check against scikit-learn's Lasso (λ = 2α) and the critical α.
"""

from symdisc.dcs.constraints import Basis, Constraint, Group, LowRank, Sparse, constraint_from_projection
from symdisc.dcs.model import CONSTRAINTS, DCS, Materialized
from symdisc.dcs.optimizer import DCSOptimizer
from symdisc.dcs.rescaling import DCSRescaling

__all__ = ["CONSTRAINTS", "DCS", "Basis", "Constraint", "DCSOptimizer", "DCSRescaling", "Group", "LowRank",
           "Materialized", "Sparse", "constraint_from_projection"]
