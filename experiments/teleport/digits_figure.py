"""Figures of the digits runs (E12, E5): training and test loss per optimizer and arm over epochs, and the
lr check's final training loss against lr."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.ticker import NullFormatter

from symdisc.plotting import plt, save_figure, sns

ARM_LABELS = {"none": "without teleport", "grad_norm": "teleport ‖∇L‖²", "adagrad": "teleport ‖∇L‖_A (AdaGrad)"}


def log_stats(curves: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per epoch over seeds: mean and std of log10(loss) (runs that diverged count until they do)."""
    width = max(len(c) for c in curves)
    t = torch.tensor([[math.nan if v is None else v for v in c] + [math.nan] * (width - len(c)) for c in curves])
    logs = t.clamp_min(1e-300).log10()
    mean = logs.nanmean(0)
    n = (~logs.isnan()).sum(0)
    std = ((logs - mean).pow(2).nansum(0) / (n - 1).clamp_min(1)).sqrt()
    return mean, std


def figure(document: dict, path: Path) -> None:
    """Training (top) and test (bottom) loss per optimizer and arm: mean ± std over seeds of
    log10 loss (the geometric mean ×/÷ the geometric std; the JSON holds the arithmetic ones)."""
    setup = document["summary"]["setup"]
    all_runs = [run for r in document["results"] for run in r["runs"]]
    names = list(document["summary"]["optimizers"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 6.2), squeeze=False, sharex=True)
    colors = dict(zip(ARM_LABELS, sns.color_palette("deep", len(ARM_LABELS)), strict=True))
    for col, name in enumerate(names):
        runs = [r for r in all_runs if r["optimizer"] == name]
        for row, key in enumerate(("train_loss", "test_loss")):
            ax = axes[row][col]
            for arm in dict.fromkeys(r["arm"] for r in runs):
                mean, std = log_stats([r["curves"][key] for r in runs if r["arm"] == arm])
                epochs = torch.arange(len(mean))
                ax.plot(epochs, 10**mean, color=colors[arm], lw=1.3, label=ARM_LABELS[arm])
                ax.fill_between(epochs, 10 ** (mean - std), 10 ** (mean + std), color=colors[arm], alpha=0.2, lw=0)
            ax.set_xscale("symlog", linthresh=10, linscale=1.5)
            ticks = [t for t in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500) if t < len(epochs)]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.axvline(1, color="grey", lw=0.8, ls=":")
            ax.set_ylabel(f"{key.split('_')[0]} cross-entropy")
            if row == 0:
                ax.set_title(f"{name} (lr {setup['optimizers'][name]['lr']:g})")
            else:
                ax.set_xlabel("epoch (teleport after epoch 1, dotted)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle(f"{setup['experiment']}\nLeakyReLU MLP; line and band: mean ± std of log10 loss over "
                 f"{len(setup['seeds'])} seed(s); not the papers' MNIST numbers", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    save_figure(fig, path, dpi=110)


def lr_check_figure(document: dict, path: Path) -> None:
    """Per optimizer: the final training loss of each seed against lr (crosses: unstable runs)."""
    names = document["config"]["optimizers"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for r in document["results"]:
            rows = r["optimizers"][name]
            for x in rows:
                loss = x["final_train_loss"]
                ax.plot(x["lr"], loss if loss is not None else math.nan, "x" if x["unstable"] else "o",
                        color=f"C{r['seed'] % 10}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("lr")
        ax.set_ylabel("final training loss")
        ax.set_title(name)
    fig.suptitle(f"lr check ({document['config']['epochs']} epochs, no teleport): × unstable, ● stable; colour = seed",
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
