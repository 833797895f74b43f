"""E4 (teleport.md §4.1): the teleport's lr × ascent steps on the E3 problem of ``seed`` (GD, one teleport
after step 5, the faithful variant); convergence at |L_t − L_{t+1}| < 1e-3, speed-up in steps and in
wall-clock time to convergence.  One run; the seed picks the problem (the committed run: 0)."""

from __future__ import annotations

import math
import time

from experiments.registry import Runner
from experiments.teleport.regression import REGRESSION_LR, regression_problem, regression_symmetry
from experiments.teleport.training import train_flat
from symdisc.plotting import plt, save_figure, sns
from symdisc.teleport.routine import TeleportConfig


def run(config: dict, seed: int) -> dict:
    """The baseline and every (lr, steps) of the grid: converged step, seconds, final loss, largest |ΔL|."""
    arch, theta0, X, Y, loss = regression_problem(seed)
    sym = regression_symmetry(arch, "known")
    horizon, lr = config["horizon"], REGRESSION_LR["gd"]

    def converge(tele: TeleportConfig | None) -> dict:
        run = train_flat(theta0, loss, "gd", lr, horizon, sym if tele else None, {5}, tele, X)
        losses = run["losses"]
        step = next((t for t in range(len(losses) - 1) if abs(losses[t] - losses[t + 1]) < 1e-3), None)
        ok = step is not None and all(math.isfinite(v) for v in losses[:step + 1])
        seconds = None
        if ok:  # wall-clock to convergence: the same run again, stopped there (teleport included)
            t0 = time.perf_counter()
            train_flat(theta0, loss, "gd", lr, step, sym if tele else None, {5}, tele, X)
            seconds = time.perf_counter() - t0
        return {"converged_step": step if ok else None, "seconds": seconds, "final_loss": losses[-1],
                "max_abs_loss_change": max((abs(e["loss_change"]) for e in run["teleports"]), default=0.0)}

    converge(None)  # untimed warm-up: first calls pay one-off dispatch and allocation costs
    base = converge(None)
    grid = []
    for tele_lr in config["lrs"]:
        for n in config["ascent_steps"]:
            r = converge(TeleportConfig(steps=n, lr=tele_lr, parameterisation="first_order", monotone=False))
            r.update(lr=tele_lr, steps=n)
            if r["converged_step"] and base["converged_step"]:
                r["speedup_steps"] = base["converged_step"] / r["converged_step"]
                r["speedup_wallclock"] = base["seconds"] / r["seconds"]
            grid.append(r)
    return {"baseline": base, "grid": grid, "horizon": horizon, "criterion": "|L_t − L_{t+1}| < 1e-3",
            "note": "wall-clock: a second run stopped at the convergence step, teleport included; one machine, "
                    "one thread — the step ratios are the stable measure (teleport.md E4)"}


def figure(document: dict, path) -> None:
    """Heatmaps of the speed-up in steps and in wall-clock time over the grid."""
    config, grid = document["config"], document["results"][0]["grid"]
    lrs, nsteps = config["lrs"], config["ascent_steps"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("speedup_steps", "speedup_wallclock"), strict=True):
        table = [[next((g.get(key) or math.nan for g in grid if g["lr"] == lr and g["steps"] == n), math.nan)
                  for n in nsteps] for lr in lrs]
        sns.heatmap(table, annot=True, fmt=".2f", xticklabels=nsteps, yticklabels=[f"{lr:.0e}" for lr in lrs],
                    cmap="RdBu", center=1.0, ax=ax)
        ax.set_xlabel("ascent steps")
        ax.set_ylabel("teleport lr")
        ax.set_title(f"E4 {key.replace('_', ' ')} (blank: diverged / not converged)")
    fig.tight_layout()
    save_figure(fig, path)


RUNNERS = [Runner(
    "e4_sweep", "E4: teleport lr × ascent steps on E3 (faithful variant), speed-up to convergence",
    run, figure, {"lrs": [1e-9, 1e-8, 1e-7, 1e-6, 1e-5], "ascent_steps": [1, 2, 4, 8, 16, 32], "horizon": 2000},
    {"lrs": [1e-7], "ascent_steps": [1, 8], "horizon": 600}, digits=7)]
