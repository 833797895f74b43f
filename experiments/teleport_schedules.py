"""E6 on digits (substitute): teleport schedules — when, how often, on how many mini-batches (D §4.6.3).

    python experiments/teleport_schedules.py [--families when,spacing,batches] [--seeds 5] [--epochs 30]
                                             [--smoke] [--threads 1] [--out PATH.json]

SGD (lr 2e-3, batch 20) on the 64-64-64-10 LeakyReLU MLP, teleports of 10 ascent steps (lr 1e-3) on
mini-batches of 20 with the exact pinv GL action (``symdisc.teleport.schedules``).  Writes the JSON
(setup, command, per-arm mean ± std curves, paired log10 gaps to the no-teleport arm, per-run
records) and a PNG beside it: per family, the mean over seeds of log10 L_arm − log10 L_none per epoch
for the training and the test loss.  ``--smoke``: 1 seed, 2 epochs, two schedules per family, into a
temporary directory unless ``--out`` is given (CI).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from symdisc.io import check_writable
from symdisc.plotting import save_figure
from symdisc.teleport.digits import write_result
from symdisc.teleport.schedules import FAMILIES, paired_log_gap, run_schedules

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "experiments" / "results" / "teleport" / "e6_schedules.json"
TITLES = {"when": "(a) 4 mini-batches at one epoch", "spacing": "(b) 4 single-batch teleports, spacing d",
          "batches": "(c) m mini-batches after epoch 1"}


def _gap_curve(result: dict, arm: str, key: str) -> list[float]:
    """Per epoch: the mean over seeds of log10 L_arm − log10 L_none (``paired_log_gap``: diverged runs left out)."""
    gaps = paired_log_gap(result["runs"], arm, key, range(result["setup"]["epochs"] + 1))
    return [math.nan if g["mean"] is None else g["mean"] for g in gaps.values()]


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fams = list(result["setup"]["families"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, len(fams), figsize=(4.2 * len(fams), 6.4), squeeze=False, sharex=True)
    for col, fam in enumerate(fams):
        arms = [a for a in dict.fromkeys(r["arm"] for r in result["runs"]) if a.startswith(fam + ": ")]
        palette = sns.color_palette("viridis", len(arms))
        for row, key in enumerate(("train_loss", "test_loss")):
            ax = axes[row][col]
            for color, arm in zip(palette, arms, strict=True):
                gap = _gap_curve(result, arm, key)
                div = sum(r["diverged_at"] is not None for r in result["runs"] if r["arm"] == arm)
                label = arm.split(": ", 1)[1] + (f" ({div} diverged, left out)" if div else "")
                ax.plot(range(len(gap)), gap, color=color, lw=1.4, label=label)
            ax.axhline(0, color="black", lw=0.8)
            ax.set_ylabel(f"Δ log10 {key.split('_')[0]} loss")
            if row == 0:
                ax.set_title(TITLES[fam], fontsize=10)
                ax.legend(fontsize=8)
            else:
                ax.set_xlabel("epoch")
    n = len(result["setup"]["seeds"])
    fig.suptitle(f"{result['setup']['experiment']}\nSGD lr 2e-3; Δ = mean over {n} seeds of log10 L(arm) − "
                 "log10 L(no teleport), same seed (below 0: teleporting helped); not the dissertation's MNIST numbers",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated subset of {', '.join(FAMILIES)}")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--smoke", action="store_true", help="1 seed, 2 epochs, two short schedules per family (seconds)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help=f"JSON path (default {DEFAULT_OUT.relative_to(ROOT)}); PNG beside it")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp()) / DEFAULT_OUT.name if args.smoke else DEFAULT_OUT)
    check_writable(out)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    t0 = time.perf_counter()
    command = shlex.join(["python", "experiments/teleport_schedules.py", *(argv if argv is not None else sys.argv[1:])])
    result = run_schedules(families, seeds=range(1 if args.smoke else args.seeds), epochs=args.epochs,
                           progress=sys.stderr.isatty(), smoke=args.smoke)
    return write_result(out, result, command, time.perf_counter() - t0, figure)


if __name__ == "__main__":
    main()
