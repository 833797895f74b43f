"""RR Fig. 6: zero-shot coordination on the lever game (``symdisc.ridge.problems.lever``: levers 0–6 pay 1.0,
7–8 pay 0.8, 9 pays 0.6) with Alg. 3 (``symdisc.ridge.zsc``): ``runs`` independent MIS + exact-RR runs,
``repeats`` times (the paper: 25 runs × 5).  Each run: θ₀ ~ N(0, ``eps``²) from ``make_generator(seed, rep, r)``,
the MIS with λ_ent = ``ent_weight``, exact RR (BFS, dense, δ_break, max_depth 1, each ride polished by
``finish_steps`` GD steps at ``finish_lr``; ``zsc.LEVER_RR``).

Per repeat, the protocol twice: as Alg. 3 (± directions share Ψ, best self-play kept) and ``signed`` ((Ψ, sign)
kept apart; our variant, see the zsc module on the ± fragility).  Also, per run's MIS, design B's check
(reference §6.3 (a)): GetRidges with neg_tol = 0, with and without projecting out the softmax shift of each agent
(``LeverShift``, 2 generators): how many offered ridges lie in the shift span (‖Qᵀe‖ > 0.5).  And, for the
first ``symmetric_runs`` runs of repeat 0 (same MIS), RR with the symmetry (designs B, A and C on) and the
protocol on its archives.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from experiments.registry import Runner
from symdisc.layout import ParamLayout
from symdisc.plotting import plt, save_figure, sns
from symdisc.ridge import RidgeRider, RRConfig
from symdisc.ridge.problems.lever import cross_play, lever_return
from symdisc.ridge.zsc import LEVER_RR, lever_describe, lever_runs, zero_shot_coordination
from symdisc.symmetry.base import Symmetry


class LeverShift(Symmetry):
    """θ ↦ θ + c₁·[1₁₀, 0₁₀] + c₂·[0₁₀, 1₁₀]: each agent's softmax is unchanged by a shift of its logits."""

    name = "lever-softmax-shift"
    num_generators = 2

    def __init__(self):
        super().__init__(ParamLayout.from_pairs([("theta", (20,))]))

    def act(self, coeffs, theta, X=None):
        basis = torch.zeros(2, 20, dtype=theta.dtype, device=theta.device)
        basis[0, :10], basis[1, 10:] = 1.0, 1.0
        return theta + coeffs.to(theta.dtype) @ basis


SHIFT = torch.zeros(20, 2, dtype=torch.float64)
SHIFT[:10, 0], SHIFT[10:, 1] = 10 ** -0.5, 10 ** -0.5
J = lambda th: float(lever_return(th))
XP = lambda a, b: float(cross_play(a, b))
loss = lambda th: -lever_return(th)


def _rr(config: dict) -> dict:
    return {**LEVER_RR, **{k: config[k] for k in ("n_ridges", "delta_break", "finish_steps", "finish_lr",
                                                  "grad_tol")}}


def shift_ridges(theta: torch.Tensor, config: dict) -> dict:
    """Design B check at θ: ridges offered along the shift span, without / with the projection (neg_tol = 0)."""
    out = {}
    for label, sym in (("unprojected", None), ("projected", LeverShift())):
        cfg = RRConfig(**{**_rr(config), "neg_tol": 0.0, "n_ridges": 20, "adapt": False, "merge": False})
        ridges = RidgeRider(loss, theta, cfg, symmetry=sym).get_ridges(theta)
        hits = [r for r in ridges if float((SHIFT.T @ r.e).norm()) > 0.5]
        out[label] = {"ridges": len(ridges), "shift_ridges": len(hits), "shift_eigenvalues": [r.lam for r in hits]}
    return out


def _zsc(results: list, signed: bool) -> dict:
    return zero_shot_coordination(results, J, XP, lever_describe, signed)


def run(config: dict, seed: int) -> dict:
    """``repeats`` × (``runs`` RR runs, Alg. 3 and the signed variant), the design-B check, symmetric RR."""
    rr, reps = _rr(config), []
    first = None
    for rep in range(config["repeats"]):
        rs = lever_runs(config["runs"], seed, rr, config["eps"], config["ent_weight"], stream=(rep,))
        first = first or rs
        results = [r["result"] for r in rs]
        reps.append({"alg3": _zsc(results, False), "signed": _zsc(results, True),
                     "mis_grad_norm_max": max(r["mis"].grad_norm for r in rs),
                     "rr": [r["result"].summary() for r in rs],
                     "zero_step_rides": [sum(n.steps == 0 for n in r["result"].archive.ends()) for r in rs],
                     "shift_check": [shift_ridges(r["mis"].theta, config) for r in rs]})
    n_sym = min(config["symmetric_runs"], config["runs"])
    symmetric = None
    if n_sym:
        rs = lever_runs(n_sym, seed, rr, config["eps"], config["ent_weight"], symmetry=LeverShift(), stream=(0,))
        results = [r["result"] for r in rs]
        symmetric = {"alg3": _zsc(results, False), "signed": _zsc(results, True),
                     "rr": [r["result"].summary() for r in rs]}
    return {"repeats": reps, "symmetric": symmetric}


