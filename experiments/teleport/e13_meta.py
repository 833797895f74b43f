"""E13, learning to teleport (P §5.2 / D §5.5; teleport.md §3; ``experiments.teleport.meta``): GD,
LSTM(update), LSTM(lr,tele) and LSTM(update,tele) on ½‖Y − W2 σ(W1 X)‖_F² with 20×20 matrices, meta-trained
and then tested on unseen trajectories.  Intrinsically one run: the seed is its base seed.

Config: every field of ``MetaConfig`` (defaults: the ``full`` preset, ≤ 30 min on 2 CPU cores;
docs/teleport_meta.md states how it differs from the paper) and ``device``.  The paper's scale is
``--set hidden=300 batch=1 meta_lr_update=0.0001 trajectories='{"update": 600, "lr_tele": 30, "update_tele": 700}'``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.registry import Runner
from experiments.teleport.meta import PRESETS, MetaConfig, run_meta
from symdisc.plotting import plt, save_figure, sns

FULL, SMOKE = PRESETS["full"].to_dict(), PRESETS["smoke"].to_dict()


def meta_config(config: dict) -> MetaConfig:
    fields = {k: v for k, v in config.items() if k != "device"}
    return MetaConfig(**{**fields, "trajectories": tuple(fields["trajectories"].items())})


def run(config: dict, seed: int) -> dict:
    """Meta-train the learners, test them against GD: per-step mean/std test loss, g_t's loss changes."""
    return run_meta(meta_config(config), seed=seed, device=config["device"], progress=True)


def summarize(results: list[dict], config: dict) -> dict:
    r = results[0]
    return {"gd_lr": r["gd_lr"]["used"], "lowest_final_loss": r["lowest_final_loss"],
            "loss_at": {m["label"]: {t: v["mean"] for t, v in m["loss_at"].items()} for m in r["methods"].values()},
            "max_relative_loss_change": {m["label"]: m["teleport"]["max_relative_loss_change"]
                                         for m in r["methods"].values() if "teleport" in m}}


def figure(document: dict, path: Path) -> None:
    """Test loss vs step of the four methods: mean line, ± std band (clipped at the mean/10 on the log axis)."""
    result = document["results"][0]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method in result["methods"].values():
        mean, std = np.array(method["loss"]["mean"], dtype=float), np.array(method["loss"]["std"], dtype=float)
        steps = np.arange(len(mean))
        line, = ax.plot(steps, mean, label=method["label"])
        ax.fill_between(steps, np.maximum(mean - std, mean / 10), mean + std, color=line.get_color(), alpha=0.2)
    cfg = result["config"]
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("test loss ½‖Y − W₂σ(W₁X)‖²")
    ax.set_title(f"E13 learning to teleport (hidden {cfg['hidden']}, {cfg['test_trajectories']} test trajectories)",
                 fontsize=10)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


RUNNERS = [Runner("e13_meta", "E13 (P §5.2): learning to teleport, an LSTM meta-optimizer that also outputs g_t",
                  run, figure, {**FULL, "device": "cpu"}, {k: v for k, v in SMOKE.items() if v != FULL[k]}, summarize)]
