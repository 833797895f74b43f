"""The Python API of discovery: ``discover``, ``verify_artefact`` (used by the CLI too)."""

from __future__ import annotations

from pathlib import Path

from symdisc.architecture import Architecture
from symdisc.discovery.artefact import load, update_card
from symdisc.discovery.config import preset_config
from symdisc.discovery.learned import LearnedSymmetry
from symdisc.discovery.objective import with_overrides
from symdisc.discovery.trainer import Trainer
from symdisc.discovery.verify import VerifyConfig
from symdisc.discovery.verify import verify as run_verification
from symdisc.errors import InputError


def discover(arch: Architecture, out: str | Path, k: int = 1, steps: int | None = None, preset: str = "default",
             generator_kind: str | None = None, rank: int | None = None, batch: int | None = None,
             draws: int | None = None, level: str | None = None, seed: int = 0, device: str = "cpu",
             resume: bool = False, verify_draws: int = 16, make_figures: bool = True, progress: bool = False) -> dict:
    """Train, save the artefact in ``out``, verify it on held-out draws and draw its figures."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file")
    if not resume and (out / "card.json").exists():
        raise InputError(f"{out} already holds a discovery run: use --resume or another --out")
    if level not in (None, "loss", "output"):
        raise InputError(f"--level must be loss or output, got {level!r}")
    cfg = preset_config(preset, arch.name, k=k, steps=steps, generator_kind=generator_kind, rank=rank,
                        batch=batch, draws=draws, seed=seed, device=device)
    if level is not None:
        from dataclasses import replace

        cfg = replace(cfg, weights=with_overrides(cfg.weights, level=level))
    trainer = Trainer(arch, cfg)
    summary = trainer.fit(out, resume=resume, progress=progress)
    report = {"out": str(out), "architecture": arch.name, "num_params": arch.num_params, "config": cfg.to_dict(),
              "training": summary, "verification": None, "figures": []}
    if verify_draws > 0:
        report["verification"] = verify_artefact(out, arch=arch, draws=verify_draws, seed=seed)
    if make_figures:
        from symdisc.discovery.figures import figures

        sym = load(out, arch=arch)
        report["figures"] = figures(sym, arch, trainer.batch, out, seed=seed)
    return report


def verify_artefact(source: str | Path, arch: Architecture | None = None, draws: int = 16, seed: int = 0) -> dict:
    """Verify the artefact at ``source``; a run directory's card records the result."""
    if draws < 1:
        raise InputError("--draws must be ≥ 1")
    sym = load(source, arch=arch)
    report = run_verification(sym, sym.arch, sym.data_shape[0], VerifyConfig(draws=draws, seed=seed))
    if Path(source).is_dir():
        update_card(source, verification=report)
    return report


def verify(source: str | Path | LearnedSymmetry, arch: Architecture | None = None, draws: int = 16,
           seed: int = 0) -> dict:
    """``symdisc.verify``: held-out verification of an artefact (path) or of a loaded LearnedSymmetry."""
    if isinstance(source, LearnedSymmetry):
        if arch is None and getattr(source, "arch", None) is None:
            raise InputError("pass the architecture the symmetry acts on (arch=…)")
        if source.data_shape is None:
            raise InputError("the symmetry does not record the batch shape its action takes")
        return run_verification(source, arch or source.arch, source.data_shape[0], VerifyConfig(draws=draws, seed=seed))
    return verify_artefact(source, arch=arch, draws=draws, seed=seed)
