"""E9 (P §4.4, F.4; D §5.3; teleport.md §2.5) on a substitute (``experiments.teleport.generalization``):
teleport once near convergence to change sharpness φ or curvature ψ, and compare the validation loss.

Arms: no teleport, φ↓, φ↑, ψ↓, ψ↑; synthetic data (the CIFAR-10 substitute), 64-32-10-10 LeakyReLU MLP,
teleport at epoch 20 of 40 on 5 batches of 2000 along the pinv GL actions of both hidden layers at once,
10 steps (φ) / 1 step (ψ) of group lr 5e-2.  Seed s draws from ``make_generator(base_seed, s, ...)``
(the committed run: base seed 0, seeds 0–4).  Config keys: those of ``run_teleport_generalization``
(``teleport_batches`` = its n_teleport_batches), ``float64`` (train in float64; default float32),
``base_seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from experiments.registry import Runner
from experiments.teleport.generalization import ARMS, run_teleport_generalization, summarise
from symdisc.plotting import plt, save_figure, sns

LABELS = {"none": "no teleport", "phi_down": "φ ↓ (flatter)", "phi_up": "φ ↑ (sharper)",
          "psi_down": "ψ ↓ (less curved)", "psi_up": "ψ ↑ (more curved)"}
SETUP_KEYS = ("dataset", "substitute_for", "note", "config", "arms", "paper")


def run(config: dict, seed: int) -> dict:
    """One seed: the shared training to ``teleport_epoch``, every arm's teleport and the training after it."""
    options = {k: v for k, v in config.items() if k not in ("float64", "base_seed", "teleport_batches")}
    r = run_teleport_generalization(seeds=[seed], seed=config["base_seed"], progress=False,
                                    n_teleport_batches=config["teleport_batches"],
                                    dtype=torch.float64 if config["float64"] else torch.float32, **options)
    return {"seed": seed, "setup": {k: r[k] for k in SETUP_KEYS}, "run": r["runs"][0], "seconds": r["seconds"]}


def summarize(results: list[dict], config: dict) -> dict:
    """Per arm over seeds: final / best validation loss, paired difference to no teleport, teleport records."""
    setup = results[0]["setup"]
    return {**setup, "config": {**setup["config"], "seeds": [r["seed"] for r in results]},
            "summary": summarise([r["run"] for r in results], config["arms"])}


def _band(ax, x, curves: np.ndarray, color, label: str) -> None:
    mean = curves.mean(0)
    ax.plot(x, mean, color=color, label=label)
    if len(curves) > 1:
        sd = curves.std(0, ddof=1)
        ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.12)


def figure(document: dict, path: Path) -> None:
    """Validation loss per arm (mean ± sd over seeds), its paired difference to the no-teleport arm
    per epoch, and the final difference per seed."""
    summary, runs = document["summary"], [r["run"] for r in document["results"]]
    arms = summary["arms"]
    sns.set_theme(style="whitegrid")
    palette = dict(zip(arms, sns.color_palette("colorblind"), strict=False))
    fig, (ax, dx, bx) = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [3, 3, 2]})
    t = summary["config"]["teleport_epoch"]
    curves = {arm: np.array([r["arms"][arm]["val_loss"] for r in runs], dtype=float) for arm in arms}
    epochs = np.arange(1, len(next(iter(curves.values()))[0]) + 1)
    for arm, c in curves.items():
        _band(ax, epochs, c, palette[arm], LABELS[arm])
        if "none" in curves and arm != "none":
            _band(dx, epochs[t:], c[:, t:] - curves["none"][:, t:], palette[arm], LABELS[arm])
    for a in (ax, dx):
        a.axvline(t, color="grey", ls=":", lw=1)
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    ax.set_ylabel("validation loss (mean ± sd over seeds)")
    dx.axhline(0, color="k", lw=1)
    dx.set_ylabel("validation loss − no teleport (paired)")
    others = [a for a in arms if a != "none"]
    if "none" in curves and others:
        rows = [(LABELS[a], r["arms"][a]["val_loss"][-1] - r["arms"]["none"]["val_loss"][-1])
                for a in others for r in runs]
        sns.stripplot(x=[d for _, d in rows], y=[lab for lab, _ in rows], ax=bx, size=6)
        bx.axvline(0, color="k", lw=1)
        bx.set_xlabel("final val loss − no teleport (per seed)")
    fig.suptitle(f"E9 substitute: {summary['dataset']} ({summary['config']['dims']}) in place of CIFAR-10; "
                 f"teleport after epoch {t}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


RUNNERS = [Runner(
    "e9_generalization", "E9 (P §4.4): teleport to lower / raise φ or ψ near convergence, then the validation loss",
    run, figure, {"dataset": "synthetic", "epochs": 40, "teleport_epoch": 20, "arms": list(ARMS), "n_samples": 12000,
                  "n_features": 64, "dims": "64,32,10,10", "lr": 0.02, "batch_size": 20, "teleport_batches": 5,
                  "teleport_batch_size": 2000, "group_lr": 5e-2, "phi_steps": 10, "psi_steps": 1,
                  "sharpness_directions": 10, "sharpness_variant": "delta", "action_form": "pinv", "monotone": False,
                  "float64": False, "base_seed": 0, "device": "cpu"},
    {"epochs": 3, "teleport_epoch": 2, "n_samples": 600, "teleport_batches": 2, "teleport_batch_size": 100,
     "phi_steps": 2, "sharpness_directions": 2}, summarize, default_seeds=5)]
