"""``symdisc.verify``: held-out verification of an artefact (path) or of any continuous Symmetry."""

from __future__ import annotations

from pathlib import Path

from symdisc.architecture import Architecture
from symdisc.devices import resolve_device
from symdisc.discovery.artefact import load, read_json_card, update_card
from symdisc.errors import ArtefactError, InputError
from symdisc.lifting.artefact import KIND as LIFTED_KIND
from symdisc.lifting.artefact import load_lifted
from symdisc.symmetry.base import Symmetry
from symdisc.verification.config import VerifyConfig
from symdisc.verification.run import verify_symmetry


def default_batch(sym: Symmetry, arch: Architecture) -> int:
    """The batch a learned symmetry was trained for, else the architecture's default."""
    shape = sym.data_shape
    return shape[0] if shape else arch.default_batch_size


def verify(source: str | Path | Symmetry, arch: Architecture | None = None, draws: int = 16, seed: int = 0,
           batch: int | None = None, curves: bool = True, device: str = "cpu") -> dict:
    """Verify ``source`` — an artefact (run directory or exported file) or a continuous Symmetry, known or
    learned — on ``draws`` held-out (θ, X, Y) of ``batch`` samples, in float64; the report is the same for
    every kind (see ``verification.run``).  ``arch`` is required for a symmetry that does not carry one (and for
    artefacts learned on a user module).  A run directory's card records the result.  ``curves=False`` skips the
    loss-along-curve comparison (the slow part); ``device`` is where the float64 checks run.  ``source`` is never
    modified."""
    if isinstance(source, Symmetry):
        sym, arch = source, arch if arch is not None else getattr(source, "arch", None)
        if arch is None:
            raise InputError(f"pass the architecture {source.name} acts on (arch=…)")
    elif isinstance(source, (str, Path)) and _is_lifted(source):
        sym = load_lifted(source)
        arch = sym.arch
    elif isinstance(source, (str, Path)):
        sym = load(source, arch=arch, fields="all")
        arch = sym.arch
    else:
        raise InputError(f"verify takes an artefact path or a Symmetry, got {type(source).__name__}")
    cfg = VerifyConfig(draws=draws, seed=seed, curves=curves, device=str(resolve_device(device)))
    report = verify_symmetry(sym, arch, default_batch(sym, arch) if batch is None else batch, cfg)
    if not isinstance(source, Symmetry) and Path(source).is_dir() and not _is_lifted(source):
        update_card(source, verification=report)
    return report


def _is_lifted(source: str | Path) -> bool:
    """A directory written by ``symdisc lift`` (its card's kind), verified as the lifted symmetry it rebuilds."""
    try:
        card, _ = read_json_card(source, "artefact")
    except ArtefactError:
        return False
    return isinstance(card, dict) and card.get("kind") == LIFTED_KIND
