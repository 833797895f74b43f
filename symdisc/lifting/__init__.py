"""Lifting: a symmetry of a block (known or learned) becomes one of a wider, deeper network or of a smaller batch
(dissertation §6.4, docs/lifting.md)."""

from symdisc.lifting.chain import Chain, Hidden, chain_of, sequential_target
from symdisc.lifting.lifted import LiftedSymmetry, LiftError, lift
from symdisc.lifting.placement import Placement

__all__ = ["Chain", "Hidden", "LiftError", "LiftedSymmetry", "Placement", "chain_of", "lift", "sequential_target"]
