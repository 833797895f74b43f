"""DCS E2 (Fig. 3 middle, appendix B.2, and B.5's Fig. 8; reference dcs.md §4.2, §7 E2, P13): rotation symmetry
makes matrix factorisation low rank, under SGD noise (no weight decay) and under weight decay (GD).

Part 1, online SGD (B.2).  f(x) = W U x with W, U ∈ ℝ^{d×d}, batch 1, plain SGD, no weight decay, loss
ℓ = ½‖f(x) − y‖², x ~ N(0, I_d), y = μx + (1 − μ)ε, ε_i ~ N(0, 2/i).  d = ``d`` = 50 is a substitute for the
paper's 200 (the whole config must run in minutes on one core); μ and the learning rates are not given by the
paper, so the grid ``mus`` × ``lrs`` (one batch along a leading axis) spans from no collapse to the edge of
divergence.  W₀, U₀: PyTorch's nn.Linear default, U(−1/√d, 1/√d) (the paper's init is not stated).  Controls
(the paper's inset): the residual model f(x) = (I + W)(I + U)x from the same W₀, U₀, and the same model from
W₀ = U₀ = 0 (starting at the identity).  Note: without weight decay the residual model is the W U model in
translated coordinates (A = I + W has ∇_A ℓ = ∇_W ℓ), so its SGD is the W U model's SGD started at
(I + W₀, I + U₀): it has the affine mirror symmetries A → A(I − 2P), C → (I − 2P)C, and only the start differs.
Measured: the numerical rank (σ_k > ``rank_rtol``·σ_max and > ``rank_atol``) of the end-to-end matrix and of
both factors (W, U for W U; I + W, I + U for the residual models), and the excess risk ‖M − μI‖²_F.  A run whose
factors leave ``diverge_norm`` or become non-finite is marked diverged (step recorded), frozen at 0, rank null.

Part 2, weight decay with full-batch GD (B.5): ``gd_n`` = 200 points x ~ N(0, I_50), a 50 → 50 → 50 linear
factorisation, targets y = ``gd_mu``·x + (1 − ``gd_mu``)ε with the same ε (B.5 gives no targets), loss
(1/2n) Σ‖W U x − y‖² + γ(‖W‖²_F + ‖U‖²_F), ``gd_steps`` GD steps at ``gd_lr`` for every γ in ``gd_gammas`` (one
batch).  Control: (I + W)(I + U) with the same γ(‖W‖² + ‖U‖²), which penalises the distance to the identity and
so has no mirror symmetry.  Theory check: since min_{WU = M} ‖W‖² + ‖U‖² = 2‖M‖_*, the global minimum of the
W U problem is the nuclear-norm problem's minimum, solved exactly (convex) by proximal gradient; its rank and
objective are reported beside GD's.  Entries below 1e-200 are flushed to 0 (denormal arithmetic is slow).
Random draws: SGD init ``make_generator(seed, 0)``, SGD data ``(seed, 1)``, GD data ``(seed, 2)``, GD init
``(seed, 3)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from experiments.registry import Runner
from symdisc import make_generator
from symdisc.plotting import plt, save_figure, sns

SGD_MODELS = ("WU", "residual", "residual_identity")
LABELS = {"WU": "W U", "residual": "(I + W)(I + U), same W₀, U₀", "residual_identity": "(I + W)(I + U), W₀ = U₀ = 0"}


def linear_init(d: int, g: torch.Generator) -> torch.Tensor:
    """nn.Linear's default weight init for a d → d layer: U(−1/√d, 1/√d)."""
    return (2.0 * torch.rand(d, d, generator=g, dtype=torch.float64) - 1.0) / math.sqrt(d)


def ranks(M: torch.Tensor, config: dict) -> list[int]:
    s = torch.linalg.svdvals(M)
    keep = (s > config["rank_rtol"] * s[..., :1]) & (s > config["rank_atol"])
    return keep.sum(-1).tolist()


def noise_std(d: int) -> torch.Tensor:
    return (2.0 / torch.arange(1, d + 1, dtype=torch.float64)).sqrt()


def flush(*tensors: torch.Tensor) -> None:
    for t in tensors:
        t.masked_fill_(t.abs() < 1e-200, 0.0)


