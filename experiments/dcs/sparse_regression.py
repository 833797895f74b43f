"""DCS E1 (Fig. 3 left, appendix B.2; reference dcs.md §4.1, §7 E1, P12): rescaling symmetry makes SGD sparse
without weight decay.

Online linear regression, batch 1, plain SGD (no weight decay, no momentum), ``steps`` steps, loss
ℓ = ½(f(x) − y)²: x ~ N(0, I_d), y = (1/d) Σ_i x_i + ε, ε ~ N(0, ``noise_std``²) (the paper gives no variances;
these are the reference's [ours] settings).  Two models on the same data stream:

* vanilla f(x) = vᵀx, v₀ = u₀ ⊙ w₀ (the rescaled model's initial function);
* rescaled (Hadamard, spred) f(x) = (w ⊙ u)ᵀx, u₀, w₀ with independent random signs ±``init``.

The learning-rate sweep ``lrs`` runs as one batch along a leading axis.  Metric: the fraction of coordinates
of v (v = w ⊙ u for the rescaled model) with |v_i| < ``thresholds`` (1e-4; 1e-6 as in B.4) and the test MSE
σ² + ‖v − v*‖² (exact for x ~ N(0, I), so no test sample is drawn).  A run whose parameters leave 1e6 in norm
or become non-finite is marked diverged (step recorded), frozen at 0 and its metrics are NaN → null.  Vanilla
SGD is mean-square stable iff lr < 2/(d + 2) (≈ 0.0099 at d = 200), so vanilla diverges at the top of the
sweep: that is reported, not hidden.

The theory's critical learning rate (reference §3.1): at u_i = w_i = 0 with every other coordinate at
v* = 1/d, the (u_i, w_i) Hessian block is [[0, ξ], [ξ, 0]] with ξ = x_i r, r = −v* x_i − ε; its eigenvectors
(1, ±1) do not depend on x, so the linearised SGD of z₊ = u_i + w_i is z ← (1 − lr ξ) z exactly (Theorem 5),
E[ξ] = −v* (GD escapes), E[ξ²] = σ² + 3v*².  Eq. 5's second-order threshold is lr > 2v*/(σ² + 3v*²); the exact
threshold of the linearisation is the root of Λ(lr) = E log|1 − lr ξ| (2-D Gauss–Hermite quadrature).
Measured: the smallest lr whose mean sparse fraction exceeds 0.05 (onset) and the lr where it crosses 0.5
(linear interpolation).  Random draws: init signs ``make_generator(seed, 0)``, data ``make_generator(seed, 1)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from experiments.registry import Runner
from symdisc import make_generator
from symdisc.plotting import plt, save_figure, sns

MODELS = ("vanilla", "rescaled")
REFERENCE = {0.001: 0.0, 0.003: 0.29, 0.006: 0.51, 0.009: 0.695}  # dcs.md §7 E1 [ours], |v_i| < 1e-4, rescaled


def sgd(config: dict, seed: int) -> dict:
    """Both models over the lr sweep on one data stream: final v per model (L, d), sparsity traces, divergence."""
    d, thr, every = config["d"], config["thresholds"][0], config["record_every"]
    lr = torch.tensor(config["lrs"], dtype=torch.float64)
    L = lr.numel()
    g = make_generator(seed, 0)
    u0, w0 = (config["init"] * (2.0 * torch.randint(0, 2, (d,), generator=g) - 1).double() for _ in range(2))
    v = (u0 * w0).expand(L, d).clone()
    u, w = u0.expand(L, d).clone(), w0.expand(L, d).clone()
    rates = {m: lr.clone() for m in MODELS}                 # a diverged run's rate is set to 0 (frozen at 0)
    diverged = {m: [None] * L for m in MODELS}
    trace = {"step": [0], **{m: [[float((p.abs() < thr).double().mean())] * L] for m, p in (("vanilla", v),
                                                                                       ("rescaled", u * w))}}
    data = make_generator(seed, 1)
    done = 0
    while done < config["steps"]:
        n = min(every, config["steps"] - done)
        X = torch.randn(n, d, generator=data, dtype=torch.float64)
        Y = X.sum(1) / d + config["noise_std"] * torch.randn(n, generator=data, dtype=torch.float64)
        a, b = rates["vanilla"], rates["rescaled"]
        for x, y in zip(X, Y, strict=True):
            r = torch.mv(v, x).sub_(y)
            v.addr_(a * r, x, alpha=-1.0)                   # v ← v − lr r x
            G = torch.outer(b * (torch.mv(u * w, x).sub_(y)), x)
            gu, gw = G * w, G * u
            u.sub_(gu)
            w.sub_(gw)
        done += n
        for m, params in (("vanilla", (v,)), ("rescaled", (u, w))):
            bad = torch.zeros(L, dtype=torch.bool)
            for p in params:
                bad |= ~torch.isfinite(p).all(1) | (p.nan_to_num(1e300).norm(dim=1) > 1e6)
            for i in torch.nonzero(bad & (rates[m] > 0)).flatten().tolist():
                diverged[m][i] = done
                rates[m][i] = 0.0
                for p in params:
                    p[i] = 0.0
        trace["step"].append(done)
        for m, p in (("vanilla", v), ("rescaled", u * w)):
            trace[m].append([math.nan if diverged[m][i] else f for i, f in
                             enumerate((p.abs() < thr).double().mean(1).tolist())])
    return {"v": {"vanilla": v, "rescaled": u * w}, "diverged": diverged, "trace": trace}


def run(config: dict, seed: int) -> dict:
    out = sgd(config, seed)
    d, noise = config["d"], config["noise_std"]
    rows = {}
    for m in MODELS:
        v, dead = out["v"][m], out["diverged"][m]
        mse = (noise ** 2 + ((v - 1.0 / d) ** 2).sum(1)).tolist()
        fr = {f"frac_below_{t:g}": (v.abs() < t).double().mean(1).tolist() for t in config["thresholds"]}
        rows[m] = {"test_mse": [math.nan if dead[i] else x for i, x in enumerate(mse)],
                   **{k: [math.nan if dead[i] else x for i, x in enumerate(f)] for k, f in fr.items()},
                   "v_norm": [math.nan if dead[i] else x for i, x in enumerate(v.norm(dim=1).tolist())],
                   "diverged_at_step": dead}
    trace = {"step": out["trace"]["step"], **{m: [list(c) for c in zip(*out["trace"][m], strict=True)]
                                              for m in MODELS}}
    return {"lrs": config["lrs"], "models": rows, "sparsity_trace": trace}


def lyapunov(lr: float, vstar: float, sigma: float, nodes: int = 120) -> float:
    """Λ(lr) = E log|1 − lr ξ|, ξ = −(v* x² + σ x η), x, η ~ N(0, 1) independent (2-D Gauss–Hermite)."""
    z, wts = np.polynomial.hermite_e.hermegauss(nodes)
    wts = wts / math.sqrt(2 * math.pi)
    x, e = np.meshgrid(z, z, indexing="ij")
    val = np.log(np.abs(1.0 + lr * (vstar * x ** 2 + sigma * x * e)) + 1e-300)
    return float(wts @ val @ wts)


def theory(config: dict) -> dict:
    """Eq. 5's critical lr, the exact root of the linearised Lyapunov exponent, and vanilla's stability edge."""
    vstar, sigma = 1.0 / config["d"], config["noise_std"]
    eq5 = 2 * vstar / (sigma ** 2 + 3 * vstar ** 2)
    lo, hi = eq5 / 4, 4 * eq5                               # Λ > 0 at lo, < 0 at hi (checked)
    if not lyapunov(lo, vstar, sigma) > 0 > lyapunov(hi, vstar, sigma):
        raise RuntimeError("the Lyapunov exponent does not change sign in [eq5/4, 4·eq5]")
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if lyapunov(mid, vstar, sigma) > 0 else (lo, mid)
    return {"lr_crit_eq5": eq5, "lr_crit_lyapunov": float(0.5 * (lo + hi)),
            "vanilla_stability_edge": 2 / (config["d"] + 2)}


def _stats(values: list) -> dict:
    finite = [x for x in values if x is not None and math.isfinite(x)]
    return {"mean": float(np.mean(finite)) if finite else None, "std": float(np.std(finite)) if finite else None,
            "finite_seeds": len(finite)}


def transition(lrs: list[float], frac: list) -> dict:
    """Onset (first lr with mean fraction > 0.05) and the 0.5 crossing (linear interpolation), None if absent."""
    onset = next((lr for lr, f in zip(lrs, frac, strict=True) if f is not None and f > 0.05), None)
    half = None
    for i in range(len(lrs) - 1):
        (l0, f0), (l1, f1) = (lrs[i], frac[i]), (lrs[i + 1], frac[i + 1])
        if f0 is not None and f1 is not None and f0 < 0.5 <= f1:
            half = l0 + (0.5 - f0) * (l1 - l0) / (f1 - f0)
            break
    return {"onset_lr": onset, "half_lr": half}


def summarize(results: list[dict], config: dict) -> dict:
    lrs, key = config["lrs"], f"frac_below_{config['thresholds'][0]:g}"
    table = {}
    for m in MODELS:
        table[m] = {k: [_stats([r["models"][m][k][i] for r in results]) for i in range(len(lrs))]
                    for k in results[0]["models"][m] if k != "diverged_at_step"}
        table[m]["diverged_seeds"] = [sum(r["models"][m]["diverged_at_step"][i] is not None for r in results)
                                      for i in range(len(lrs))]
    frac = [s["mean"] for s in table["rescaled"][key]]
    van = [s["mean"] for s in table["vanilla"][key]]
    return {"lrs": lrs, "by_model": table, "theory": theory(config),
            "measured_rescaled": transition(lrs, frac),
            "vanilla_max_sparse_fraction": max((x for x in van if x is not None), default=None),
            "rescaled_sparsity_nondecreasing": all(b >= a - 0.02 for a, b in zip(frac, frac[1:], strict=False)),
            "seeds": len(results)}


def figure(document: dict, path: Path) -> None:
    """(a) sparse fraction vs lr with the theory's thresholds, (b) excess test MSE vs lr, (c) sparsity vs step."""
    cfg, s = document["config"], document["summary"]
    lrs, t0 = cfg["lrs"], cfg["thresholds"][0]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 3, figsize=(16, 6.2))
    colors = dict(zip(MODELS, sns.color_palette("colorblind", 2), strict=True))
    ax = axes[0]
    for m in MODELS:
        for t, ls in zip(cfg["thresholds"], ("-", "--"), strict=False):
            st = s["by_model"][m][f"frac_below_{t:g}"]
            ax.errorbar(lrs, [x["mean"] if x["mean"] is not None else np.nan for x in st],
                        yerr=[x["std"] if x["std"] is not None else np.nan for x in st], color=colors[m], ls=ls,
                        marker="o" if ls == "-" else None, ms=4, capsize=2, label=f"{m}, |v_i| < {t:g}")
    ax.plot(list(REFERENCE), list(REFERENCE.values()), "kx", ms=8, mew=2, label="reference [ours] (rescaled, 1e-4)")
    th = s["theory"]
    ax.axvline(th["lr_crit_eq5"], color="C3", ls="--", lw=1.2, label=f"eq. 5 critical lr = {th['lr_crit_eq5']:.4f}")
    ax.axvline(th["lr_crit_lyapunov"], color="C3", ls=":", lw=1.2,
               label=f"Λ = 0 (linearised) = {th['lr_crit_lyapunov']:.4f}")
    ax.axvspan(th["vanilla_stability_edge"], max(lrs) * 1.03, color="grey", alpha=0.15,
               label=f"vanilla diverges (lr ≥ 2/(d+2) = {th['vanilla_stability_edge']:.4f})")
    ax.set_xlabel("learning rate λ")
    ax.set_ylabel("fraction of sparse coordinates")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Sparsity after {cfg['steps']:,} SGD steps (d = {cfg['d']}, {s['seeds']} seeds)", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax = axes[1]
    top = 1e2
    for m in MODELS:
        y = np.array([x["mean"] - cfg["noise_std"] ** 2 if x["mean"] is not None else np.nan
                      for x in s["by_model"][m]["test_mse"]])
        ax.plot(lrs, np.where(y > top, np.nan, y), "o-", color=colors[m], ms=4, label=m)
        for lr, v in zip(lrs, y, strict=True):
            if v > top:
                ax.plot(lr, top / 2, "^", color=colors[m], ms=8)
                ax.annotate(f"{v:.0e}", (lr, top / 2), textcoords="offset points", xytext=(-8, -14), fontsize=7,
                            ha="right", color=colors[m])
    ax.axhline(1.0 / cfg["d"], color="k", ls=":", lw=1, label="‖v*‖² = 1/d (the zero predictor)")
    ax.axvspan(th["vanilla_stability_edge"], max(lrs) * 1.03, color="grey", alpha=0.15)
    ax.set_yscale("log")
    ax.set_ylim(top=top)
    ax.set_xlabel("learning rate λ")
    ax.set_ylabel("excess test MSE ‖v − v*‖² (mean over seeds)")
    ax.set_title("Test error (vanilla: ▲ = off scale, missing = diverged)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax = axes[2]
    tr = document["results"][0]["sparsity_trace"]
    pal = sns.color_palette("viridis", len(lrs))
    for i, lr in enumerate(lrs):
        ax.plot(tr["step"], tr["rescaled"][i], color=pal[i], label=f"λ = {lr:g}")
    ax.set_xlabel("SGD step")
    ax.set_ylabel(f"fraction |v_i| < {t0:g} (rescaled)")
    ax.set_title("Rescaled model, seed 0: sparsity over training", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4)
    fig.tight_layout()
    save_figure(fig, path)


DEFAULTS = {"d": 200, "steps": 100_000, "lrs": [round(0.001 * k, 3) for k in range(1, 13)], "noise_std": 1.0,
            "init": 0.1, "thresholds": [1e-4, 1e-6], "record_every": 2000}
SMOKE = {"steps": 20_000, "lrs": [0.001, 0.009], "record_every": 5000}
RUNNERS = [Runner("dcs_sparse_regression", "DCS E1 / Fig. 3 left: SGD sparsity of vᵀx vs (w ⊙ u)ᵀx over the "
                  "learning rate, no weight decay", run, figure, DEFAULTS, SMOKE, summarize, default_seeds=5,
                  group="dcs", digits=6)]
