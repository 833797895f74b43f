"""Exact Ridge Rider reproductions (experiments/ridge/toy.py, tree_rl.py, lever_game.py) and the ZSC protocol
(symdisc/ridge/zsc.py): each runner's smoke config through the registry, with checks that can fail."""

import pytest
import torch

from symdisc.ridge.archive import Archive
from symdisc.ridge.problems.lever import cross_play, lever_return
from symdisc.ridge.zsc import lever_describe, lever_runs, zero_shot_coordination

from .smoke import smoke


def smoke_run(name: str, tmp_path) -> dict:
    return smoke(name, tmp_path, "ridge")


def test_toy_rr_reaches_both_global_minima_and_gd_only_local_ones(tmp_path):
    doc = smoke_run("rr_toy2d", tmp_path)
    c, result = doc["summary"], doc["results"][0]
    assert c["rr_distinct_global"] == 2 and c["rr_local"] == 2 and c["rr_other"] == 0
    assert c["gd_global"] == 0 and c["gd_local"] == doc["config"]["gd_runs"]  # GD follows the steepest ridge
    rides = result["rr"]["rides"]
    assert sorted((r["fingerprint"], r["sign"]) for r in rides) == [([0], -1), ([0], 1), ([1], -1), ([1], 1)]
    for r in rides:  # the ridges of the maximum are the axes; the steep one (λ = −2) leads to the local minima
        assert r["ride"][0] == [0.0, 0.0] and len(r["ride"]) > 1
        assert r["kind"] == ("local" if r["eigenvalue"] < -1.5 else "global")


def test_tree_rr_finds_at_least_what_gd_from_the_mis_finds(tmp_path):
    doc = smoke_run("rr_tree", tmp_path)
    trees = doc["results"][0]["trees"]
    assert [t["depth"] for t in trees] == doc["config"]["depths"]
    for t in trees:
        m = t["methods"]
        assert set(m) == {"RR", "Fixed+UpdateRidge", "Fixed+FixedRidge", "GD (R)", "GD (S)", "Random vectors (S)"}
        assert m["RR"]["found"] >= m["GD (S)"]["found"]
        for name in ("GD (R)", "GD (S)", "Random vectors (S)"):  # baselines spend RR's iterations on that tree
            assert m[name]["iterations"] == m["RR"]["iterations"]
    assert trees[0]["methods"]["RR"]["found"] > trees[0]["methods"]["GD (S)"]["found"]  # the fixed depth-4 tree


def test_lever_smoke_and_the_shift_check(tmp_path):
    doc = smoke_run("rr_lever", tmp_path)
    rep = doc["results"][0]["repeats"][0]
    assert rep["mis_grad_norm_max"] < doc["config"]["grad_tol"]  # a saddle: both signs offered
    assert all(r["rides"] == 18 for r in rep["rr"])  # 9 negative eigenvalues (1 + 1 + 1 + 6-fold) × ±
    ridge0 = next(row for row in rep["alg3"]["ridges"] if row["fingerprint"] == [0])
    assert ridge0["eigenvalue"] == pytest.approx(-0.01268, abs=1e-4)  # the 0.6-lever ridge is the most negative
    s = doc["summary"]
    assert s["shift_ridges_unprojected"]["mis"] == s["shift_ridges_projected"]["mis"] == doc["config"]["runs"]
    assert s["symmetric"]["alg3"]["payoff"] in (0.6, 0.8, 1.0)


def test_lever_protocol_with_signed_fingerprints_picks_the_06_lever():
    rs = lever_runs(8, 0)
    results = [r["result"] for r in rs]
    J, XP = (lambda th: float(lever_return(th))), (lambda a, b: float(cross_play(a, b)))
    signed = zero_shot_coordination(results, J, XP, lever_describe, signed=True)
    assert signed["selected_fingerprint"] == [0] and signed["selected_payoff"] == 0.6
    assert signed["selected_cross_play"] == pytest.approx(0.6, abs=0.01)
    alg3 = zero_shot_coordination(results, J, XP, lever_describe)
    # Alg. 3's ± choice by self-play prefers the round-off-broken twin (reference §1.7): lower cross-play
    assert alg3["selected_cross_play"] < signed["selected_cross_play"]


def _archive(solutions):
    a = Archive()
    for fingerprint, sign, theta in solutions:
        n = a.add(None, fingerprint, sign, torch.zeros(2), torch.zeros(2), -1.0, 0.0)
        n.status, n.leaf, n.theta_end = "done", True, torch.tensor(theta, dtype=torch.float64)
    a.queue.clear()
    return a


def test_zero_shot_coordination_protocol_on_synthetic_archives():
    """θ = (self-play, tag); cross-play 1 iff the tags match.  Ψ=[0]: the best self-play twin has a run-specific
    tag (cross-play ½ with i = j included); Ψ=[1] coordinates (1); Ψ=[2] is missing in run 1."""
    runs = [_archive([([0], 1, (0.5, 1)), ([0], -1, (0.9, 2)), ([1], 1, (0.3, 5)), ([2], 1, (0.2, 7))]),
            _archive([([0], 1, (0.5, 1)), ([0], -1, (0.9, 3)), ([1], 1, (0.3, 5))])]
    sp, xp = (lambda th: float(th[0])), (lambda a, b: float(a[1] == b[1]))
    out = zero_shot_coordination(runs, sp, xp, lambda th: {"payoff": float(th[1])})
    rows = {tuple(r["fingerprint"]): r for r in out["ridges"]}
    assert rows[(0,)]["cross_play"] == 0.5 and rows[(0,)]["self_play"] == pytest.approx(0.9)
    assert rows[(2,)]["runs"] == 1 and rows[(2,)]["cross_play"] == 1.0
    assert out["selected_fingerprint"] == [1] and out["selected_payoff"] == 5.0 and out["selected_cross_play"] == 1.0
    signed = zero_shot_coordination(runs, sp, xp, signed=True)
    assert (signed["selected_fingerprint"], signed["selected_sign"]) == ([0], 1)  # the (Ψ, +) twin coordinates