def sgd(config: dict, seed: int) -> dict:
    """The three models over the (μ, lr) grid, stacked as one batch of 3·|μ|·|lr| factor pairs (A, C), f = A C x."""
    d = config["d"]
    grid = [(mu, lr) for mu in config["mus"] for lr in config["lrs"]]
    P, eye = len(grid), torch.eye(d, dtype=torch.float64)
    g = make_generator(seed, 0)
    W0, U0 = linear_init(d, g), linear_init(d, g)
    starts = {"WU": (W0, U0), "residual": (eye + W0, eye + U0), "residual_identity": (eye, eye)}
    A = torch.cat([a.expand(P, d, d) for a, _ in starts.values()]).clone()
    C = torch.cat([c.expand(P, d, d) for _, c in starts.values()]).clone()
    B = A.shape[0]
    mu = torch.tensor([m for m, _ in grid] * len(SGD_MODELS), dtype=torch.float64)[:, None]
    lr = torch.tensor([r for _, r in grid] * len(SGD_MODELS), dtype=torch.float64)[:, None]
    diverged: list[int | None] = [None] * B
    trace = {"step": [0], "rank": [ranks(A @ C, config)]}
    data, sd, done = make_generator(seed, 1), noise_std(d), 0
    while done < config["steps"]:
        n = min(config["record_every"], config["steps"] - done)
        X = torch.randn(n, d, generator=data, dtype=torch.float64)
        E = sd * torch.randn(n, d, generator=data, dtype=torch.float64)
        for x, e in zip(X, E, strict=True):
            h = torch.matmul(C, x)                                          # (B, d)
            r = torch.matmul(A, h.unsqueeze(-1)).squeeze(-1) - mu * x - (1.0 - mu) * e
            s = torch.matmul(r.unsqueeze(1), A).squeeze(1)                  # Aᵀ r, before A moves
            A.baddbmm_((lr * r).unsqueeze(-1), h.unsqueeze(1), alpha=-1.0)  # A ← A − lr r (C x)ᵀ
            C.addcmul_((lr * s).unsqueeze(-1), x.view(1, 1, d), value=-1.0)  # C ← C − lr (Aᵀ r) xᵀ
        done += n
        norm = torch.maximum(A.nan_to_num(1e300).flatten(1).norm(dim=1), C.nan_to_num(1e300).flatten(1).norm(dim=1))
        bad = ~torch.isfinite(A).flatten(1).all(1) | ~torch.isfinite(C).flatten(1).all(1) | (norm > config[
            "diverge_norm"])
        for i in torch.nonzero(bad & (lr[:, 0] > 0)).flatten().tolist():
            diverged[i], lr[i], A[i], C[i] = done, 0.0, 0.0, 0.0
        flush(A, C)
        trace["step"].append(done)
        trace["rank"].append([None if diverged[i] else k for i, k in enumerate(ranks(A @ C, config))])
    M = A @ C
    target = mu[:, :, None] * eye
    out = {}
    for j, model in enumerate(SGD_MODELS):
        rows = range(j * P, (j + 1) * P)
        dead = [diverged[i] for i in rows]
        sl = slice(j * P, (j + 1) * P)
        cols = {"rank_product": ranks(M[sl], config), "rank_first": ranks(A[sl], config),
                "rank_second": ranks(C[sl], config),
                "excess_risk": ((M[sl] - target[sl]) ** 2).sum((1, 2)).tolist()}
        out[model] = {k: [None if dead[i] else v[i] for i in range(P)] for k, v in cols.items()}
        out[model]["diverged_at_step"] = dead
        out[model]["singular_values"] = [None if dead[i] else s for i, s in
                                         enumerate(torch.linalg.svdvals(M[sl]).tolist())]
        out[model]["rank_trace"] = [[t[i] for t in trace["rank"]] for i in rows]
    return {"grid": [{"mu": m, "lr": r} for m, r in grid], "trace_steps": trace["step"], "models": out}


def nuclear_prox(Sig: torch.Tensor, Cc: torch.Tensor, gammas: torch.Tensor, steps: int) -> tuple[torch.Tensor, float]:
    """argmin_M ½tr(MΣMᵀ) − tr(MCcᵀ) + 2γ‖M‖_* for each γ (proximal gradient); also the last step's relative move."""
    step = 1.0 / float(torch.linalg.eigvalsh(Sig)[-1])
    M = torch.zeros(len(gammas), *Cc.shape, dtype=torch.float64)
    move = math.inf
    for _ in range(steps):
        Uu, S, Vh = torch.linalg.svd(M - step * (M @ Sig - Cc))
        new = Uu @ torch.diag_embed((S - 2 * step * gammas[:, None]).clamp(min=0)) @ Vh
        move = float((new - M).norm() / max(float(new.norm()), 1e-300))
        M = new
    return M, move


