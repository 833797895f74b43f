"""symdisc: discover, verify, export and exploit parameter-space symmetries of neural networks."""

from symdisc import zoo
from symdisc.architecture import Architecture, make_generator
from symdisc.errors import SymdiscError
from symdisc.layout import ParamLayout
from symdisc.nullspace import CensusResult, census
from symdisc.symmetry import Symmetry, known_symmetries

__version__ = "0.1.0"
__all__ = ["Architecture", "CensusResult", "ParamLayout", "Symmetry", "SymdiscError", "census",
           "known_symmetries", "make_generator", "zoo"]
