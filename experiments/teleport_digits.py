"""E12 (and E5) on digits (substitutes): teleportation inside standard optimizers.

    python experiments/teleport_digits.py [--experiment e12|e5] [--seeds 5] [--epochs N]
                                          [--optimizers sgd,momentum,...] [--lr NAME=LR ...]
                                          [--state-policy keep|transform|reset] [--max-step C]
                                          [--smoke] [--out PATH.json]

``e12`` (P §5.1, G.2): the 64-16-10-10 LeakyReLU MLP with SGD, momentum, AdaGrad, RMSProp, Adam,
teleported once after the first epoch on 8 mini-batches of 200.  ``e5`` (D §4.6.1): 64-64-64-10,
SGD and AdaGrad at lr 2e-3, teleported after the first epoch on 4 mini-batches of 20.  Both train
on scikit-learn's digits (the MNIST substitute: results are not the papers' numbers) with and
without the teleport (``symdisc.teleport.digits.run_digits``) and write the JSON (setup, command,
mean ± std curves, per-run records) and a PNG of the training and test loss per optimizer beside
it (mean ± std over seeds of log10 loss).  ``--smoke`` runs a tiny configuration into a temporary
directory unless ``--out`` is given (CI); ``--lr-check`` only checks the lrs for divergence.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from symdisc.io import check_writable, json_ready, write_json
from symdisc.plotting import save_figure
from symdisc.teleport import TeleportConfig
from symdisc.teleport.digits import E12_OPTIMIZERS, OptimizerSpec, TeleportPlan, run_digits, write_result

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "teleport"
ARM_LABELS = {"none": "without teleport", "grad_norm": "teleport ‖∇L‖²", "adagrad": "teleport ‖∇L‖_A (AdaGrad)"}


@dataclass(frozen=True)
class Preset:
    title: str
    dims: str
    optimizers: dict[str, OptimizerSpec]
    paper_lrs: dict[str, float]
    plan: TeleportPlan
    epochs: int
    adagrad_arm: bool = True


PRESETS = {
    # P §5.1 / G.2, D §5.4.2.  Momentum (0.9), RMSProp and Adam at the paper's 5e-2 diverge on digits
    # (`--lr-check`: NaN, or a training loss above the initial one, in 3–4 of 5 seeds): 2e-2, the
    # largest of LR_GRID that does not (docs/teleport_digits.md).
    "e12": Preset("E12 (substitute: scikit-learn digits for MNIST, 64-16-10-10 for 784-16-10-10)", "64,16,10,10",
                  E12_OPTIMIZERS,
                  {"adagrad": 1e-4, "momentum": 5e-2, "rmsprop": 5e-2, "adam": 5e-2}, TeleportPlan(), 100),
    # D §4.6.1 (Ch. 4 MNIST): hidden [512, 512] → [64, 64]; lr 2e-3 (AdaGrad's not restated: the same);
    # teleport lr 1e-3 right after epoch 1 on 4 mini-batches of 20 (≤ width 64: the action is exact).
    "e5": Preset("E5 (substitute: scikit-learn digits for MNIST, 64-64-64-10 for 784-512-512-10)", "64,64,64,10",
                 {"sgd": OptimizerSpec("SGD", 2e-3), "adagrad": OptimizerSpec("Adagrad", 2e-3)},
                 {"sgd": 2e-3, "adagrad": None},
                 TeleportPlan(batches=4, batch_size=20, config=TeleportConfig(steps=10, lr=1e-3, monotone=False)), 80,
                 adagrad_arm=False),
}


def _log_stats(curves: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per epoch over seeds: mean and std of log10(loss) (runs that diverged count until they do)."""
    width = max(len(c) for c in curves)
    t = torch.tensor([[math.nan if v is None else v for v in c] + [math.nan] * (width - len(c)) for c in curves])
    logs = t.clamp_min(1e-300).log10()
    mean = logs.nanmean(0)
    n = (~logs.isnan()).sum(0)
    std = ((logs - mean).pow(2).nansum(0) / (n - 1).clamp_min(1)).sqrt()
    return mean, std


def figure(result: dict, path: Path) -> None:
    """Training (top) and test (bottom) loss per optimizer and arm: mean ± std over seeds of
    log10 loss (the geometric mean ×/÷ the geometric std; the JSON holds the arithmetic ones)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import NullFormatter

    names = list(result["summary"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 6.2), squeeze=False, sharex=True)
    colors = dict(zip(ARM_LABELS, sns.color_palette("deep", len(ARM_LABELS)), strict=True))
    for col, name in enumerate(names):
        runs = [r for r in result["runs"] if r["optimizer"] == name]
        for row, key in enumerate(("train_loss", "test_loss")):
            ax = axes[row][col]
            for arm in dict.fromkeys(r["arm"] for r in runs):
                mean, std = _log_stats([r["curves"][key] for r in runs if r["arm"] == arm])
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
                ax.set_title(f"{name} (lr {result['setup']['optimizers'][name]['lr']:g})")
            else:
                ax.set_xlabel("epoch (teleport after epoch 1, dotted)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    n = len(result["setup"]["seeds"])
    fig.suptitle(f"{result['setup']['experiment']}\nLeakyReLU MLP; line and band: mean ± std of log10 loss over {n} "
                 "seed(s); not the papers' MNIST numbers", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    save_figure(fig, path, dpi=110)


LR_GRID = (5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3)


def unstable(run: dict) -> bool:
    """Diverged: a non-finite training loss, or one above its value at θ₀, at some epoch's end."""
    losses = run["curves"]["train_loss"]
    return run["diverged_at"] is not None or max(losses[1:]) > losses[0]


