"""Figures (seaborn), written atomically."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from symdisc.io import atomic_write  # noqa: E402


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> str | os.PathLike:
    """Write ``fig`` atomically (format from the suffix, PNG by default) and close it."""
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=os.path.splitext(str(path))[1][1:] or "png"))
    finally:
        plt.close(fig)
    return path


def census_figure(result, path: str | os.PathLike, learned: tuple[int, int] | None = None) -> None:
    """Null-space dimension vs batch size (output and per-sample-loss level), with the known orbit dimension and,
    given ``learned`` = (batch size, count), the number of verified learned fields at that batch."""
    rows = []
    for r in result.rows:
        for level, dims in (("outputs", r.output_null_dims), ("per-sample losses", r.loss_null_dims)):
            rows += [{"batch size": r.batch_size, "null dimension": d, "Jacobian of": level} for d in dims]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=pd.DataFrame(rows), x="batch size", y="null dimension",
                 hue="Jacobian of", marker="o", errorbar=("pi", 100), ax=ax)
    ax.axhline(result.known_orbit_dim, color="k", ls="--", lw=1, label=f"known orbit dim = {result.known_orbit_dim}")
    if learned is not None:
        ax.scatter([learned[0]], [learned[1]], marker="*", s=220, color="crimson", zorder=5,
                   label=f"learned, verified = {learned[1]} (batch {learned[0]})")
    ax.set_xscale("log", base=2)
    ax.set_title(f"Symmetry census: {result.architecture} (p = {result.num_params})")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def teleport_figure(result: dict, path: str | os.PathLike) -> str | os.PathLike:
    """Full training loss and ‖∇L‖² against steps, with and without teleports (``symdisc teleport``); dotted
    lines mark the steps after which θ was teleported."""
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    palette = sns.color_palette("colorblind")
    marks = sorted({e["step"] for e in result["teleport"]["teleports"]})
    for ax, (key, label) in zip(axes, (("loss", "training loss L"), ("grad_norm_sq", "‖∇L‖²")), strict=True):
        for i, arm in enumerate(("plain", "teleport")):
            run = result[arm]
            ax.plot(run["step"], [float("nan") if v is None else v for v in run[key]], color=palette[i],
                    label="with teleport" if arm == "teleport" else "without teleport")
        for m in marks:
            ax.axvline(m, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
        ax.legend()
    spec = result["spec"]
    fig.suptitle(f"teleport: {result['architecture']['architecture']} along {result['symmetry']['name']} "
                 f"({spec['optimizer']}, lr {spec['lr']:g})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
