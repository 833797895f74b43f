"""E6 on digits (substitute; ``experiments.teleport.schedules``, D §4.6.3): when, how often and on how many
mini-batches to teleport — SGD (lr 2e-3, batch 20) on the 64-64-64-10 MLP, teleports of 10 ascent steps (lr
1e-3) on mini-batches of 20 with the exact pinv GL action.

Config: ``families`` (subset of when, spacing, batches), ``epochs``, ``report_epochs``, ``teleport_steps``,
``per_family`` (the first n schedules of each family; null: all), ``device``.  Summary: per arm mean ± std
curves and the paired gap log10 L_arm − log10 L_none (same seed) at the report epochs.
"""

from __future__ import annotations

import math
from pathlib import Path

from experiments.registry import Runner
from experiments.teleport.digits import summarize
from experiments.teleport.schedules import FAMILIES, log_gaps, paired_log_gap, run_schedules
from symdisc.plotting import plt, save_figure, sns

TITLES = {"when": "(a) 4 mini-batches at one epoch", "spacing": "(b) 4 single-batch teleports, spacing d",
          "batches": "(c) m mini-batches after epoch 1"}


def run(config: dict, seed: int) -> dict:
    """One seed: the no-teleport run and every schedule from the seed's θ₀ and batch order."""
    r = run_schedules(config["families"], seeds=[seed], epochs=config["epochs"], device=config["device"],
                      report_epochs=config["report_epochs"], teleport_steps=config["teleport_steps"],
                      per_family=config["per_family"])
    r["setup"].pop("smoke")
    return {"seed": seed, "setup": r["setup"], "runs": r["runs"]}


def summarize_seeds(results: list[dict], config: dict) -> dict:
    runs = [run for r in results for run in r["runs"]]
    return {"setup": {**results[0]["setup"], "seeds": [r["seed"] for r in results]},
            "arms": summarize(runs)["sgd"], "paired_log10_gap": log_gaps(runs, config["report_epochs"],
                                                                          config["epochs"])}


def _gap_curve(runs: list[dict], arm: str, key: str, epochs: int) -> list[float]:
    """Per epoch: the mean over seeds of log10 L_arm − log10 L_none (``paired_log_gap``: diverged runs left out)."""
    gaps = paired_log_gap(runs, arm, key, range(epochs + 1))
    return [math.nan if g["mean"] is None else g["mean"] for g in gaps.values()]


def figure(document: dict, path: Path) -> None:
    """Per family (columns), training and test loss (rows): the mean paired Δ log10 L of each schedule."""
    setup = document["summary"]["setup"]
    runs = [run for r in document["results"] for run in r["runs"]]
    fams = list(setup["families"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, len(fams), figsize=(4.2 * len(fams), 6.4), squeeze=False, sharex=True)
    for col, fam in enumerate(fams):
        arms = [a for a in dict.fromkeys(r["arm"] for r in runs) if a.startswith(fam + ": ")]
        palette = sns.color_palette("viridis", len(arms))
        for row, key in enumerate(("train_loss", "test_loss")):
            ax = axes[row][col]
            for color, arm in zip(palette, arms, strict=True):
                gap = _gap_curve(runs, arm, key, setup["epochs"])
                div = sum(r["diverged_at"] is not None for r in runs if r["arm"] == arm)
                label = arm.split(": ", 1)[1] + (f" ({div} diverged, left out)" if div else "")
                ax.plot(range(len(gap)), gap, color=color, lw=1.4, label=label)
            ax.axhline(0, color="black", lw=0.8)
            ax.set_ylabel(f"Δ log10 {key.split('_')[0]} loss")
            if row == 0:
                ax.set_title(TITLES[fam], fontsize=10)
                ax.legend(fontsize=8)
            else:
                ax.set_xlabel("epoch")
    fig.suptitle(f"{setup['experiment']}\nSGD lr 2e-3; Δ = mean over {len(setup['seeds'])} seeds of log10 L(arm) − "
                 "log10 L(no teleport), same seed (below 0: teleporting helped); not the dissertation's MNIST numbers",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    save_figure(fig, path, dpi=110)


RUNNERS = [Runner(
    "e6_schedules", "E6 (D §4.6.3): teleport schedules on digits — when, how often, on how many mini-batches",
    run, figure, {"families": list(FAMILIES), "epochs": 30, "report_epochs": [2, 5, 10, 20, 30], "teleport_steps": 10,
                  "per_family": None, "device": "cpu"},
    {"epochs": 2, "teleport_steps": 3, "per_family": 2}, summarize_seeds, default_seeds=5, digits=6)]
