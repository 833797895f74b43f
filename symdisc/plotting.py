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


def census_figure(result, path: str | os.PathLike) -> None:
    """Null-space dimension vs batch size (output and per-sample-loss level), with the known orbit dimension."""
    rows = []
    for r in result.rows:
        for level, dims in (("outputs", r.output_null_dims), ("per-sample losses", r.loss_null_dims)):
            rows += [{"batch size": r.batch_size, "null dimension": d, "Jacobian of": level} for d in dims]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=pd.DataFrame(rows), x="batch size", y="null dimension",
                 hue="Jacobian of", marker="o", errorbar=("pi", 100), ax=ax)
    ax.axhline(result.known_orbit_dim, color="k", ls="--", lw=1, label=f"known orbit dim = {result.known_orbit_dim}")
    ax.set_xscale("log", base=2)
    ax.set_title(f"Symmetry census: {result.architecture} (p = {result.num_params})")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
