"""symdisc: discover, verify, export and exploit parameter-space symmetries of neural networks."""

from symdisc import zoo
from symdisc.architecture import Architecture, make_generator
from symdisc.errors import SymdiscError
from symdisc.layout import ParamLayout
from symdisc.nullspace import CensusResult, census
from symdisc.symmetry import Symmetry, known_symmetries

__version__ = "0.1.0"

from symdisc.discovery.api import discover, verify  # noqa: E402  (needs zoo and census above)
from symdisc.discovery.artefact import export, load, save  # noqa: E402

__all__ = ["Architecture", "CensusResult", "ParamLayout", "Symmetry", "SymdiscError", "census", "discover",
           "export", "known_symmetries", "load", "make_generator", "save", "verify", "zoo"]
