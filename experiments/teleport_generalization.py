"""E9 (P §4.4, F.4; D §5.3; teleport.md §2.5) on a substitute: teleport once near convergence to
change sharpness φ or curvature ψ, and compare the validation loss after training.

    python experiments/teleport_generalization.py [--seeds 5] [--epochs 40] [--teleport-epoch 20]
                                                  [--directions 10] [--smoke] [--out PATH.json]

Arms: no teleport, φ↓, φ↑, ψ↓, ψ↑ (5 seeds), on synthetic data (the CIFAR-10 substitute) with a
64-32-10-10 LeakyReLU MLP; teleport at epoch 20 of 40 on 5 batches of 2000 along the pinv GL actions
of both hidden layers at once, 10 steps (φ) / 1 step (ψ) of group lr 5e-2.  Writes
experiments/results/teleport/e9_generalization.json (setup, command, per-seed curves and teleport
records, the summary) and a PNG of the validation curves per arm beside it.  The paper reports
figures only; its qualitative findings are quoted in the JSON.  ``--smoke`` runs a tiny
configuration into a temporary directory unless ``--out`` is given (CI).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from symdisc.io import check_writable, write_json
from symdisc.plotting import save_figure
from symdisc.teleport.generalization import ARMS, run_teleport_generalization

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "teleport"
LABELS = {"none": "no teleport", "phi_down": "φ ↓ (flatter)", "phi_up": "φ ↑ (sharper)",
          "psi_down": "ψ ↓ (less curved)", "psi_up": "ψ ↑ (more curved)"}


def figure(result: dict, path: Path) -> None:
    """Validation loss per arm (mean ± sd over seeds), its paired difference to the no-teleport arm
    per epoch, and the final difference per seed."""
    sns.set_theme(style="whitegrid")
    palette = dict(zip(result["arms"], sns.color_palette("colorblind"), strict=False))
    fig, (ax, dx, bx) = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [3, 3, 2]})
    t = result["config"]["teleport_epoch"]
    curves = {arm: np.array([r["arms"][arm]["val_loss"] for r in result["runs"]]) for arm in result["arms"]}
    epochs = np.arange(1, len(next(iter(curves.values()))[0]) + 1)
    for arm, c in curves.items():
        _band(ax, epochs, c, palette[arm], LABELS[arm])
        if "none" in curves and arm != "none":
            _band(dx, epochs[t:], c[:, t:] - curves["none"][:, t:], palette[arm], LABELS[arm])
    for a in (ax, dx):
        a.axvline(t, color="grey", ls=":", lw=1)
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    ax.set_ylabel("validation loss (mean ± sd over seeds)")
    dx.axhline(0, color="k", lw=1)
    dx.set_ylabel("validation loss − no teleport (paired)")
    others = [a for a in result["arms"] if a != "none"]
    if "none" in curves and others:
        rows = [(LABELS[a], r["arms"][a]["val_loss"][-1] - r["arms"]["none"]["val_loss"][-1])
                for a in others for r in result["runs"]]
        sns.stripplot(x=[d for _, d in rows], y=[lab for lab, _ in rows], ax=bx, size=6)
        bx.axvline(0, color="k", lw=1)
        bx.set_xlabel("final val loss − no teleport (per seed)")
    fig.suptitle(f"E9 substitute: {result['dataset']} ({result['config']['dims']}) in place of CIFAR-10; "
                 f"teleport after epoch {t}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _band(ax, x, curves: np.ndarray, color, label: str) -> None:
    mean = curves.mean(0)
    ax.plot(x, mean, color=color, label=label)
    if len(curves) > 1:
        sd = curves.std(0, ddof=1)
        ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--teleport-epoch", type=int, default=20)
    ap.add_argument("--directions", type=int, default=10,
                    help="|D| of the φ objective (paper: 200; 10 keeps the CPU run under an hour)")
    ap.add_argument("--variant", choices=("delta", "raw"), default="delta", help="φ objective: φ − L or raw φ")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="1 seed, 3 epochs, 600 samples, batches of 100")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (PNG beside it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    options = dict(seeds=args.seeds, epochs=args.epochs, teleport_epoch=args.teleport_epoch,
                   sharpness_directions=args.directions, sharpness_variant=args.variant,
                   arms=tuple(args.arms.split(",")), progress=not args.smoke)
    if args.smoke:
        options.update(seeds=1, epochs=3, teleport_epoch=2, n_samples=600, n_teleport_batches=2,
                       teleport_batch_size=100, phi_steps=2, sharpness_directions=2)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or (Path(tmp) if args.smoke else RESULTS) / "e9_generalization.json"
        check_writable(out)
        result = run_teleport_generalization(**options)
        result = {"experiment": "E9", "command": shlex.join(["python", "experiments/teleport_generalization.py",
                                                             *sys.argv[1:]]), **result}
        write_json(out, result)
        figure(result, out.with_suffix(".png"))
        print(json.dumps({"experiment": "E9", "json": str(out), "summary": {
            arm: {"final_val_loss": s["final_val_loss"], **({"statuses": s["teleport"]["statuses"]}
                                                            if "teleport" in s else {})}
            for arm, s in result["summary"].items()}}))


if __name__ == "__main__":
    main()