def summarize(results: list[dict], config: dict) -> dict:
    """Selected payoff / cross-play per variant over repeats; the design-B counts; symmetric RR's selection."""
    out = {}
    reps = [rep for r in results for rep in r["repeats"]]
    for v in ("alg3", "signed"):
        xp = torch.tensor([rep[v]["selected_cross_play"] for rep in reps], dtype=torch.float64)
        out[v] = {"selected_payoffs": [rep[v]["selected_payoff"] for rep in reps],
                  "selected_fingerprints": [[rep[v]["selected_fingerprint"], rep[v]["selected_sign"]] for rep in reps],
                  "cross_play_mean": float(xp.mean()), "cross_play_sd": float(xp.std(correction=0))}
    checks = [c for rep in reps for c in rep["shift_check"]]
    for label in ("unprojected", "projected"):
        out[f"shift_ridges_{label}"] = {
            "mis_with_any": sum(c[label]["shift_ridges"] > 0 for c in checks), "mis": len(checks),
            "total": sum(c[label]["shift_ridges"] for c in checks)}
    sym = results[0]["symmetric"]
    if sym:
        out["symmetric"] = {v: {"payoff": sym[v]["selected_payoff"], "cross_play": sym[v]["selected_cross_play"],
                                "fingerprint": [sym[v]["selected_fingerprint"], sym[v]["selected_sign"]]}
                            for v in ("alg3", "signed")}
        out["symmetric"]["solutions_per_run"] = [s["solutions"] for s in sym["rr"]]
        out["symmetric"]["merged_per_run"] = [s["merged"] for s in sym["rr"]]
    zero = [z for rep in reps for z in rep["zero_step_rides"]]
    out["zero_step_rides"] = {"mean_per_run": sum(zero) / len(zero), "rides_per_run": reps[0]["rr"][0]["rides"]}
    return out


def _table(reps: list[dict], variant: str) -> pd.DataFrame:
    rows = []
    for i, rep in enumerate(reps):
        for row in rep[variant]["ridges"]:
            sign = "" if row["sign"] is None else ("+" if row["sign"] > 0 else "−")
            rows.append({"ridge": f"{row['fingerprint']}{sign}", "repeat": i, "cross-play": row["cross_play"],
                         "self-play": row["self_play"], "eigenvalue": row["eigenvalue"],
                         "lever payoff": row["payoff"]})
    return pd.DataFrame(rows)


def figure(document: dict, path: Path) -> None:
    """Cross-play per fingerprint (mean ± sd over repeats; dots: self-play), Alg. 3 and the signed variant."""
    reps = [rep for r in document["results"] for rep in r["repeats"]]
    s = document["summary"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1, 1.8]})
    for ax, variant, title in ((axes[0], "alg3", "Alg. 3 (± share Ψ, best self-play)"),
                               (axes[1], "signed", "signed variant ((Ψ, sign) kept apart)")):
        df = _table(reps, variant)
        order = list(dict.fromkeys(df["ridge"]))
        sns.barplot(data=df, x="ridge", y="cross-play", order=order, errorbar="sd", color="C0", ax=ax,
                    label="cross-play")
        sns.pointplot(data=df, x="ridge", y="self-play", order=order, errorbar=None, color="C3", linestyle="none",
                      markers="D", ax=ax, label="self-play")
        ax.axhline(0.6, color="k", ls=":", lw=1)
        pay = df.groupby("ridge", sort=False)["lever payoff"].agg(lambda v: v.mode().iloc[0])
        for i, name in enumerate(order):
            ax.text(i, 0.02, f"{pay[name]:g}", ha="center", va="bottom", fontsize=7, color="w")
        pays = s[variant]["selected_payoffs"]
        ax.set_title(f"{title}\nselected lever payoff per repeat: {pays}; cross-play "
                     f"{s[variant]['cross_play_mean']:.3f} ± {s[variant]['cross_play_sd']:.3f}", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("fingerprint Ψ (ridge index at the MIS, 0 = most negative)")
        ax.tick_params(axis="x", labelsize=7, rotation=90 if variant == "signed" else 0)
        ax.legend(fontsize=8, loc="upper left")
    c = document["config"]
    up, pr = s["shift_ridges_unprojected"], s["shift_ridges_projected"]
    note = (f"white: greedy lever payoff (most common).  Design-B check, GetRidges with neg_tol = 0 at each MIS: "
            f"shift-direction ridges offered at {up['mis_with_any']}/{up['mis']} MIS unprojected, "
            f"{pr['mis_with_any']}/{pr['mis']} projected")
    if "symmetric" in s:
        sy = s["symmetric"]
        note += (f"\nsymmetry-aware RR (designs B+A+C, repeat 0's runs): Alg. 3 picks payoff {sy['alg3']['payoff']} "
                 f"(cross-play {sy['alg3']['cross_play']:.3f}), signed {sy['signed']['payoff']}")
    fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7.5)
    fig.suptitle(f"Lever game ZSC: {c['runs']} runs × {c['repeats']} repeats (paper: the protocol picks the 0.6 "
                 "lever, cross-play 0.6; dotted line)", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(fig, path)


DEFAULTS = {"runs": 25, "repeats": 5, "eps": 0.01, "ent_weight": 1e-6, "n_ridges": 10, "delta_break": 0.95,
            "grad_tol": 1e-4, "finish_steps": 100, "finish_lr": 30.0, "symmetric_runs": 25}
SMOKE = {"runs": 3, "repeats": 1, "symmetric_runs": 2}
RUNNERS = [Runner("rr_lever", "RR Fig. 6: zero-shot coordination on the lever game by Alg. 3 (cross-play over Ψ)",
                  run, figure, DEFAULTS, SMOKE, summarize, group="ridge", digits=6)]