def gd(config: dict, seed: int) -> dict:
    """Weight-decayed full-batch GD on W U and (I + W)(I + U) for every γ (one batch), and the convex optimum."""
    d, n = config["gd_d"], config["gd_n"]
    g = make_generator(seed, 2)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = config["gd_mu"] * X + (1 - config["gd_mu"]) * noise_std(d) * torch.randn(n, d, generator=g,
                                                                                  dtype=torch.float64)
    Sig, Cc, c0 = X.T @ X / n, Y.T @ X / n, float((Y ** 2).sum()) / (2 * n)
    gammas = torch.tensor(config["gd_gammas"], dtype=torch.float64)
    G, eye = len(gammas), torch.eye(d, dtype=torch.float64)
    gi = make_generator(seed, 3)
    W0, U0 = linear_init(d, gi), linear_init(d, gi)
    W, U = W0.expand(2 * G, d, d).clone(), U0.expand(2 * G, d, d).clone()
    shift = torch.tensor([0.0] * G + [1.0] * G, dtype=torch.float64)[:, None, None] * eye  # 0: W U, I: residual
    gam = gammas.repeat(2)[:, None, None]
    data = lambda M: 0.5 * ((M @ Sig) * M).sum((1, 2)) - (M * Cc).sum((1, 2)) + c0  # noqa: E731
    for k in range(config["gd_steps"]):
        A, Cm = W + shift, U + shift
        Gm = A @ Cm @ Sig - Cc
        gW, gU = Gm @ Cm.transpose(1, 2) + 2 * gam * W, A.transpose(1, 2) @ Gm + 2 * gam * U
        W.sub_(config["gd_lr"] * gW)
        U.sub_(config["gd_lr"] * gU)
        if k % 100 == 0:
            flush(W, U)
    A, Cm = W + shift, U + shift
    M = A @ Cm
    objective = (data(M) + gam[:, 0, 0] * ((W ** 2).sum((1, 2)) + (U ** 2).sum((1, 2)))).tolist()
    Mc, move = nuclear_prox(Sig, Cc, gammas, config["prox_steps"])
    convex = (data(Mc) + 2 * gammas * torch.linalg.svdvals(Mc).sum(1)).tolist()
    out = {"gammas": config["gd_gammas"], "convex": {"rank": ranks(Mc, config), "objective": convex,
                                                     "last_relative_move": move}}
    for j, model in enumerate(("WU", "residual")):
        sl = slice(j * G, (j + 1) * G)
        out[model] = {"rank_product": ranks(M[sl], config), "rank_first": ranks(A[sl], config),
                      "rank_second": ranks(Cm[sl], config), "objective": objective[sl],
                      "singular_values": torch.linalg.svdvals(M[sl]).tolist()}
    out["WU"]["objective_gap_to_convex"] = [a - b for a, b in zip(out["WU"]["objective"], convex, strict=True)]
    out["ols_singular_values"] = torch.linalg.svdvals(torch.linalg.solve(Sig, Cc.T).T).tolist()
    return out


def run(config: dict, seed: int) -> dict:
    return {"sgd": sgd(config, seed), "gd": gd(config, seed)}


def _mean(values: list) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def nonincreasing(values: list) -> bool:
    finite = [v for v in values if v is not None]
    return all(b <= a for a, b in zip(finite, finite[1:], strict=False))


def gd_ranks(result: dict, model: str) -> list[int]:
    return result["gd"]["convex"]["rank"] if model == "convex" else result["gd"][model]["rank_product"]


