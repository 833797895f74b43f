"""DCS against scikit-learn's ``Lasso`` on the same problem (dcs.md D4–D5, P7–P9; issue 13 item 4): ``dcs_lasso``.

The problem is ``symdisc.dcs.lasso.lasso_problem`` (X ∈ ℝ^{N×d} Gaussian, y = Xθ* + 0.5ε, θ* on 8 random
coordinates; the run's seed draws it), L(θ) = ‖y − Xθ‖² / (2N).  Three parts, one seed each:

* ``path``       DCS with P = I (spred; ``fit_dcs``: L-BFGS from the OLS fit with the library's default start,
                 pairs spread along their rescaling orbit so signs are free) against
                 ``Lasso(alpha=2α, fit_intercept=False, tol=1e-12)`` on ``n_alphas`` log-spaced α from ``alpha_min``
                 to α_max = ‖Xᵀy‖_∞ / (2N) (every coefficient zero): the relative gap of F(θ) = L(θ) + 2α‖θ‖₁,
                 both evaluated by the same float64 formula ((F_DCS − F_sk) / F_sk; negative: DCS is the lower),
                 max |θ_DCS − θ_sk|, nonzero counts (|θ_i| > 1e-6), whether the supports match, and the lasso
                 KKT residual of each solution.  A second DCS fit, ``balanced``, runs the same L-BFGS from the
                 balanced start w = sign(θ)√|θ|, u = √|θ| (``init="balanced"``), i.e. on the lines w = ±u, which
                 the swap (w, u) ↦ (±u, ±w) — another mirror of w·u and of w² + u² — leaves invariant; a gradient
                 method started there never leaves them, so no coordinate can change its sign, and where the lasso
                 solution has the sign opposite to the OLS start (``sign_changes_needed``) it ends at the saddle
                 θ_i = 0 instead.  (This arm found the lock; the library's default start was changed after it.)
* ``critical``   the mask M = the first ``masked`` coordinates (θ_M = w ⊙ u, the rest free):
                 α_crit = ‖∇_M L(θ̂)‖_∞ / 2 with θ̂ the least-squares fit at θ_M = 0 (``critical_alpha``); DCS at
                 ``factors`` × α_crit, max |θ_M| (D5: exactly 0 above α_crit, not below).
* ``stochastic`` what a user of a stochastic optimizer gets: ``DCSOptimizer`` around torch.optim.SGD / Adam (no
                 L-BFGS), ``stoch_steps`` steps at α = ``stoch_alpha`` from the same (spread) OLS start; each arm
                 of ``stoch_arms`` is (optimizer, batch: null = full batch or the size of with-replacement
                 mini-batches drawn from the seed, lr schedule: constant or cosine decay to 0), run at each lr of
                 ``stoch_lrs`` (every lr is reported; the figure draws the best final gap of each arm).  Gap,
                 nonzero count and support agreement with scikit-learn at ``checkpoints``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from experiments.registry import Runner
from symdisc import make_generator
from symdisc.dcs import DCS, DCSOptimizer, Sparse
from symdisc.dcs.lasso import critical_alpha, fit_dcs, lasso_problem, least_squares, sklearn_lasso
from symdisc.linalg import lstsq
from symdisc.plotting import plt, save_figure, sns

NONZERO = 1e-6  # |θ_i| above this counts as nonzero (the paper's B.4 threshold)


def objective(X, y, theta: torch.Tensor, lam: float) -> float:
    """F(θ) = L(θ) + λ‖θ‖₁ in float64 (scikit-learn's Lasso objective)."""
    return float(least_squares(X, y, theta) + lam * theta.abs().sum())


def kkt_residual(X, y, theta: torch.Tensor, lam: float, mask: torch.Tensor) -> float:
    """max violation of the (masked) lasso optimality conditions: ∇_i L = 0 off M; on M ∇_i L = −λ sign θ_i
    where θ_i ≠ 0 (|θ_i| > 1e-6) and |∇_i L| ≤ λ where θ_i = 0."""
    g = -(X.T @ (y - X @ theta)) / X.shape[0]
    on = theta.abs() > NONZERO
    r = torch.where(on, (g + lam * torch.sign(theta)).abs(), (g.abs() - lam).clamp(min=0))
    return float(torch.where(mask, r, g.abs()).max())


def compare(X, y, theta: torch.Tensor, theta_sk: torch.Tensor, lam: float, seconds: float) -> dict:
    """One DCS solution against scikit-learn's at λ = 2α."""
    f, f_sk = objective(X, y, theta, lam), objective(X, y, theta_sk, lam)
    nz, nz_sk = theta.abs() > NONZERO, theta_sk.abs() > NONZERO
    return {"objective": f, "relative_gap": (f - f_sk) / abs(f_sk),
            "max_coef_difference": float((theta - theta_sk).abs().max()), "nonzero": int(nz.sum()),
            "support_match": bool(torch.equal(nz, nz_sk)),
            "kkt": kkt_residual(X, y, theta, lam, torch.ones_like(nz)), "seconds": seconds}


def path(X, y, config: dict, seed: int) -> dict:
    """Both DCS fits (``fit_dcs`` from the spread start, the seed's draw; and from the balanced start) against
    scikit-learn on the α grid.
    ``sign_changes_needed``: coordinates where the lasso solution is nonzero with the sign opposite to the OLS
    start — the balanced start keeps each pair on w = ±u, a line the swap mirror (w, u) ↦ (±u, ±w) leaves
    invariant, so no gradient method started there can change a sign."""
    n, d = X.shape
    alpha_max = float((X.T @ y).abs().max()) / (2 * n)
    alphas = torch.logspace(math.log10(config["alpha_min"]), math.log10(alpha_max), config["n_alphas"],
                            dtype=torch.float64).tolist()
    theta0 = lstsq(X, y.unsqueeze(1)).squeeze(1)
    rows = []
    for alpha in alphas:
        lam = 2 * alpha
        t = time.perf_counter()
        th_sk = sklearn_lasso(X, y, lam)
        t_sk = time.perf_counter() - t
        t = time.perf_counter()
        th_dcs = fit_dcs(X, y, alpha, seed=seed)
        t_dcs = time.perf_counter() - t
        t = time.perf_counter()
        th_bal = fit_dcs(X, y, alpha, init="balanced")
        t_bal = time.perf_counter() - t
        rows.append({"alpha": alpha, "lambda": lam, "objective_sklearn": objective(X, y, th_sk, lam),
                     "nonzero_sklearn": int((th_sk.abs() > NONZERO).sum()),
                     "kkt_sklearn": kkt_residual(X, y, th_sk, lam, torch.ones(d, dtype=torch.bool)),
                     "seconds_sklearn": t_sk,
                     "sign_changes_needed": int(((th_sk.abs() > NONZERO) & (th_sk * theta0 < 0)).sum()),
                     "dcs": compare(X, y, th_dcs, th_sk, lam, t_dcs),
                     "balanced": compare(X, y, th_bal, th_sk, lam, t_bal),
                     "coef_dcs": th_dcs.tolist(), "coef_balanced": th_bal.tolist(), "coef_sklearn": th_sk.tolist()})
    return {"alpha_max": alpha_max, "rows": rows}


def critical(X, y, config: dict, seed: int) -> dict:
    d = X.shape[1]
    mask = torch.zeros(d, dtype=torch.bool)
    mask[: config["masked"]] = True
    a_crit = critical_alpha(X, y, mask)
    rows = []
    for factor in config["factors"]:
        alpha = factor * a_crit
        th = fit_dcs(X, y, alpha, mask, seed=seed)
        rows.append({"factor": factor, "alpha": alpha, "masked_max": float(th[mask].abs().max()),
                     "masked_nonzero": int((th[mask].abs() > NONZERO).sum()),
                     "kkt": kkt_residual(X, y, th, 2 * alpha, mask)})
    return {"masked": config["masked"], "alpha_crit": a_crit, "rows": rows}


def stochastic_run(X, y, theta0, theta_sk, f_sk: float, arm: dict, lr: float, config: dict, seed: int) -> dict:
    """One ``DCSOptimizer`` run (see the module docstring); ``theta_sk`` gives the support to compare with."""
    alpha, steps, batch = config["stoch_alpha"], config["stoch_steps"], arm["batch"]
    dcs = DCS.flat(theta0, Sparse(X.shape[1]), alpha, seed=seed)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[arm["optimizer"]]
    inner = cls(dcs.model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(inner, steps) if arm["schedule"] == "cosine" else None
    opt = DCSOptimizer(inner, dcs)
    g = make_generator(seed, 1)  # the same mini-batches for every arm and lr of a seed
    checkpoints, trace = set(config["checkpoints"]) | {steps}, []
    support = theta_sk.abs() > NONZERO
    t = time.perf_counter()
    for k in range(1, steps + 1):
        if batch:
            idx = torch.randint(0, X.shape[0], (batch,), generator=g)
            Xb, yb = X[idx], y[idx]
        else:
            Xb, yb = X, y
        opt.zero_grad()
        least_squares(Xb, yb, dcs.theta_flat()).backward()
        opt.step()
        if sched is not None:
            sched.step()
        if k in checkpoints:
            th = dcs.theta_flat().detach()
            f = objective(X, y, th, 2 * alpha)
            trace.append({"step": k, "gap": (f - f_sk) / abs(f_sk) if math.isfinite(f) else float("inf"),
                          "nonzero": int((th.abs() > NONZERO).sum()),
                          "support_match": bool(torch.equal(th.abs() > NONZERO, support))})
    last = trace[-1]
    return {**arm, "lr": lr, "trace": trace, "final_gap": last["gap"], "final_nonzero": last["nonzero"],
            "final_support_match": last["support_match"], "seconds": time.perf_counter() - t}


def stochastic(X, y, config: dict, seed: int) -> dict:
    lam = 2 * config["stoch_alpha"]
    theta0 = lstsq(X, y.unsqueeze(1)).squeeze(1)
    th_sk = sklearn_lasso(X, y, lam)
    f_sk = objective(X, y, th_sk, lam)
    runs = []
    for opt_name, batch, schedule in config["stoch_arms"]:
        arm = {"optimizer": opt_name, "batch": batch, "schedule": schedule}
        for lr in config["stoch_lrs"][opt_name]:
            runs.append(stochastic_run(X, y, theta0, th_sk, f_sk, arm, lr, config, seed))
    return {"alpha": config["stoch_alpha"], "objective_sklearn": f_sk, "nonzero_sklearn": int((th_sk.abs() >
                                                                                                NONZERO).sum()),
            "runs": runs}


def run(config: dict, seed: int) -> dict:
    X, y = lasso_problem(config["n_samples"], config["n_features"], seed, config["noise"], config["support"])
    out = {"seed": seed}
    for name, part in (("path", lambda: path(X, y, config, seed)), ("critical", lambda: critical(X, y, config, seed)),
                       ("stochastic", lambda: stochastic(X, y, config, seed))):
        t = time.perf_counter()
        out[name] = part()
        out[name]["seconds"] = time.perf_counter() - t
    return out


def _arm_label(run: dict) -> str:
    batch = "full batch" if not run["batch"] else f"batch {run['batch']}"
    return f"{run['optimizer']}, {batch}, {run['schedule']}"


def summarize(results: list[dict], config: dict) -> dict:
    """Worst cases over seeds: path gaps, coefficient differences, support agreement of both DCS fits; the D5
    table per factor;
    per stochastic arm and lr the final gaps."""
    rows = [r for res in results for r in res["path"]["rows"]]
    crit = {}
    for i, factor in enumerate(config["factors"]):
        vals = [res["critical"]["rows"][i] for res in results]
        crit[str(factor)] = {"masked_max_max": max(v["masked_max"] for v in vals),
                             "masked_max_min": min(v["masked_max"] for v in vals),
                             "masked_nonzero": [v["masked_nonzero"] for v in vals],
                             "kkt_max": max(v["kkt"] for v in vals)}
    stoch: dict = {}
    for res in results:
        for r in res["stochastic"]["runs"]:
            row = stoch.setdefault(_arm_label(r), {}).setdefault(str(r["lr"]), {"final_gap": [], "final_nonzero": [],
                                                                                 "support_match": []})
            row["final_gap"].append(r["final_gap"])
            row["final_nonzero"].append(r["final_nonzero"])
            row["support_match"].append(r["final_support_match"])
    variants = {}
    for v in ("dcs", "balanced"):
        variants[v] = {"max_abs_relative_gap": max(abs(r[v]["relative_gap"]) for r in rows),
                       "max_coef_difference": max(r[v]["max_coef_difference"] for r in rows),
                       "fits_gap_above_1e-8": sum(abs(r[v]["relative_gap"]) > 1e-8 for r in rows),
                       "support_mismatches": sum(not r[v]["support_match"] for r in rows),
                       "max_kkt": max(r[v]["kkt"] for r in rows),
                       "seconds": sum(r[v]["seconds"] for r in rows)}
    return {"path_fits": len(rows), "path": variants,
            "path_fits_needing_a_sign_change": sum(r["sign_changes_needed"] > 0 for r in rows),
            "path_max_kkt_sklearn": max(r["kkt_sklearn"] for r in rows),
            "alpha_crit": [res["critical"]["alpha_crit"] for res in results], "critical": crit,
            "stochastic_alpha": config["stoch_alpha"], "stochastic_steps": config["stoch_steps"], "stochastic": stoch}


def figure(document: dict, path_: Path) -> None:
    """(a) the coefficient path of seed 0, ``fit_dcs`` lines and scikit-learn markers; (b) |relative gap| and
    max coefficient difference against α of both DCS fits, all seeds; (c) max |θ_M| against α / α_crit; (d) the
    stochastic optimizers' gap against steps (best lr of each arm, seed 0)."""
    res = document["results"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, 2, figsize=(14, 12))
    ax = axes[0, 0]
    r0 = res[0]["path"]["rows"]
    alphas = [r["alpha"] for r in r0]
    dcs, sk = torch.tensor([r["coef_dcs"] for r in r0]), torch.tensor([r["coef_sklearn"] for r in r0])
    active = (sk.abs() > NONZERO).any(0) | (dcs.abs() > NONZERO).any(0)
    colors = sns.color_palette("tab10", int(active.sum()))
    c_iter = iter(colors)
    for j in range(dcs.shape[1]):
        c = next(c_iter) if active[j] else "lightgrey"
        ax.plot(alphas, dcs[:, j], "-", color=c, lw=1.5 if active[j] else 0.7)
        ax.plot(alphas, sk[:, j], "x", color=c, ms=6 if active[j] else 3)
    ax.plot([], [], "k-", label="DCS (P = I, L-BFGS)")
    ax.plot([], [], "kx", label="scikit-learn Lasso(alpha = 2α)")
    ax.axvline(res[0]["path"]["alpha_max"], color="k", ls=":", lw=1, label="α_max (all zero)")
    ax.set_xscale("log")
    ax.set_xlabel("α (DCS penalty; lasso λ = 2α)")
    ax.set_ylabel("coefficient θ_i")
    ax.set_title("regularisation path (seed 0; grey: never nonzero)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    ax = axes[0, 1]
    floor = 1e-17
    names = {"dcs": ("fit_dcs (default spread start)", "C0", "o"),
             "balanced": ("balanced start (signs locked)", "C2", "^")}
    for i, r in enumerate(res):
        rows = r["path"]["rows"]
        a = [x["alpha"] for x in rows]
        for v, (label, color, marker) in names.items():
            ax.plot(a, [max(abs(x[v]["relative_gap"]), floor) for x in rows], "-", marker=marker, color=color, ms=4,
                    lw=1, label=f"{label}: |relative objective gap|" if i == 0 else None)
            ax.plot(a, [max(x[v]["max_coef_difference"], floor) for x in rows], ":", marker=marker, color=color,
                    ms=3, lw=1, mfc="none", label=f"{label}: max |θ − θ_sklearn|" if i == 0 else None)
        flips = [x for x in rows if x["sign_changes_needed"]]
        first = flips and not any(x["sign_changes_needed"] for r_ in res[:i] for x in r_["path"]["rows"])
        ax.plot([x["alpha"] for x in flips], [max(abs(x["balanced"]["relative_gap"]), floor) for x in flips], "o",
                ms=11, mfc="none", mec="red", label="lasso needs a sign change from the OLS start" if first else None)
    ax.axhline(1e-5, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("α")
    ax.set_title(f"DCS vs scikit-learn, {len(res)} problems (floor {floor:g} = exact; dashed: 1e-5)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    ax = axes[1, 0]
    positive = [x["masked_max"] for r in res for x in r["critical"]["rows"] if x["masked_max"] > 0]
    floor = min(positive, default=1.0) / 100
    for r in res:
        rows = r["critical"]["rows"]
        ax.plot([x["factor"] for x in rows], [max(x["masked_max"], floor) for x in rows], "o-", ms=5,
                label=f"seed {r['seed']} (α_crit = {r['critical']['alpha_crit']:.3g})")
    ax.axvline(1.0, color="k", ls="--", lw=1)
    ax.axhline(NONZERO, color="grey", ls=":", lw=1)
    ax.text(1.02, 1e-3, "α = α_crit", fontsize=8)
    ax.text(0.52, NONZERO * 3, "1e-6 (nonzero threshold)", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_xticks([x["factor"] for x in res[0]["critical"]["rows"]], [f"{x['factor']:g}" for x in
                                                                      res[0]["critical"]["rows"]], rotation=45)
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_ylim(floor / 10, 100)
    ax.set_xlabel("α / α_crit")
    ax.set_ylabel(f"max |θ_M|, M = the first {res[0]['critical']['masked']} coordinates (0: at the bottom)")
    ax.set_title("D5: the whole masked block is zero iff 2α ≥ ‖∇_M L(θ̂)‖_∞ (DCS, L-BFGS)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3)
    ax = axes[1, 1]
    best: dict = {}
    gap = lambda g: math.inf if g is None else abs(g)  # a diverged run's gap is written as null
    for r in res[0]["stochastic"]["runs"]:
        key = _arm_label(r)
        if key not in best or gap(r["final_gap"]) < gap(best[key]["final_gap"]):
            best[key] = r
    for i, (key, r) in enumerate(best.items()):
        ax.plot([p["step"] for p in r["trace"]], [max(gap(p["gap"]), 1e-17) for p in r["trace"]], marker="o", ms=3,
                color=f"C{i}", ls="-" if r["optimizer"] == "adam" else "--",
                label=f"{key}, lr {r['lr']:g} (final nonzero {r['final_nonzero']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("|relative objective gap| to scikit-learn")
    st = res[0]["stochastic"]
    ax.set_title(f"DCSOptimizer on SGD / Adam, α = {st['alpha']:g}, seed 0, best lr per arm\n"
                 f"(scikit-learn's lasso has {st['nonzero_sklearn']} nonzero)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.tight_layout()
    save_figure(fig, path_)


DEFAULTS = {"n_samples": 200, "n_features": 40, "support": 8, "noise": 0.5, "alpha_min": 1e-3, "n_alphas": 16,
            "masked": 30, "factors": [0.5, 0.8, 0.95, 1.05, 1.2, 2.0],
            "stoch_alpha": 0.05, "stoch_steps": 5000,
            "stoch_arms": [["sgd", None, "constant"], ["adam", None, "constant"], ["sgd", 20, "constant"],
                           ["adam", 20, "constant"], ["sgd", 20, "cosine"], ["adam", 20, "cosine"]],
            "stoch_lrs": {"sgd": [0.03, 0.1, 0.3], "adam": [1e-3, 3e-3, 1e-2]},
            "checkpoints": [1, 3, 10, 30, 100, 300, 1000, 2000, 3000, 5000, 10000, 20000]}
SMOKE = {"alpha_min": 0.01, "n_alphas": 4, "factors": [0.8, 1.2], "stoch_steps": 300,
         "stoch_arms": [["sgd", None, "constant"], ["adam", 20, "cosine"]],
         "stoch_lrs": {"sgd": [0.3], "adam": [1e-2]}}
RUNNERS = [Runner("dcs_lasso", "DCS (P = I) vs scikit-learn's Lasso(2α): path, critical α of a mask (D5), "
                  "DCS with SGD / Adam", run, figure, DEFAULTS, SMOKE, summarize, default_seeds=3, group="dcs",
                  digits=6)]
