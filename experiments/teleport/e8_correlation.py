"""E8 (P §4.3, F.3, Table 1; teleport.md §2.4) on substitutes (``experiments.teleport.correlation``):
correlation of sharpness φ and curvature ψ with validation loss over ``models`` MLPs that differ only in
their initialisation.  Intrinsically one run: the seed is the study's base seed (the committed runs: 0).

Config: ``dataset`` (digits for MNIST | synthetic for CIFAR-10), ``models``, ``epochs``, ``directions`` (|D|
of φ), ``psi_form`` (sigma_inverse | pinv), ``float32`` (train and measure φ in float32; ψ stays float64),
``n_boot``, ``device``.  Result file: e8_correlation_<dataset>.json.
"""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.registry import Runner
from experiments.teleport.correlation import run_correlation
from symdisc.plotting import plt, save_figure, sns

PANELS = (("phi", "sharpness φ (raw, P eq. 13)"), ("phi_delta", "φ − L_train (change in loss)"),
          ("psi", "curvature ψ (k = 1, P eq. 14)"), ("train_loss", "training loss (reference)"))


def run(config: dict, seed: int) -> dict:
    """Per-model φ, ψ, losses; Pearson / Spearman r with validation loss and bootstrap CIs; the paper's column."""
    result = run_correlation(config["dataset"], config["models"], config["epochs"], seed, config["device"],
                             progress=True, directions=config["directions"], psi_form=config["psi_form"],
                             dtype=torch.float32 if config["float32"] else torch.float64, n_boot=config["n_boot"])
    return {"experiment": "E8", **result}


def summarize(results: list[dict], config: dict) -> dict:
    r = results[0]
    return {"dataset": r["dataset"], "substitute_for": r["substitute_for"], "used": r["used"],
            "correlations": {k: {m: v[m] for m in ("pearson", "pearson_ci", "spearman")}
                             for k, v in r["correlations_with_val_loss"].items()},
            "paper_table1": r["paper_table1"]}


def figure(document: dict, path: Path) -> None:
    """Scatter of validation loss against φ, φ − L, ψ and the training loss, with the correlations."""
    result = document["results"][0]
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


RUNNERS = [Runner(
    "e8_correlation", "E8 (P Table 1): correlation of sharpness φ and curvature ψ with validation loss (substitutes)",
    run, figure, {"dataset": "digits", "models": 100, "epochs": 40, "directions": 200, "psi_form": "sigma_inverse",
                  "float32": False, "n_boot": 2000, "device": "cpu"},
    {"models": 4, "epochs": 1, "directions": 4, "n_boot": 50}, summarize,
    stem=lambda config: f"e8_correlation_{config['dataset']}")]
