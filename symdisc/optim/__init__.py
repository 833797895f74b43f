"""The optimizer base every symmetry-using family builds on (teleportation, Ridge Rider, DCS)."""

from symdisc.optim.base import SymmetryOptimizer
from symdisc.optim.binding import ParamBinding
from symdisc.optim.move import FIRST_MOMENTS, STATE_POLICIES, GroupMove, StatePolicy
from symdisc.optim.schedule import Schedule

__all__ = ["FIRST_MOMENTS", "STATE_POLICIES", "GroupMove", "ParamBinding", "Schedule", "StatePolicy",
           "SymmetryOptimizer"]
