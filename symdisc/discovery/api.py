"""The Python API of discovery: ``discover`` (used by the CLI too); verification lives in symdisc.verification."""

from __future__ import annotations

from pathlib import Path

from symdisc.architecture import Architecture
from symdisc.discovery.artefact import load, update_card
from symdisc.discovery.config import preset_config
from symdisc.discovery.incremental import fit_incremental
from symdisc.discovery.objective import with_overrides
from symdisc.discovery.trainer import Trainer
from symdisc.errors import InputError
from symdisc.verification.api import verify


def discover(arch: Architecture, out: str | Path, k: int = 1, steps: int | None = None, preset: str = "default",
             generator_kind: str | None = None, rank: int | None = None, batch: int | None = None,
             draws: int | None = None, level: str | None = None, seed: int = 0, device: str = "cpu",
             resume: bool = False, verify_draws: int = 16, make_figures: bool = True, progress: bool = False,
             block: int | None = None, restart: bool = False, checkpoint_every: int | None = None) -> dict:
    """Train, save the artefact in ``out``, verify it on held-out draws and draw its figures.  ``block`` < k:
    incremental discovery (incremental.py), ``block`` fresh fields per round, verified ones frozen.  A directory
    holding the checkpoint of an interrupted run is resumed (``resume``) or started over (``restart``: the
    checkpoint and metrics are removed first), never overwritten silently."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"the run directory {out} is a file")
    if not resume and (out / "card.json").exists():
        raise InputError(f"{out} already holds a discovery run: resume it (resume=True) or choose another directory")
    if resume and restart:
        raise InputError("resume and restart exclude each other: continue the interrupted run, or start over")
    if not resume and any((out / n).exists() for n in ("checkpoint.json", "checkpoint.safetensors")):
        if not restart:
            raise InputError(f"{out} holds the checkpoint of an interrupted run: resume it (resume=True) or start "
                             "over (restart=True), which deletes it")
        for name in ("checkpoint.json", "checkpoint.safetensors", "metrics.jsonl"):
            (out / name).unlink(missing_ok=True)
    if level not in (None, "loss", "output"):
        raise InputError(f"the invariance level must be loss or output, got {level!r}")
    cfg = preset_config(preset, arch.name, k=k, steps=steps, generator_kind=generator_kind, rank=rank,
                        batch=batch, draws=draws, seed=seed, device=device, block=block,
                        checkpoint_every=checkpoint_every)
    incremental = cfg.block is not None and cfg.block < cfg.k
    if incremental and resume:
        raise InputError("an incremental run (block < k) cannot be resumed; start it again in a new directory")
    if level is not None:
        from dataclasses import replace

        cfg = replace(cfg, weights=with_overrides(cfg.weights, level=level))
    if incremental:
        cfg.validate(arch.num_params)
        trainer, summary = fit_incremental(arch, cfg, out, cfg.block, progress=progress)
        update_card(out, training={"config": cfg.to_dict(), "summary": summary})
    else:
        trainer = Trainer(arch, cfg)
        summary = trainer.fit(out, resume=resume, progress=progress)
    report = {"out": str(out), "architecture": arch.name, "num_params": arch.num_params, "config": cfg.to_dict(),
              "training": summary, "verification": None, "figures": []}
    if verify_draws > 0:
        report["verification"] = verify(out, arch=arch, draws=verify_draws, seed=seed)
    if make_figures:
        from symdisc.discovery.figures import figures

        sym = load(out, arch=arch, fields="all")
        report["figures"] = figures(sym, arch, trainer.batch, out, seed=seed)
    return report

