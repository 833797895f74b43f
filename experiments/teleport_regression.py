"""Teleportation on the test functions and the 3-layer regression (teleport.md §4.1: E1, E2, E3, E4, E7, E10, E11).

    python experiments/teleport_regression.py [--part NAME ...] [--learned DIR] [--smoke]

Parts (default: all), each writing experiments/results/teleport/<file>.json + .png:
  testfunctions  E1 Rosenbrock, E2 Booth, the ellipse            → e1_e2_testfunctions
  regression     E3: GD and AdaGrad, 5 seeds, known action (symdisc and faithful variants) and, with
                 --learned DIR, a learned artefact of the teleport-regression preset  → e3_regression
  sweep          E4: teleport lr × ascent steps grid (faithful variant), speed-up to convergence → e4_sweep
  momentum       E10: SGD + momentum with the three state policies                 → e10_momentum
  adagrad        E11: AdaGrad teleported with ‖∇L‖² vs ‖∇L‖_A                      → e11_adagrad
  runtime        E7: teleport time vs width and depth of square LeakyReLU nets      → e7_runtime
--smoke runs tiny configurations into a temporary directory (CI).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from torch.func import grad  # noqa: E402

import symdisc  # noqa: E402
from symdisc import make_generator  # noqa: E402
from symdisc.io import json_ready, write_json  # noqa: E402
from symdisc.plotting import save_figure  # noqa: E402
from symdisc.symmetry import hidden_layers_gl  # noqa: E402
from symdisc.teleport import TeleportConfig, teleport  # noqa: E402
from symdisc.teleport.experiments import (  # noqa: E402
    REGRESSION_LR,
    RunOptions,
    regression_problem,
    regression_symmetry,
    run_booth,
    run_ellipse,
    run_regression,
    run_rosenbrock,
    train_flat,
)
from symdisc.teleport.figures import comparison_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "teleport"
COMMAND = "python experiments/teleport_regression.py"


def part_testfunctions(out: Path, smoke: bool, **_) -> dict:
    opts = RunOptions(smoke=smoke)
    result = {"booth": run_booth(opts), "ellipse": run_ellipse(opts), "rosenbrock": run_rosenbrock(opts)}
    for name, r in result.items():
        comparison_figure(json_ready(r, 7), out / f"e1_e2_{name}.png")
    return result


def part_regression(out: Path, smoke: bool, learned: str | None, seeds: int, **_) -> dict:
    base = RunOptions(seeds=seeds, smoke=smoke)
    arms = {"known-symdisc": base, "known-faithful": replace(base, variant="faithful")}
    if learned:
        arms["learned-symdisc"] = replace(base, symmetry=learned)
    result = {arm: run_regression(opts) for arm, opts in arms.items()}
    for arm, r in result.items():
        comparison_figure(json_ready(r, 7), out / f"e3_regression_{arm}.png")
    return result


def part_sweep(out: Path, smoke: bool, **_) -> dict:
    """E4: one teleport after step 5, faithful variant, lr × steps grid; converged at |L_t − L_{t+1}| < 1e-3."""
    lrs = [1e-7, 1e-6] if smoke else [1e-9, 1e-8, 1e-7, 1e-6, 1e-5]
    nsteps = [1, 8] if smoke else [1, 2, 4, 8, 16, 32]
    horizon = 300 if smoke else 2000
    arch, theta0, X, Y, loss = regression_problem(0)
    sym = regression_symmetry(arch, "known")

    def converge(config):
        run = train_flat(theta0, loss, "gd", REGRESSION_LR["gd"], horizon, sym if config else None, {5}, config, X)
        losses = run["losses"]
        step = next((t for t in range(len(losses) - 1) if abs(losses[t] - losses[t + 1]) < 1e-3), None)
        ok = step is not None and all(math.isfinite(v) for v in losses[:step + 1])
        seconds = None
        if ok:  # wall-clock to convergence: the same run again, stopped there (teleport included)
            t0 = time.perf_counter()
            train_flat(theta0, loss, "gd", REGRESSION_LR["gd"], step, sym if config else None, {5}, config, X)
            seconds = time.perf_counter() - t0
        return {"converged_step": step if ok else None, "seconds": seconds, "final_loss": losses[-1],
                "max_abs_loss_change": max((abs(e["loss_change"]) for e in run["teleports"]), default=0.0)}

    converge(None)  # untimed warm-up: first calls pay one-off dispatch and allocation costs
    base = converge(None)
    grid = []
    for lr in lrs:
        for n in nsteps:
            r = converge(TeleportConfig(steps=n, lr=lr, parameterisation="first_order", monotone=False))
            r.update(lr=lr, steps=n)
            if r["converged_step"] and base["converged_step"]:
                r["speedup_steps"] = base["converged_step"] / r["converged_step"]
                r["speedup_wallclock"] = base["seconds"] / r["seconds"]
            grid.append(r)
    result = {"baseline": base, "grid": grid, "horizon": horizon, "criterion": "|L_t − L_{t+1}| < 1e-3",
              "note": "wall-clock: a second run stopped at the convergence step, teleport included; one machine, "
                      "one thread — the step ratios are the stable measure (teleport.md E4)"}
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("speedup_steps", "speedup_wallclock"), strict=True):
        table = [[next((g.get(key, math.nan) for g in grid if g["lr"] == lr and g["steps"] == n), math.nan)
                  for n in nsteps] for lr in lrs]
        sns.heatmap(table, annot=True, fmt=".2f", xticklabels=nsteps, yticklabels=[f"{lr:.0e}" for lr in lrs],
                    cmap="RdBu", center=1.0, ax=ax)
        ax.set_xlabel("ascent steps")
        ax.set_ylabel("teleport lr")
        ax.set_title(f"E4 {key.replace('_', ' ')} (blank: diverged / not converged)")
    fig.tight_layout()
    save_figure(fig, out / "e4_sweep.png")
    return result


def part_momentum(out: Path, smoke: bool, seeds: int, **_) -> dict:
    base = RunOptions(optimizer="momentum", seeds=seeds, smoke=smoke)
    result = {p: run_regression(replace(base, state_policy=p)) for p in ("transform", "keep", "reset")}
    _policy_figure({p: r["optimizers"]["momentum"]["seeds"] for p, r in result.items()}, out / "e10_momentum.png",
                   "E10: SGD + momentum 0.9, lr 1e-4 — momentum at the teleport")
    return result


def part_adagrad(out: Path, smoke: bool, seeds: int, **_) -> dict:
    base = RunOptions(optimizer="adagrad", seeds=seeds, smoke=smoke)
    result = {obj: run_regression(replace(base, objective=obj)) for obj in ("grad_norm", "adagrad")}
    _policy_figure({obj: r["optimizers"]["adagrad"]["seeds"] for obj, r in result.items()}, out / "e11_adagrad.png",
                   "E11: AdaGrad lr 0.1 — teleport objective ‖∇L‖² vs ‖∇L‖_A")
    return result


def _policy_figure(arms: dict[str, list[dict]], path: Path, title: str) -> None:
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = sns.color_palette("colorblind")
    first = next(iter(arms.values()))
    ax.plot(statistics_median([s["losses_plain"] for s in first]), color="k", label="no teleport")
    for i, (name, seeds) in enumerate(arms.items()):
        ax.plot(statistics_median([s["losses_teleport"] for s in seeds]), color=palette[i], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (median over seeds)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def statistics_median(curves: list[list[float]]) -> list[float]:
    length = min(map(len, curves))
    return [statistics.median(c[t] for c in curves) for t in range(length)]


def part_runtime(out: Path, smoke: bool, **_) -> dict:
    """E7: seconds of one 10-step teleport vs one GD step, square weights and data (a) of width d in a 3-layer net,
    (b) of width 32 (128 in the paper; 32 keeps this part short on 2 cores) with a varying number of layers."""
    torch.set_num_threads(1)
    widths = [8, 16] if smoke else [8, 16, 32, 64, 128]
    depths = [2, 3] if smoke else [2, 3, 4, 6, 8]
    rows = []
    for kind, configs in (("width", [(d, 3) for d in widths]), ("depth", [(32, n) for n in depths])):
        for d, layers in configs:
            arch = symdisc.zoo.get("mlp", dims=",".join([str(d)] * (layers + 1)), act="leakyrelu").to(torch.float64)
            g = make_generator(7, d, layers)
            theta = arch.sample_params(g)
            X, Y = arch.sample_data(d, g)
            loss = lambda th, arch=arch, X=X, Y=Y: 0.5 * (arch.forward(th, X) - Y).pow(2).sum()
            sym = hidden_layers_gl(arch, "pinv")
            grad(loss)(theta)  # untimed: first calls pay one-off dispatch and allocation costs
            teleport(sym, theta, loss, X, TeleportConfig(steps=1, lr=1e-3, max_step=0.1))
            t0 = time.perf_counter()
            for _ in range(3):
                grad(loss)(theta)
            gd_step = (time.perf_counter() - t0) / 3
            t0 = time.perf_counter()
            teleport(sym, theta, loss, X, TeleportConfig(steps=10, lr=1e-3, max_step=0.1))
            rows.append({"vary": kind, "width": d, "layers": layers, "num_params": arch.num_params,
                         "teleport_seconds": time.perf_counter() - t0, "gd_step_seconds": gd_step})
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, x in ((axes[0], "width", "width"), (axes[1], "depth", "layers")):
        sel = [r for r in rows if r["vary"] == kind]
        ax.plot([r[x] for r in sel], [r["teleport_seconds"] for r in sel], "o-", label="one 10-step teleport")
        ax.plot([r[x] for r in sel], [r["gd_step_seconds"] for r in sel], "s-", label="one gradient")
        ax.set_xlabel(x)
        ax.set_ylabel("seconds")
        ax.set_yscale("log")
        if kind == "width":
            ax.set_xscale("log", base=2)
        ax.legend()
    fig.suptitle("E7: teleport cost (square LeakyReLU nets, batch = width, 1 thread)")
    fig.tight_layout()
    save_figure(fig, out / "e7_runtime.png")
    return {"rows": rows, "threads": 1}


PARTS = {"testfunctions": ("e1_e2_testfunctions", part_testfunctions), "regression": ("e3_regression", part_regression),
         "sweep": ("e4_sweep", part_sweep), "momentum": ("e10_momentum", part_momentum),
         "adagrad": ("e11_adagrad", part_adagrad), "runtime": ("e7_runtime", part_runtime)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", action="append", choices=sorted(PARTS), help="repeatable; default: all")
    ap.add_argument("--learned", default=None, help="artefact directory of a learned teleport-regression symmetry")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny configurations into a temporary directory")
    args = ap.parse_args()
    parts = args.part or list(PARTS)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) if args.smoke else RESULTS
        out.mkdir(parents=True, exist_ok=True)
        for name in parts:
            stem, fn = PARTS[name]
            t0 = time.perf_counter()
            result = fn(out, smoke=args.smoke, learned=args.learned, seeds=2 if args.smoke else args.seeds)
            flags = " ".join(sys.argv[1:]) if len(parts) == 1 else f"--part {name}" + (
                f" --learned {args.learned}" if args.learned and name == "regression" else "")
            doc = {"part": name, "command": f"{COMMAND} {flags}".strip(), "seconds": round(time.perf_counter() - t0, 1),
                   "torch": torch.__version__, "result": json_ready(result, 7)}
            write_json(out / f"{stem}.json", doc)
            print(json.dumps({"part": name, "seconds": doc["seconds"], "file": str(out / f"{stem}.json")}))


if __name__ == "__main__":
    main()
