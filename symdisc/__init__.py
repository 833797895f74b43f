"""symdisc: discover, verify, export and exploit parameter-space symmetries of neural networks."""

from symdisc import zoo
from symdisc._version import __version__
from symdisc.architecture import Architecture, make_generator
from symdisc.discovery.api import discover
from symdisc.discovery.artefact import export, load, save
from symdisc.errors import ArtefactError, InputError, NumericalError, StorageError, SymdiscError, SymdiscWarning
from symdisc.layout import ParamLayout
from symdisc.nullspace import CensusResult, census
from symdisc.symmetry import Symmetry, known_symmetries
from symdisc.verification import verify

__all__ = ["ArtefactError", "Architecture", "CensusResult", "InputError", "NumericalError", "ParamLayout",
           "StorageError", "Symmetry", "SymdiscError", "SymdiscWarning", "__version__", "census", "discover", "export",
           "known_symmetries", "load", "make_generator", "save", "verify", "zoo"]
