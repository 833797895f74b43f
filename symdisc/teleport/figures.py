"""Figures of teleportation runs: loss (and ‖∇L‖²) against steps, with and without teleport."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from symdisc.plotting import save_figure


def _curves(ax, runs: dict[str, list[list[float]]], ylabel: str, marks: list[int]) -> None:
    """Median and min–max band over seeds of each labelled set of curves (log scale)."""
    palette = sns.color_palette("colorblind")
    for i, (label, curves) in enumerate(runs.items()):
        length = min(len(c) for c in curves)
        arr = np.array([c[:length] for c in curves], dtype=float)
        steps = np.arange(length)
        ax.plot(steps, np.nanmedian(arr, axis=0), color=palette[i % len(palette)], label=label)
        if arr.shape[0] > 1:
            ax.fill_between(steps, np.nanmin(arr, axis=0), np.nanmax(arr, axis=0), color=palette[i % len(palette)],
                            alpha=0.2)
    for m in marks:
        ax.axvline(m, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()


def comparison_figure(result: dict, path: str | os.PathLike) -> str | os.PathLike:
    """Loss and ‖∇L‖² against steps, plain vs teleport, for booth / ellipse / rosenbrock / regression results."""
    sns.set_theme(style="whitegrid")
    if result["experiment"] == "regression":
        panels = [(f"{name}: {kind}", {
            "plain": [s[f"{key}_plain"] for s in r["seeds"]],
            "teleport": [s[f"{key}_teleport"] for s in r["seeds"]]}, [result["teleport_after_step"]])
            for name, r in result["optimizers"].items() for kind, key in (("loss", "losses"),
                                                                            ("‖∇L‖²", "grad_norm_sq"))]
    else:
        runs = result["training"] if "training" in result else {"plain": result["runs"]["plain"],
                                                               "teleport": result["runs"]["teleport"]}
        marks = [runs["teleport_before_step"]] if "teleport_before_step" in runs else \
            [e["step"] for e in runs["teleport"]["teleports"]]
        panels = [(kind, {label: [runs[label][key]] for label in ("plain", "teleport")}, marks)
                  for kind, key in (("loss", "losses"), ("‖∇L‖²", "grad_norm_sq"))]
    cols = 2
    rows = (len(panels) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    for ax, (ylabel, runs, marks) in zip(axes.flat, panels, strict=False):
        _curves(ax, runs, ylabel, marks)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"teleport: {result['experiment']} ({result.get('source', '')})")
    fig.tight_layout()
    return save_figure(fig, path)