def summarize(results: list[dict], config: dict) -> dict:
    mus, lrs = config["mus"], config["lrs"]
    sgd_rows = {}
    for model in SGD_MODELS:
        per = [r["sgd"]["models"][model] for r in results]
        table = {}
        for key in ("rank_product", "rank_first", "rank_second", "excess_risk"):
            flat = [_mean([p[key][i] for p in per]) for i in range(len(mus) * len(lrs))]
            table[key] = [flat[k * len(lrs):(k + 1) * len(lrs)] for k in range(len(mus))]  # [μ][lr]
        table["diverged_seeds"] = [[sum(p["diverged_at_step"][k * len(lrs) + i] is not None for p in per)
                                    for i in range(len(lrs))] for k in range(len(mus))]
        sgd_rows[model] = table
    wu = sgd_rows["WU"]["rank_product"]
    pairs = [(r["sgd"]["models"]["WU"]["rank_product"][i], r["sgd"]["models"][m]["rank_product"][i])
             for r in results for m in ("residual", "residual_identity") for i in range(len(mus) * len(lrs))]
    stable = [(a, b) for a, b in pairs if a is not None and b is not None]
    gd_rows = {m: {"rank_product": [_mean([gd_ranks(r, m)[i] for r in results])
                                    for i in range(len(config["gd_gammas"]))]} for m in ("WU", "residual", "convex")}
    gap = max(abs(x) for r in results for x in r["gd"]["WU"]["objective_gap_to_convex"])
    return {
        "sgd": sgd_rows,
        "sgd_wu_rank_nonincreasing_in_lr": [nonincreasing(row) for row in wu],
        "sgd_wu_rank_nonincreasing_in_noise": [nonincreasing([wu[k][i] for k in reversed(range(len(mus)))])
                                               for i in range(len(lrs))],
        "sgd_wu_min_rank": min(v for row in wu for v in row if v is not None),
        "sgd_residual_stable_runs": len(stable), "sgd_residual_runs": len(pairs),
        "sgd_residual_rank_equal_to_wu": sum(a == b for a, b in stable),
        "sgd_residual_min_rank": min((b for _, b in stable), default=None),
        "gd": gd_rows,
        "gd_wu_rank_nonincreasing_in_gamma": all(nonincreasing(r["gd"]["WU"]["rank_product"]) for r in results),
        "gd_residual_min_rank": min(min(r["gd"]["residual"]["rank_product"]) for r in results),
        "gd_wu_matches_convex_rank": sum(a == b for r in results for a, b in
                                         zip(r["gd"]["WU"]["rank_product"], r["gd"]["convex"]["rank"], strict=True)),
        "gd_runs": len(results) * len(config["gd_gammas"]),
        "gd_max_abs_objective_gap": gap,
        "seeds": len(results)}


def _rank_panel(ax, summary: dict, config: dict, styles: dict) -> None:
    """Mean end-to-end rank vs lr, one colour per μ; ``styles``: model → (line style, marker, label); runs
    diverged in any seed are drawn as hollow markers on one "diverged" row per model below the data."""
    lrs, pal = config["lrs"], sns.color_palette("viridis_r", len(config["mus"]))
    finite = [v for m in styles for row in summary["sgd"][m]["rank_product"] for v in row if v is not None]
    low = min(finite, default=0)
    bottom = max(0.0, 5 * math.floor((low - 3) / 5))
    dying = [m for m in styles if any(n for row in summary["sgd"][m]["diverged_seeds"] for n in row)]
    rows = {m: bottom - 3 - 2.5 * j for j, m in enumerate(dying)}
    jitter = 0.12 * (lrs[-1] - lrs[0]) / max(len(lrs) - 1, 1)
    for model, (ls, marker, _) in styles.items():
        table = summary["sgd"][model]
        for k, mu in enumerate(config["mus"]):
            y = [np.nan if v is None else v for v in table["rank_product"][k]]
            ax.plot(lrs, y, ls=ls, marker=marker, color=pal[k], ms=5, lw=1.2 if ls == ":" else 1.8,
                    label=f"μ = {mu:g}" if model == next(iter(styles)) else None)
            dead = [lr + jitter * (k - (len(pal) - 1) / 2) for lr, n in zip(lrs, table["diverged_seeds"][k],
                                                                          strict=True) if n]
            ax.plot(dead, [rows.get(model, 0)] * len(dead), ls="none", marker=marker, color=pal[k], ms=7, mfc="none",
                    mew=1.5)
    ax.axhline(config["d"], color="k", lw=0.8, ls=":")
    ax.set_ylim(min(rows.values(), default=bottom) - 2, config["d"] + 1.5)
    ticks = [t for t in range(int(bottom), config["d"] + 1, 5)]
    names = {m: "diverged" + (f" ({styles[m][1]})" if len(styles) > 1 else "") for m in rows}
    ax.set_yticks([*rows.values(), *ticks], [*names.values(), *[str(t) for t in ticks]])
    ax.set_xlabel("learning rate λ")
    ax.set_ylabel("end-to-end numerical rank (mean over seeds)")


