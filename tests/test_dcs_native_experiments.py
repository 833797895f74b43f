"""DCS native-symmetry reproductions (experiments/dcs/sparse_regression.py, matrix_factorization.py): each runner's
smoke config through the registry, with checks that can fail, and the hand-written SGD steps against autograd."""

import pytest
import torch

from experiments.dcs import matrix_factorization as mf
from experiments.dcs import sparse_regression as sr
from symdisc import make_generator

from .smoke import smoke


def smoke_run(name: str, tmp_path) -> dict:
    return smoke(name, tmp_path, "dcs")


def test_sparse_regression_rescaled_model_is_sparse_and_vanilla_is_not(tmp_path):
    doc = smoke_run("dcs_sparse_regression", tmp_path)
    lrs, s = doc["config"]["lrs"], doc["summary"]
    rescaled = [x["mean"] for x in s["by_model"]["rescaled"]["frac_below_0.0001"]]
    vanilla = [x["mean"] for x in s["by_model"]["vanilla"]["frac_below_0.0001"]]
    assert lrs == sorted(lrs) and max(vanilla) <= 0.02          # vanilla never sparse
    assert rescaled[-1] > 0.2 and rescaled[-1] > vanilla[-1] + 0.2  # rescaled sparse at the largest lr
    assert rescaled[-1] > rescaled[0]                              # and sparser as lr grows
    assert s["by_model"]["vanilla"]["diverged_seeds"] == [0, 0]    # both smoke lrs are below 2/(d+2)
    th = s["theory"]  # v* = 1/200, σ = 1: eq. 5 gives 2v*/(1 + 3v*²) ≈ 0.01; the exact root agrees to 0.1 %
    assert th["lr_crit_eq5"] == pytest.approx(0.01, rel=1e-3)
    assert th["lr_crit_lyapunov"] == pytest.approx(th["lr_crit_eq5"], rel=1e-3)
    assert th["vanilla_stability_edge"] == pytest.approx(2 / 202)
    trace = doc["results"][0]["sparsity_trace"]
    assert trace["step"][-1] == doc["config"]["steps"] and trace["rescaled"][-1][-1] == rescaled[-1]


def test_sparse_regression_sgd_step_matches_autograd():
    cfg = {**sr.DEFAULTS, "d": 6, "steps": 1, "record_every": 1, "lrs": [0.05, 0.3]}
    out = sr.sgd(cfg, 3)
    g, data = make_generator(3, 0), make_generator(3, 1)
    u0, w0 = (0.1 * (2.0 * torch.randint(0, 2, (6,), generator=g) - 1).double() for _ in range(2))
    x = torch.randn(1, 6, generator=data, dtype=torch.float64)[0]
    y = x.sum() / 6 + torch.randn(1, generator=data, dtype=torch.float64)[0]
    for i, lr in enumerate(cfg["lrs"]):
        gv = torch.func.grad(lambda v: 0.5 * (v @ x - y) ** 2)(u0 * w0)
        gu, gw = torch.func.grad(lambda u, w: 0.5 * ((u * w) @ x - y) ** 2, argnums=(0, 1))(u0, w0)
        torch.testing.assert_close(out["v"]["vanilla"][i], u0 * w0 - lr * gv)
        torch.testing.assert_close(out["v"]["rescaled"][i], (u0 - lr * gu) * (w0 - lr * gw))


def test_matrix_factorization_rank_collapse_and_controls(tmp_path):
    doc = smoke_run("dcs_matrix_factorization", tmp_path)
    cfg, s = doc["config"], doc["summary"]
    d, res = cfg["d"], doc["results"][0]
    wu = res["sgd"]["models"]["WU"]["rank_product"]               # μ = 0.05, lr = 0.002 then 0.03
    assert wu[0] == d and wu[1] < d - 2                            # SGD noise at the larger lr lowers the rank
    trace = res["sgd"]["models"]["WU"]["rank_trace"]
    assert res["sgd"]["trace_steps"][-1] == cfg["steps"] and len(trace[0]) == len(res["sgd"]["trace_steps"])
    assert [t[-1] for t in trace] == wu
    # B.5 with weight decay: W U's rank falls with γ exactly as the convex nuclear-norm optimum's; the residual
    # control, whose decay pulls towards the identity, keeps full rank at every γ
    gd = res["gd"]
    assert gd["WU"]["rank_product"][0] == d and gd["WU"]["rank_product"][-1] < d // 2
    assert s["gd_wu_rank_nonincreasing_in_gamma"] and gd["WU"]["rank_product"] == gd["convex"]["rank"]
    assert gd["residual"]["rank_product"] == [d] * len(cfg["gd_gammas"]) and s["gd_residual_min_rank"] == d
    assert s["gd_max_abs_objective_gap"] < 1e-8                   # GD on W U reached the convex optimum
    assert gd["convex"]["last_relative_move"] < 1e-8


def test_matrix_factorization_sgd_step_matches_autograd_and_residual_is_a_translation():
    d, lr = 4, 0.1
    cfg = {**mf.DEFAULTS, "d": d, "steps": 1, "record_every": 1, "mus": [0.3], "lrs": [lr]}
    out = mf.sgd(cfg, 5)
    g, data = make_generator(5, 0), make_generator(5, 1)
    W0, U0 = mf.linear_init(d, g), mf.linear_init(d, g)
    x = torch.randn(1, d, generator=data, dtype=torch.float64)[0]
    y = 0.3 * x + 0.7 * mf.noise_std(d) * torch.randn(1, d, generator=data, dtype=torch.float64)[0]
    eye = torch.eye(d, dtype=torch.float64)
    loss = lambda W, U, shift: 0.5 * (((W + shift) @ (U + shift) @ x - y) ** 2).sum()  # noqa: E731
    for model, (shift, W, U) in {"WU": (0 * eye, W0, U0), "residual": (eye, W0, U0),
                                 "residual_identity": (eye, 0 * W0, 0 * U0)}.items():
        gW, gU = torch.func.grad(loss, argnums=(0, 1))(W, U, shift)
        M = (W - lr * gW + shift) @ (U - lr * gU + shift)
        torch.testing.assert_close(torch.tensor(out["models"][model]["singular_values"][0], dtype=torch.float64),
                                   torch.linalg.svdvals(M))
    # ∇_W ℓ((I + W)(I + U)) = ∇_A ℓ(A C) at A = I + W, C = I + U: the residual model's SGD is W U's, translated
    gW, gU = torch.func.grad(loss, argnums=(0, 1))(W0, U0, eye)
    gA, gC = torch.func.grad(loss, argnums=(0, 1))(eye + W0, eye + U0, 0 * eye)
    torch.testing.assert_close(gW, gA)
    torch.testing.assert_close(gU, gC)


def test_matrix_factorization_divergence_is_flagged_not_hidden():
    cfg = {**mf.DEFAULTS, "d": 10, "steps": 200, "record_every": 100, "mus": [0.1], "lrs": [2.0]}
    out = mf.sgd(cfg, 0)
    for model in mf.SGD_MODELS:
        m = out["models"][model]
        assert m["diverged_at_step"][0] in (100, 200) and m["rank_product"] == [None]
        assert m["rank_trace"][0][0] == cfg["d"] and m["rank_trace"][0][-1] is None
