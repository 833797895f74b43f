"""Symmetry-aware Ridge Rider against plain RR (ridge_rider.md §6; docs/ridge.md): distinct solutions found per
ride and per Hessian-vector product, with and without each design.

Cases (each a fixed batch, float64, exact RR with the dense eigensolver):

* ``linear``       the 2-layer linear net 3-3-3 (mse, 20 Gaussian samples) at the origin, a fixed point of its
                   GL(3) — the reference's test bed (§6.2 (a), §6.3 (b));
* ``digits-linear`` a 64-8-10 linear MLP without biases, cross-entropy on 256 digits, at θ = 0: a fixed point of
                   its GL(8) (k = 64) and of the head's softmax translation;
* ``digits-relu``  a 64-8-10 ReLU MLP with cross-entropy on 256 digits, θ₀ = 0.05·θ_init; known symmetries: the
                   hidden rescalings and the head's softmax translation (k = 17);
* ``digits-tanh``  the same with tanh: only the softmax translation (k = 9), whose fields are constant, so its
                   tangents are zero modes of H everywhere.

Variants: ``plain`` (no symmetry), ``B`` / ``A`` / ``C`` (one design each), ``ABC`` (all), ``ABC-project-all``
(design B projecting everywhere, the reference's literal design).  Every leaf is polished by ``finish_steps``
of gradient descent.  Distinct solutions are end points whose functions differ: outputs (mse) or softmax
probabilities (cross-entropy) on the case's batch more than ``function_tol`` apart (relative) — orbit-related
points of an output- or loss-preserving symmetry are one solution.  Intrinsically one run per case.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

import symdisc
from experiments.registry import Runner
from symdisc.data import digits
from symdisc.errors import InputError
from symdisc.plotting import plt, save_figure, sns
from symdisc.ridge import RidgeRider, RRConfig
from symdisc.ridge.targets import resolve_symmetry

VARIANTS = {"plain": None, "B": dict(project=True, adapt=False, merge=False),
            "A": dict(project=False, adapt=True, merge=False), "C": dict(project=False, adapt=False, merge=True),
            "ABC": dict(project=True, adapt=True, merge=True),
            "ABC-project-all": dict(project=True, adapt=True, merge=True, project_everywhere=True)}


def _case(name: str):
    """(arch, loss, start θ, batch X, function readout)."""
    if name == "linear":
        arch = symdisc.zoo.get("mlp", dims="3,3,3", act="linear", bias=False).to(dtype=torch.float64)
        X, Y = arch.sample_data(20, symdisc.make_generator(0))
        return arch, X, Y, torch.zeros(arch.num_params, dtype=torch.float64), lambda th: arch.forward(th, X)
    act = {"digits-relu": "relu", "digits-tanh": "tanh", "digits-linear": "linear"}.get(name)
    if act is None:
        raise InputError(f"unknown case {name!r}; choose linear, digits-linear, digits-relu, digits-tanh")
    split = digits().to(dtype=torch.float64)
    X, Y = split.X_train[:256], split.y_train[:256]
    linear = act == "linear"
    arch = symdisc.zoo.get("mlp", dims="64,8,10", act=act, bias=not linear,
                           loss="cross_entropy").to(dtype=torch.float64)
    theta = (0.0 if linear else 0.05) * arch.sample_params(symdisc.make_generator(0, 0))
    return arch, X, Y, theta, lambda th: arch.forward(th, X).softmax(-1)


def distinct(readouts: list[torch.Tensor], tol: float) -> int:
    """Greedy count of functions more than ``tol`` (relative Frobenius) from every one counted before."""
    kept: list[torch.Tensor] = []
    for r in readouts:
        if all(float((r - k).norm()) > tol * max(float(k.norm()), 1e-12) for k in kept):
            kept.append(r)
    return len(kept)


def run(config: dict, seed: int) -> dict:
    unknown = [v for v in config["variants"] if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant {unknown[0]!r}; choose {', '.join(VARIANTS)}")
    out = []
    for name in config["cases"]:
        arch, X, Y, theta, readout = _case(name)
        loss = lambda th, arch=arch, X=X, Y=Y: arch.batch_loss(th, X, Y)
        sym = resolve_symmetry(arch, "known")
        for variant in config["variants"]:
            opts = VARIANTS[variant]
            cfg = RRConfig(**{**config["rr"][name], **(opts or {})})
            rr = RidgeRider(loss, theta, cfg, symmetry=None if opts is None else sym,
                            generator=torch.Generator().manual_seed(seed))
            result = rr.run()
            ends = result.archive.ends()
            with torch.no_grad():
                reads = [readout(n.theta_end) for n in sorted(ends, key=lambda n: n.loss_end)]
            s = result.summary()
            n_distinct = distinct(reads, config["function_tol"])
            out.append({"case": name, "variant": variant, "symmetry": sym.name, "num_params": arch.num_params,
                        "roots": sum(n.parent is None for n in result.archive.nodes), **s,
                        "distinct_functions": n_distinct,
                        "loss_levels": sorted({round(n.loss_end, 4) for n in ends}),
                        "distinct_per_ride": n_distinct / max(s["rides"], 1),
                        "distinct_per_1k_hvps": 1000 * n_distinct / max(s["hvps"], 1)})
    return {"rows": out}


def summarize(results: list[dict], config: dict) -> dict:
    return {f"{r['case']}/{r['variant']}": {k: r[k] for k in ("roots", "rides", "hvps", "distinct_functions",
                                                               "best_loss", "seconds")}
            for r in results[0]["rows"]}


def figure(document: dict, path: Path) -> None:
    """Distinct solutions per ride and per 1000 HVPs, by case and variant."""
    df = pd.DataFrame(document["results"][0]["rows"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (col, title) in zip(axes, (("rides", "rides (branches ridden)"),
                                       ("distinct_per_ride", "distinct solutions per ride"),
                                       ("distinct_per_1k_hvps", "distinct solutions per 1000 HVPs")), strict=True):
        sns.barplot(data=df, x="case", y=col, hue="variant", ax=ax)
        ax.set_title(title)
        ax.set_ylabel("")
        if ax is not axes[-1]:
            ax.get_legend().remove()
    axes[-1].legend(fontsize=7)
    fig.suptitle("Symmetry-aware Ridge Rider (designs A, B, C) against plain RR")
    fig.tight_layout()
    save_figure(fig, path)


def markdown(document: dict) -> str:
    rows = document["results"][0]["rows"]
    lines = ["| case | variant | roots | rides | HVPs | distinct functions | per ride | per 1000 HVPs | best loss |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['variant']} | {r['roots']} | {r['rides']} | {r['hvps']} | "
                     f"{r['distinct_functions']} | {r['distinct_per_ride']:.3f} | {r['distinct_per_1k_hvps']:.3f} | "
                     f"{r['best_loss']:.4f} |")
    return "\n".join(lines)


_LINEAR = dict(n_ridges=9, max_depth=2, budget=4000, finish_steps=200, finish_lr=0.2, eigensolver="dense")
_DIGITS = dict(n_ridges=4, max_depth=2, budget=300, finish_steps=100, finish_lr=0.5, eigensolver="dense",
               max_rides=60)
RUNNERS = [Runner("rr_symmetry", "symmetry-aware RR (designs A, B, C) vs plain RR: distinct solutions per ride / HVP",
                  run, figure,
                  {"cases": ["linear", "digits-linear", "digits-relu", "digits-tanh"], "variants": list(VARIANTS),
                   "function_tol": 1e-3, "rr": {"linear": _LINEAR, "digits-linear": _DIGITS, "digits-relu": _DIGITS,
                                                "digits-tanh": _DIGITS}},
                  {"cases": ["linear"], "variants": ["plain", "ABC"],
                   "rr": {"linear": {**_LINEAR, "max_depth": 1}, "digits-linear": _DIGITS, "digits-relu": _DIGITS,
                          "digits-tanh": _DIGITS}},
                  summarize, group="ridge")]
