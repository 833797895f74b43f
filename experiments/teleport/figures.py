"""Figures shared by the teleport runners: curves with and without teleport (median and min–max band over
seeds, log scale) and the median loss of several teleport arms against one baseline."""

from __future__ import annotations

import os

import numpy as np

from symdisc.plotting import plt, save_figure, sns


def curves_panel(ax, runs: dict[str, list[list[float]]], ylabel: str, marks: list[int]) -> None:
    """Median and min–max band over seeds of each labelled set of curves (log scale); dotted teleport marks."""
    palette = sns.color_palette("colorblind")
    for i, (label, curves) in enumerate(runs.items()):
        arr = as_array(curves)
        steps = np.arange(arr.shape[1])
        ax.plot(steps, np.nanmedian(arr, axis=0), color=palette[i % len(palette)], label=label)
        if arr.shape[0] > 1:
            ax.fill_between(steps, np.nanmin(arr, axis=0), np.nanmax(arr, axis=0), color=palette[i % len(palette)],
                            alpha=0.2)
    for m in marks:
        ax.axvline(m, color="grey", ls=":", lw=1)
    ax.set(yscale="log", xlabel="step", ylabel=ylabel)
    ax.legend()


def panels_figure(panels: list[tuple[str, dict[str, list[list[float]]], list[int]]], title: str,
                  path: str | os.PathLike) -> None:
    """Two panels a row, each ``(ylabel, {label: curves over seeds}, teleport marks)``."""
    sns.set_theme(style="whitegrid")
    cols = 2
    rows = (len(panels) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    for ax, (ylabel, runs, marks) in zip(axes.flat, panels, strict=False):
        curves_panel(ax, runs, ylabel, marks)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def as_array(curves: list[list[float | None]]) -> np.ndarray:
    """Curves over seeds cut to the shortest, null (a diverged value in the JSON) and values beyond 1e30 (a
    diverging run; near the float range a log axis cannot even place its ticks) as NaN."""
    length = min(map(len, curves))
    arr = np.array([[np.nan if v is None else v for v in c[:length]] for c in curves], dtype=float)
    arr[~(np.abs(arr) < 1e30)] = np.nan
    return arr


def arms_figure(baseline: list[list[float]], arms: dict[str, list[list[float]]], title: str,
                path: str | os.PathLike) -> None:
    """Median loss over seeds without teleport (black) and in each teleport arm."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = sns.color_palette("colorblind")
    ax.plot(np.nanmedian(as_array(baseline), axis=0), color="k", label="no teleport")
    for i, (name, curves) in enumerate(arms.items()):
        ax.plot(np.nanmedian(as_array(curves), axis=0), color=palette[i], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (median over seeds)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
