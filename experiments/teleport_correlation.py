"""E8 (P §4.3, F.3, Table 1; teleport.md §2.4) on substitutes: correlation of sharpness φ and
curvature ψ with validation loss over models that differ only in their initialisation.

    python experiments/teleport_correlation.py [--dataset digits|synthetic] [--models 100] [--epochs 40]
                                               [--seed 0] [--smoke] [--out PATH.json]

Writes experiments/results/teleport/e8_correlation_<dataset>.json (setup, command, per-model values,
Pearson / Spearman r with bootstrap CIs, the paper's Table 1 column beside ours) and a PNG of the
scatter plots beside it.  digits stands in for MNIST and synthetic for CIFAR-10: the numbers are
substitutes, not reproductions of the paper's.  ``--smoke`` runs a tiny configuration into a
temporary directory unless ``--out`` is given (CI).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns
import torch

from symdisc.io import check_writable, write_json
from symdisc.plotting import save_figure
from symdisc.teleport.correlation import SETUPS, run_correlation

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "teleport"
PANELS = (("phi", "sharpness φ (raw, P eq. 13)"), ("phi_delta", "φ − L_train (change in loss)"),
          ("psi", "curvature ψ (k = 1, P eq. 14)"), ("train_loss", "training loss (reference)"))


def figure(result: dict, path: Path) -> None:
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.8))
    y = result["models"]["val_loss"]
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        c = result["correlations_with_val_loss"][key]
        sns.regplot(x=result["models"][key], y=y, ax=ax, scatter_kws={"s": 12}, line_kws={"lw": 1})
        ax.set_xlabel(label)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        ax.set_ylabel("validation loss")
        ax.set_title(f"Pearson {c['pearson']:.2f} [{c['pearson_ci'][0]:.2f}, {c['pearson_ci'][1]:.2f}]\n"
                     f"Spearman {c['spearman']:.2f}", fontsize=9)
    cfg, paper = result["config"], result["paper_table1"]
    fig.suptitle(f"E8 substitute: {result['dataset']} ({cfg['dims']}, {result['used']} models) in place of "
                 f"{paper['column']} — paper: φ {paper['phi_pearson']:+.3f}, ψ {paper['psi_pearson']:+.3f}",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(SETUPS), default="digits")
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--directions", type=int, default=200, help="|D| for φ (paper: 200)")
    ap.add_argument("--psi-form", choices=("sigma_inverse", "pinv"), default="sigma_inverse")
    ap.add_argument("--float32", action="store_true", help="train and measure φ in float32 (ψ stays float64)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="4 models, 1 epoch, 4 directions")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (PNG beside it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.models, args.epochs, args.directions = 4, 1, 4
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or (Path(tmp) if args.smoke else RESULTS) / f"e8_correlation_{args.dataset}.json"
        check_writable(out)
        result = run_correlation(args.dataset, args.models, args.epochs, args.seed, progress=not args.smoke,
                                 directions=args.directions, psi_form=args.psi_form,
                                 dtype=torch.float32 if args.float32 else torch.float64)
        result = {"experiment": "E8", "command": shlex.join(["python", "experiments/teleport_correlation.py",
                                                             *sys.argv[1:]]), **result}
        write_json(out, result)
        figure(result, out.with_suffix(".png"))
        summary = {k: {m: round(v[m], 3) for m in ("pearson", "spearman")}
                   for k, v in result["correlations_with_val_loss"].items()}
        print(f'{{"experiment": "E8", "dataset": "{result["dataset"]}", "json": "{out}", '
              f'"correlations": {summary}, "paper": {result["paper_table1"]}}}'.replace("'", '"'))


if __name__ == "__main__":
    main()
