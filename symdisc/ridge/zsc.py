"""Zero-shot coordination with Ridge Rider (ridge_rider.md §3.1, [A] Algorithm 3).

N independent runs each find a MIS from θ₀ ~ N(0, ε²) and ride it with exact RR; per run and fingerprint Ψ the
solution with the highest self-play return is kept (± directions share Ψ); each Ψ is scored by its average
cross-play over all run pairs (i, j), i = j included; a policy of the best Ψ is deployed.

``zero_shot_coordination`` is the protocol for any game (``self_play(θ)``, ``cross_play(θa, θb)`` = agent 1 of
a with agent 2 of b, ``describe(θ)`` → a dict, its "payoff" key reported as ``selected_payoff``);
``lever_zsc`` runs it on the lever game of Fig. 6.

Fragility (§1.7): the ± choice by self-play is not symmetry-aware.  On the lever game the trivial
(symmetry-invariant) ridge toward the 0.6 lever has a twin, −e, that keeps the other nine levers tied; in exact
arithmetic it would stay mixed (low self-play), but round-off breaks the tie during the ride or the polish
and it reaches a 0.8 or 1.0 lever, whose higher self-play wins the argmax — and whose arbitrary choice among
equivalent levers ruins cross-play.  ``signed=True`` keeps (Ψ, sign) apart instead (the sign is relative to
the descent orientation, so it is reproducible across runs for ridges with ⟨e, ∇L⟩ ≠ 0); it is our variant,
not the paper's.  Both rest on the runs breaking ties independently; here the MIS of every run is the same
point to ~1e-10, so round-off breaks them alike more often than chance (with 3 runs all may pick the same 0.8
lever and cross-play 0.8 beats the 0.6 lever); 8 or more runs separate them in our checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from symdisc.architecture import make_generator
from symdisc.errors import InputError
from symdisc.ridge.archive import Archive
from symdisc.ridge.config import RRConfig
from symdisc.ridge.mis import find_mis
from symdisc.ridge.problems.lever import LEVER_PAYOFFS, cross_play, greedy_levers, lever_entropy, lever_return
from symdisc.ridge.rider import RidgeRider, RRResult

Fn = Callable[[torch.Tensor], float]

# lever_zsc's defaults.  λ_ent = 1e-6: ‖∇J‖² at a near-uniform policy is ~1e-5, so a larger weight lets the
# entropy win and the MIS is not a critical point (λ_ent = 1e-2 gives ‖∇J‖ ≈ 6e-3 and a near-uniform π); with
# 1e-6 L-BFGS from θ₀ ≈ 0 ends at the fully mixed equilibrium p_k ∝ 1/r_k (‖∇J‖ ≈ 4e-6), the max-entropy
# critical point, where the 0.6-lever ridge is the most negative (reference §5).  ``grad_tol`` 1e-4 makes it
# count as a saddle (both signs); δ_break 0.95 as the tree; max_depth 1: a solution is a ride from the MIS
# polished by GD (100 steps at lr 30: the softmax gradients are ≤ 0.1; J is within 1e-3 of the lever's payoff).
LEVER_RR = dict(n_ridges=10, signs="saddle", grad_tol=1e-4, update="exact", delta_break=0.95, max_depth=1,
                search="bfs", eigensolver="dense", budget=20_000, finish_steps=100, finish_lr=30.0)
LEVER_EPS, LEVER_ENT = 0.01, 1e-6


def _solutions(run) -> list:
    archive = run.archive if isinstance(run, RRResult) else run
    if not isinstance(archive, Archive):
        raise InputError(f"expected an RRResult or Archive per run, got {type(run).__name__}")
    return archive.solutions()


def zero_shot_coordination(runs: Sequence, self_play: Fn, cross_play: Callable[[torch.Tensor, torch.Tensor], float],
                           describe: Callable[[torch.Tensor], dict] | None = None, signed: bool = False) -> dict:
    """Alg. 3 on per-run RR archives (``RRResult`` or ``Archive``; their leaves are the solutions).

    Returns {"selected_fingerprint", "selected_sign" (None unless ``signed``), "selected_payoff",
    "selected_cross_play", "selected_self_play", "ridges": [per key: fingerprint, sign, runs, eigenvalue (mean λ
    at the ride's start: at the MIS for roots), self_play (mean over runs), cross_play, the first run's
    description and the fraction of runs that agree with it], "cross_play_matrix" of the selected key}.
    Keys absent from some run are scored over the runs that have them; keys present in every run are preferred."""
    describe = describe or (lambda th: {})
    best: list[dict] = []
    for run in runs:
        per: dict = {}
        for node in _solutions(run):
            key = (tuple(node.fingerprint), node.sign if signed else None)
            sp = float(self_play(node.theta_end))
            if key not in per or sp > per[key][0]:
                per[key] = (sp, node)
        best.append(per)
    keys = sorted({k for per in best for k in per})
    table, matrices = [], {}
    for key in keys:
        have = [per[key] for per in best if key in per]
        thetas = [node.theta_end for _, node in have]
        M = torch.tensor([[float(cross_play(a, b)) for b in thetas] for a in thetas], dtype=torch.float64)
        matrices[key] = M
        desc = [describe(t) for t in thetas]
        table.append({"fingerprint": list(key[0]), "sign": key[1], "runs": len(have),
                      "eigenvalue": sum(node.lam_start for _, node in have) / len(have),
                      "self_play": sum(sp for sp, _ in have) / len(have), "cross_play": float(M.mean()),
                      **desc[0], "agree": sum(d == desc[0] for d in desc) / len(desc)})
    if not table:
        raise InputError("no run has a solution (leaf): nothing to coordinate on")
    full = [row for row in table if row["runs"] == len(runs)] or table
    sel = max(full, key=lambda row: row["cross_play"])
    key = (tuple(sel["fingerprint"]), sel["sign"])
    first = next(per[key] for per in best if key in per)[1].theta_end
    d = describe(first)
    return {"selected_fingerprint": sel["fingerprint"], "selected_sign": sel["sign"],
            "selected_payoff": d.get("payoff"), "selected_cross_play": sel["cross_play"],
            "selected_self_play": float(self_play(first)), "selected_description": d, "signed": signed,
            "runs": len(runs), "ridges": table, "cross_play_matrix": matrices[key].tolist()}


def lever_describe(theta: torch.Tensor) -> dict:
    """The lever game's greedy levers of both agents and the payoff of the lever they pick (0 if they differ)."""
    a, b = greedy_levers(theta)
    return {"greedy": [a, b], "payoff": LEVER_PAYOFFS[a] if a == b else 0.0}


def lever_runs(runs: int, seed: int, config: RRConfig | dict | None = None, eps: float = LEVER_EPS,
               ent_weight: float = LEVER_ENT, symmetry=None, stream: tuple[int, ...] = ()) -> list[dict]:
    """Per run r: θ₀ ~ N(0, ε²) from ``make_generator(seed, *stream, r)``, the MIS (‖∇L‖² − λ_ent·H, L = −J), exact RR.
    Returns [{"mis": MISResult, "result": RRResult}]."""
    if not isinstance(config, RRConfig):
        config = RRConfig(**{**LEVER_RR, **(config or {})})
    loss = lambda th: -lever_return(th)
    out = []
    for r in range(runs):
        g = make_generator(seed, *stream, r)
        theta0 = eps * torch.randn(20, generator=g, dtype=torch.float64)
        mis = find_mis(loss, theta0, entropy=lever_entropy, ent_weight=ent_weight)
        out.append({"mis": mis, "result": RidgeRider(loss, mis.theta, config, symmetry=symmetry, generator=g).run()})
    return out


def lever_zsc(runs: int, seed: int, config: RRConfig | dict | None = None, eps: float = LEVER_EPS,
              ent_weight: float = LEVER_ENT, signed: bool = False, stream: tuple[int, ...] = ()) -> dict:
    """Alg. 3 on the lever game: ``runs`` independent MIS + exact RR runs (``lever_runs``), then the protocol
    with J (self-play), J(π^a_1, π^b_2) (cross-play) and the greedy levers."""
    rs = lever_runs(runs, seed, config, eps, ent_weight, stream=stream)
    out = zero_shot_coordination([r["result"] for r in rs], lambda th: float(lever_return(th)),
                                 lambda a, b: float(cross_play(a, b)), lever_describe, signed)
    out["mis_grad_norm"] = max(r["mis"].grad_norm for r in rs)
    return out