def figure(document: dict, path: Path) -> None:
    """(a) W U rank vs lr per μ, (b) the residual controls, (c) W U spectra at the noisiest μ, (d) GD rank vs γ."""
    cfg, s = document["config"], document["summary"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, 2, figsize=(14, 10.5))
    ax = axes[0, 0]
    _rank_panel(ax, s, cfg, {"WU": ("-", "o", LABELS["WU"])})
    ax.set_title(f"(a) Online SGD on W U x (d = {cfg['d']}, {cfg['steps']:,} steps, no weight decay, "
                 f"{s['seeds']} seeds)", fontsize=10)
    ax.legend(fontsize=8, title="y = μx + (1−μ)ε", title_fontsize=8, loc="lower left")
    ax = axes[0, 1]
    styles = {"residual": ("-", "s", LABELS["residual"]), "residual_identity": ("--", "^", LABELS["residual_identity"])}
    _rank_panel(ax, s, cfg, styles)
    pal = sns.color_palette("viridis_r", len(cfg["mus"]))
    for k in range(len(cfg["mus"])):
        ax.plot(cfg["lrs"], [np.nan if v is None else v for v in s["sgd"]["WU"]["rank_product"][k]], ":",
                color=pal[k], lw=2.5, alpha=0.5)
    for ls, marker, label in styles.values():
        ax.plot([], [], ls=ls, marker=marker, color="grey", label=label)
    ax.plot([], [], ":", color="grey", lw=2.5, alpha=0.5, label="W U, panel (a)")
    ax.set_title(f"(b) Controls (I + W)(I + U)x: rank = W U's in {s['sgd_residual_rank_equal_to_wu']}/"
                 f"{s['sgd_residual_stable_runs']} non-diverged runs", fontsize=10)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    ax = axes[1, 0]
    res = document["results"][0]["sgd"]
    mu0 = cfg["mus"][0]
    pal = sns.color_palette("magma_r", len(cfg["lrs"]) + 1)[1:]
    for cell, sv in zip(res["grid"], res["models"]["WU"]["singular_values"], strict=True):
        if cell["mu"] == mu0 and sv is not None:
            j = cfg["lrs"].index(cell["lr"])
            ax.semilogy(range(1, len(sv) + 1), np.maximum(np.asarray(sv) / max(sv[0], 1e-300), 1e-20), "o-",
                        ms=2.5, color=pal[j], label=f"λ = {cell['lr']:g}")
    ax.axhline(cfg["rank_rtol"], color="grey", ls=":", lw=1.2, label=f"rank threshold {cfg['rank_rtol']:g}")
    ax.set_xlabel("index k")
    ax.set_ylabel("σ_k(W U) / σ_max")
    ax.set_title(f"(c) Singular values of W U after SGD, μ = {mu0:g}, seed 0", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 1]
    gam = cfg["gd_gammas"]
    for model, (style, lab) in {"WU": ("o-", "W U, GD"), "convex": ("kx", "nuclear-norm optimum (convex)"),
                                "residual": ("s--", "(I + W)(I + U), GD")}.items():
        ax.plot(gam, s["gd"][model]["rank_product"], style, ms=7 if model == "convex" else 5, mew=2, label=lab)
    ax.set_xlabel("weight decay γ")
    ax.set_ylabel("numerical rank of the end-to-end matrix")
    ax.set_title(f"(d) B.5: {cfg['gd_d']} → {cfg['gd_d']} → {cfg['gd_d']}, {cfg['gd_n']} points, full-batch GD, "
                 f"{cfg['gd_steps']:,} steps", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


DEFAULTS = {"d": 50, "steps": 50_000, "mus": [0.05, 0.1, 0.2, 0.4],
            "lrs": [0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03], "record_every": 5000, "diverge_norm": 1e6,
            "rank_rtol": 1e-3, "rank_atol": 1e-10,
            "gd_d": 50, "gd_n": 200, "gd_mu": 0.5, "gd_gammas": [0.0, 0.01, 0.03, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3,
                                                                  0.4, 0.5, 0.7],
            "gd_lr": 0.2, "gd_steps": 10_000, "prox_steps": 1000}
SMOKE = {"d": 20, "steps": 4000, "mus": [0.05], "lrs": [0.002, 0.03], "record_every": 1000,
         "gd_d": 20, "gd_n": 80, "gd_gammas": [0.0, 0.2, 0.7], "gd_steps": 2000, "prox_steps": 300}
RUNNERS = [Runner("dcs_matrix_factorization", "DCS E2 / Fig. 3 middle + Fig. 8: rank of W U x vs (I + W)(I + U)x "
                  "under SGD noise (lr, μ) and under weight decay (GD)", run, figure, DEFAULTS, SMOKE, summarize,
                  default_seeds=2, group="dcs", digits=6)]