def lr_check(preset: Preset, names: list[str], seeds: int, epochs: int) -> dict:
    """Per optimizer: the paper's lr, then smaller ones of LR_GRID, until one is stable in every seed
    (baseline arm, no teleport)."""
    out = {}
    for name in names:
        spec, rows = preset.optimizers[name], []
        start = preset.paper_lrs.get(name) or spec.lr
        for lr in [start] + [x for x in LR_GRID if x < start]:
            r = run_digits({name: replace(spec, lr=lr)}, seeds=range(seeds), epochs=epochs, teleport=None,
                           progress=False, dims=preset.dims)
            flags = [unstable(run) for run in r["runs"]]
            rows.append({"lr": lr, "unstable_seeds": sum(flags), "diverged_at": [x["diverged_at"] for x in r["runs"]],
                         "max_train_loss_over_initial": [max(x["curves"]["train_loss"]) / x["curves"]["train_loss"][0]
                                                         for x in r["runs"]],
                         "final_train_loss": [x["curves"]["train_loss"][-1] for x in r["runs"]],
                         "final_test_acc": [x["curves"]["test_acc"][-1] for x in r["runs"]]})
            print(f"{name} lr {lr:g}: unstable in {sum(flags)}/{seeds} seeds", flush=True)
            if not any(flags):
                break
        out[name] = {"largest_stable_lr": rows[-1]["lr"] if not rows[-1]["unstable_seeds"] else None, "tried": rows}
    return {"criterion": unstable.__doc__, "epochs": epochs, "seeds": seeds, "results": out}


def _lr_overrides(items: list[str], names) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, lr = item.partition("=")
        if name not in names or not lr:
            raise SystemExit(f"--lr takes NAME=LR with NAME in {', '.join(names)}, got {item!r}")
        out[name] = float(lr)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", choices=tuple(PRESETS), default="e12")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=None, help="default: the preset's (e12: 100, e5: 80)")
    p.add_argument("--optimizers", default=None, help="comma-separated subset of the preset's optimizers")
    p.add_argument("--lr", action="append", default=[], metavar="NAME=LR", help="override an optimizer's lr")
    p.add_argument("--state-policy", choices=("transform", "keep", "reset"), default="keep",
                   help="optimizer state at a teleport (keep: see docs/teleport_digits.md on the cost of transform)")
    p.add_argument("--max-step", type=float, default=None,
                   help="cap ‖c‖ of each ascent step (TeleportConfig.max_step; default: none, as in the papers)")
    p.add_argument("--smoke", action="store_true", help="1 seed, 2 epochs, 2 short teleports (seconds)")
    p.add_argument("--lr-check", action="store_true", help="only the divergence check of the paper's lrs "
                   "(no teleport); writes <preset>_lr_check.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default experiments/results/teleport/<preset>_digits.json); "
                                               "the PNG goes beside it")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.experiment]
    default_out = RESULTS / f"{args.experiment}_{'lr_check' if args.lr_check else 'digits'}.json"
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp()) / default_out.name if args.smoke else default_out)
    check_writable(out)
    names = [n.strip() for n in (args.optimizers or ",".join(preset.optimizers)).split(",") if n.strip()]
    if any(n not in preset.optimizers for n in names):
        raise SystemExit(f"--optimizers takes names from {', '.join(preset.optimizers)}")
    lrs = _lr_overrides(args.lr, names)
    specs = {n: replace(preset.optimizers[n], lr=lrs.get(n, preset.optimizers[n].lr)) for n in names}
    t0 = time.perf_counter()
    command = shlex.join(["python", "experiments/teleport_digits.py", *(argv if argv is not None else sys.argv[1:])])
    if args.lr_check:
        epochs = 2 if args.smoke else args.epochs or preset.epochs
        result = lr_check(preset, names, 1 if args.smoke else args.seeds, epochs)
        write_json(out, {"command": command, "seconds": time.perf_counter() - t0,
                         **json_ready(result, 6, nonfinite_to_null=True)})
        print(f"wrote {out}")
        return result
    result = run_digits(specs, seeds=range(1 if args.smoke else args.seeds), epochs=args.epochs or preset.epochs,
                        teleport=replace(preset.plan, state_policy=args.state_policy,
                                         config=replace(preset.plan.config, max_step=args.max_step)),
                        smoke=args.smoke,
                        progress=sys.stderr.isatty(), dims=preset.dims, adagrad_arm=preset.adagrad_arm)
    result["setup"]["experiment"] = preset.title
    result["setup"]["lr_decisions"] = {n: {"paper": preset.paper_lrs.get(n), "used": s.lr} for n, s in specs.items()}
    return write_result(out, result, command, time.perf_counter() - t0, figure)


if __name__ == "__main__":
    main()
