"""symdisc: discover, verify, export and exploit parameter-space symmetries of neural networks."""

from symdisc import zoo
from symdisc._version import __version__
from symdisc.architecture import Architecture, make_generator
from symdisc.errors import ArtefactError, InputError, NumericalError, SymdiscError
from symdisc.layout import ParamLayout
from symdisc.nullspace import CensusResult, census
from symdisc.symmetry import Symmetry, known_symmetries

from symdisc.discovery.api import discover, verify  # noqa: E402  (needs zoo and census above)
from symdisc.discovery.artefact import export, load, save  # noqa: E402

__all__ = ["ArtefactError", "Architecture", "CensusResult", "InputError", "NumericalError", "ParamLayout", "Symmetry", "SymdiscError", "census", "discover",
           "export", "known_symmetries", "load", "make_generator", "save", "verify", "zoo"]
