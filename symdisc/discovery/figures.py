"""Figures of a learned symmetry: generator heatmaps, exp(h) heatmaps, loss along curves (fig. 6.6)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from torch.func import vmap  # noqa: E402

from symdisc.architecture import Architecture, make_generator  # noqa: E402
from symdisc.discovery.learned import LearnedSymmetry  # noqa: E402
from symdisc.linalg import expm  # noqa: E402
from symdisc.plotting import save_figure  # noqa: E402
from symdisc.verification.config import HELD_OUT_STREAM  # noqa: E402
from symdisc.verification.probes import probe_for  # noqa: E402

MAX_HEATMAP_P = 64


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=110)


def _heatmaps(mats: torch.Tensor, title: str, path: Path) -> Path:
    k = mats.shape[0]
    cols = min(k, 4)
    rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < k:
            lim = float(mats[i].abs().max()) or 1.0
            sns.heatmap(mats[i].numpy(), ax=ax, cmap="RdBu_r", vmin=-lim, vmax=lim, square=True, cbar=False,
                        xticklabels=False, yticklabels=False)
            ax.set_title(f"{title} {i}")
        else:
            ax.axis("off")
    fig.suptitle(f"{title} over the flattened parameter space (p = {mats.shape[1]})")
    fig.tight_layout()
    return _save(fig, path)


def figures(sym: LearnedSymmetry, arch: Architecture, batch: int, out: str | Path, seed: int = 0) -> list[str]:
    """Write generators.png, exp_generators.png (p ≤ 64) and curves.png into ``out``; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arch = arch.to(dtype=torch.float64)  # a float32 artefact then runs in float64 on cast copies; sym is not changed
    written = []
    with torch.no_grad():
        H = sym.generators(torch.float64)
        if arch.num_params <= MAX_HEATMAP_P:
            written.append(_heatmaps(H, "h", out / "generators.png"))
            written.append(_heatmaps(expm(H), "exp(h)", out / "exp_generators.png"))
        gen = make_generator(seed, HELD_OUT_STREAM, 99)
        theta, X, Y = (t[0] for t in arch.sample_draws(1, batch, gen))
        L0 = arch.batch_loss(theta, X, Y)
        ts = torch.linspace(-1, 1, 41, dtype=torch.float64)
        sns.set_theme(style="whitegrid")
        fig, ax = plt.subplots(figsize=(6, 4))
        probe = probe_for(sym)  # the random comparator verification uses (a free move for a constrained action)
        for i in range(sym.num_generators):
            e = torch.eye(sym.num_generators, dtype=torch.float64)[i]
            scale = 0.2 * theta.norm() / sym.field(e, theta, X).norm()
            curve = vmap(lambda q: arch.batch_loss(q, X, Y))(sym.orbit(scale * e, theta, ts, X))
            ax.plot(ts, curve - L0, color="C0", alpha=0.8, label="learned h" if i == 0 else None)
            R = torch.randn(*H.shape[1:], generator=gen, dtype=torch.float64)
            xi_r = probe.random_field(R, theta, X)
            r_scale = 0.2 * theta.norm() / xi_r.norm()
            curve_r = vmap(lambda t, s=r_scale, M=R: arch.batch_loss(probe.random_point(M, t * s, theta, X), X, Y))(ts)
            ax.plot(ts, curve_r - L0, color="C3", alpha=0.6, ls="--",
                    label="random h (‖ξ‖ matched)" if i == 0 else None)
        ax.set_xlabel("t (curve moves 0.2‖θ‖ per unit t at t = 0)")
        ax.set_ylabel("L(a_X(exp(t h), θ)) − L(θ)")
        ax.set_title("Loss along learned vs random orbit curves (held-out θ)")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, out / "curves.png"))
    return [str(p) for p in written]
