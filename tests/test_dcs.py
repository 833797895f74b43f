"""DCS (symdisc.dcs): the reparameterisations against their closed forms and dense references (dcs.md §6, §8)."""

import math

import pytest
import torch
from torch import nn

from symdisc import make_generator
from symdisc.dcs import DCS, Basis, DCSOptimizer, Group, LowRank, Sparse, constraint_from_projection
from symdisc.dcs.lasso import critical_alpha, fit_dcs, lasso_check, lasso_problem, least_squares, minimize
from symdisc.errors import InputError
from symdisc.optim import Schedule

F64 = torch.float64


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=make_generator(seed, 0), dtype=F64)


def orthonormal(n, r, seed=0):
    return torch.linalg.qr(rand(n, r, seed=seed)).Q


def constraints():
    mask = torch.tensor([True, False] * 6)
    return {"sparse": Sparse(12, mask), "spred": Sparse(12), "basis": Basis(orthonormal(12, 4)),
            "group": Group([0, 0, 0, 1, 1, 2, 2, 2, 2, -1, -1, 3]), "lowrank": LowRank(3, 4)}


def reference_regulariser(name, c, theta):
    if name in ("sparse", "spred"):
        return 2 * theta[c.mask].abs().sum()
    if name == "basis":
        return 2 * (c.O.T @ theta).abs().sum()
    if name == "group":
        g = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, -1, -1, 3])
        return 2 * sum(theta[g == j].norm() for j in range(4))
    return 2 * torch.linalg.matrix_norm(theta.reshape(3, 4), ord="nuc")


@pytest.mark.parametrize("name", list(constraints()))
def test_balanced_init_is_a_right_inverse_with_the_minimal_penalty(name):
    """T(init(θ)) = θ, ‖z_pen‖² = R(θ) (the closed form), and random latents with the same T never do better."""
    c, theta = constraints()[name], rand(12, seed=1)
    z = c.init(theta)
    assert {k: tuple(t.shape) for k, t in z.items()} == c.latent_shapes()
    torch.testing.assert_close(c.transform(z), theta, rtol=0, atol=1e-14)
    ref = reference_regulariser(name, c, theta)
    torch.testing.assert_close(c.penalty(z), ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(c.induced(theta), ref, rtol=1e-12, atol=0)
    g = make_generator(2, 0)  # an unbalanced factorisation of the same θ costs more
    for _ in range(5):
        moved = c.init(theta)
        for scaled, counter, rule in c.pairs():
            s = torch.exp(torch.randn(moved[scaled].shape[-1] if rule == "column" else moved[scaled].shape[0],
                                      generator=g, dtype=F64))
            moved[scaled] = moved[scaled] * s
            moved[counter] = moved[counter] / (s[c.index] if rule == "group" else s)
        torch.testing.assert_close(c.transform(moved), theta, rtol=0, atol=1e-12)
        assert float(c.penalty(moved)) >= float(ref) * (1 - 1e-12)


@pytest.mark.parametrize("name", list(constraints()))
def test_the_mirror_keeps_T_and_the_penalty(name):
    """D1 / P11: (w, u, v) ↦ (Rw, Ru, v) leaves T(z) and ‖z_pen‖² unchanged at random latents."""
    c = constraints()[name]
    g = make_generator(3, 0)
    z = {k: torch.randn(s, generator=g, dtype=F64) for k, s in c.latent_shapes().items()}
    m = c.mirror(z)
    assert any(not torch.equal(m[k], z[k]) for k in z)
    torch.testing.assert_close(c.transform(m), c.transform(z), rtol=0, atol=1e-14)
    torch.testing.assert_close(c.penalty(m), c.penalty(z))


def test_the_papers_form_is_not_onto_for_a_non_diagonal_projection():
    """D3 / P6': eq. 7 with P = nnᵀ, n = (1, −1)/√2 gives nᵀT ≡ 0; the basis-aware form reaches every θ."""
    n = torch.tensor([[1.0], [-1.0]], dtype=F64) / math.sqrt(2)
    paper, aware = Basis(n, form="paper"), Basis(n)
    g = make_generator(4, 0)
    worst = max(abs(float(n[:, 0] @ paper.transform({k: torch.randn(2, generator=g, dtype=F64)
                                                        for k in ("w", "u", "v")}))) for _ in range(200))
    assert worst < 1e-14
    theta = torch.tensor([0.3, -0.7], dtype=F64)
    torch.testing.assert_close(aware.transform(aware.init(theta)), theta, rtol=0, atol=1e-15)
    assert abs(float(n[:, 0] @ aware.transform(aware.init(theta)))) > 0.5


def test_projection_to_constraint_and_bad_projections():
    P = torch.diag(torch.tensor([1.0, 0.0, 1.0], dtype=F64))
    c = constraint_from_projection(P)
    assert isinstance(c, Sparse) and c.mask.tolist() == [True, False, True]
    basis = orthonormal(5, 2)
    b = constraint_from_projection(basis @ basis.T)
    assert isinstance(b, Basis) and b.r == 2
    torch.testing.assert_close(b.O @ b.O.T, basis @ basis.T, rtol=0, atol=1e-12)
    for bad, what in [(torch.tensor([[1.0, 0.5], [0.5, 1.0]]), "not an orthogonal projection"),
                      (torch.tensor([[1.0, 1.0], [0.0, 0.0]]), "not an orthogonal projection"),
                      (torch.ones(2, 3), "square"), (torch.zeros(3, 3), "constrains nothing")]:
        with pytest.raises(InputError, match=what):
            constraint_from_projection(bad)
    with pytest.raises(InputError, match="orthonormal"):
        Basis(torch.ones(3, 2, dtype=F64))


def test_lasso_check_matches_sklearn_and_the_critical_alpha():
    """P7, P9 (issue 13): the objective to 1e-5 relative; θ_M = 0 at 1.2·α_crit and not at 0.8·α_crit."""
    out = lasso_check(seed=3)
    assert abs(out["relative_objective_gap"]) < 1e-5
    assert out["nonzero_dcs"] == out["nonzero_sklearn"] < out["n_features"]
    assert out["masked_max_above"] < 1e-10
    assert out["masked_max_below"] > 1e-3


def test_sparsity_is_monotone_in_alpha_and_free_coordinates_stay_free():
    """P8: the number of nonzero masked coordinates does not grow with α; unmasked ones are never zeroed."""
    X, y = lasso_problem(120, 16, seed=5, support=6)
    mask = torch.arange(16) < 12
    counts = []
    for alpha in (0.0, 0.02, 0.1, 0.4, 2.0):
        th = fit_dcs(X, y, alpha, mask)
        counts.append(int((th[mask].abs() > 1e-6).sum()))
        assert bool((th[~mask].abs() > 1e-6).all())
    assert counts == sorted(counts, reverse=True) and counts[0] == 12 and counts[-1] < counts[0]


def ista(X, y, lam, prox, steps=20000):
    """Proximal gradient on L(θ) + λ·Ω(θ) (the dense reference)."""
    lr = 1 / float(torch.linalg.matrix_norm(X, 2) ** 2 / X.shape[0])
    th = torch.zeros(X.shape[1], dtype=F64)
    for _ in range(steps):
        th = prox(th + lr * X.T @ (y - X @ th) / X.shape[0], lr * lam)
    return th


def lbfgs(dcs, X, y):
    return minimize(dcs, lambda th: least_squares(X, y, th))


def test_basis_aware_and_group_gate_dcs_solve_their_lassos():
    """P7 for general O (2α‖Oᵀθ‖₁) and the group gate (group lasso 2αΣ‖θ_G‖), against proximal gradient."""
    X, y = lasso_problem(100, 8, seed=6, support=3)
    alpha = 0.1
    basis = orthonormal(8, 3, seed=7)
    Q = torch.linalg.qr(torch.cat([basis, rand(8, 5, seed=8)], 1)).Q  # Q[:, :3] spans O (up to signs)

    def prox_basis(th, t):
        c = Q.T @ th
        c[:3] = torch.sign(c[:3]) * (c[:3].abs() - t).clamp(min=0)
        return Q @ c

    ref = ista(X, y, 2 * alpha, prox_basis)
    got = lbfgs(DCS.flat(torch.linalg.lstsq(X, y[:, None]).solution[:, 0], Basis(basis), alpha), X, y)
    f = lambda th: float(least_squares(X, y, th) + 2 * alpha * (basis.T @ th).abs().sum())
    assert abs(f(got) - f(ref)) <= 1e-8 * f(ref)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)

    groups = torch.tensor([0, 0, 1, 1, 1, 2, 2, -1])
    alpha = 0.3

    def prox_group(th, t):
        out = th.clone()
        for j in range(3):
            s = th[groups == j]
            out[groups == j] = s * (1 - t / s.norm()).clamp(min=0) if float(s.norm()) > 0 else s
        return out

    ref = ista(X, y, 2 * alpha, prox_group)
    got = lbfgs(DCS.flat(torch.linalg.lstsq(X, y[:, None]).solution[:, 0], Group(groups), alpha), X, y)
    f = lambda th: float(least_squares(X, y, th) + 2 * alpha * sum(th[groups == j].norm() for j in range(3)))
    assert abs(f(got) - f(ref)) <= 1e-8 * f(ref)
    dead = [j for j in range(3) if float(ref[groups == j].norm()) < 1e-8]
    assert dead and all(float(got[groups == j].norm()) < 1e-8 for j in dead)


def test_lowrank_factorisation_solves_the_nuclear_norm_problem():
    """min ½‖Θ − M‖² + 2α‖Θ‖_* is singular-value soft-thresholding: the factorisation reaches it."""
    M = rand(5, 4, seed=9)
    alpha = 0.4
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    ref = (U * (S - 2 * alpha).clamp(min=0)) @ Vh
    dcs = DCS.flat(M.reshape(-1), LowRank(5, 4), alpha)
    got = minimize(dcs, lambda th: 0.5 * (th.reshape(5, 4) - M).pow(2).sum()).reshape(5, 4)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    kept = int((S > 2 * alpha).sum())
    assert dcs.report()["theta"]["constrained"] - dcs.report()["theta"]["constrained_zero"] == kept < 4


def test_absorbing_state():
    """P10: plain SGD from w_i = u_i = 0 keeps them exactly 0; from w_i = 0, u_i ≠ 0 it leaves."""
    X, y = lasso_problem(50, 4, seed=10, support=4)
    for u0, stays in ((0.0, True), (0.5, False)):
        dcs = DCS.flat(torch.ones(4, dtype=F64), "sparse", 0.01)
        lat = dcs.blocks[0].latents()
        with torch.no_grad():
            lat["w"][0] = 0.0
            lat["u"][0] = u0
        opt = DCSOptimizer(torch.optim.SGD(dcs.model.parameters(), lr=0.05), dcs)
        for _ in range(10):
            opt.zero_grad()
            least_squares(X, y, dcs.theta_flat()).backward()
            opt.step()
        w0 = float(lat["w"][0].detach())
        assert (w0 == 0.0 and float(lat["u"][0].detach()) == 0.0) if stays else abs(w0) > 1e-3


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def test_module_dcs_keeps_the_function_and_materializes_a_plain_model():
    net = mlp()
    x = rand(10, 6, seed=11)
    before = net(x).detach()
    dcs = DCS(net, {"0.weight": "sparse", "0.bias": "sparse", "2.weight": "lowrank"}, alpha=1e-3)
    torch.testing.assert_close(net(x), before, rtol=0, atol=1e-12)  # balanced init: same function
    assert "0.weight" not in dict(net.named_parameters())
    assert set(dcs.latent_parameters(penalised=False)) == {"0.parametrizations.weight.original2",
                                                           "0.parametrizations.bias.original2"}
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(20):
        opt.zero_grad()
        ((net(x) - 1) ** 2).mean().add(dcs.penalty()).backward()
        opt.step()
    out = net(x).detach()
    with torch.no_grad():  # materializing under no_grad still gives Parameters
        mat = dcs.materialize(tol=1e-12)
    assert all(isinstance(p, nn.Parameter) for p in mat.model.parameters())
    assert set(dict(mat.model.named_parameters())) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    torch.testing.assert_close(mat.model(x), out, rtol=0, atol=1e-10)
    torch.testing.assert_close(net(x), out, rtol=0, atol=0)  # the handle's model is untouched
    assert not any("parametrizations" in n for n, _ in mat.model.named_parameters())
    with torch.no_grad():  # a weight that is mostly zero is stored sparse (CSR) where nn.Linear consumes it
        dcs.blocks[0].latents()["w"][6:] = 0.0
    sparse = dcs.materialize(tol=1e-12, sparse=True)
    assert sparse.report["0.weight"]["stored"] == "sparse_csr" and sparse.report["2.weight"]["stored"] == "dense"
    assert sparse.model[0].weight.layout == torch.sparse_csr
    torch.testing.assert_close(sparse.model(x), net(x).detach(), rtol=0, atol=1e-12)
    dcs.remove()
    assert set(dict(net.named_parameters())) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_optimizer_penalty_gradient_equals_the_penalised_loss():
    """DCSOptimizer's added gradient = autograd of α‖z_pen‖² (same trajectory as loss + dcs.penalty())."""
    x = rand(16, 6, seed=12)
    runs = []
    for through_optimizer in (True, False):
        net = mlp()
        dcs = DCS(net, {"0.weight": "group", "2.weight": "sparse"}, alpha=0.05)
        inner = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        opt = DCSOptimizer(inner, dcs) if through_optimizer else inner
        for _ in range(15):
            opt.zero_grad()
            loss = net(x).pow(2).mean()
            (loss if through_optimizer else loss + dcs.penalty()).backward()
            opt.step()
        runs.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=1e-12)


def test_alpha_schedule_and_rebalancing_moves():
    """α(t) is applied per step; a rebalance keeps the function, lowers the penalty to R(θ) and transports
    momentum as v / diag J; state_dict round-trips the step count and the events."""
    x = rand(16, 6, seed=13)
    net = mlp()
    dcs = DCS(net, {"0.weight": "sparse", "2.weight": "sparse"})
    with torch.no_grad():  # unbalanced factors of the same θ (SGD keeps w² − u² up to (1 − η²g²) factors)
        for b in dcs.blocks:
            b.latents()["w"].mul_(2.0)
            b.latents()["u"].div_(2.0)
    seen = []
    opt = DCSOptimizer(torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), dcs,
                       alpha=lambda t: seen.append(t) or 0.01 * (t + 1), rebalance=Schedule.at([5]))
    for _ in range(5):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
    assert seen == [0, 1, 2, 3, 4] and dcs.alpha == pytest.approx(0.05)
    event = opt.events[0]
    assert event["step"] == 5 and event["penalty_after"] < event["penalty_before"]
    torch.testing.assert_close(torch.tensor(event["penalty_after"], dtype=F64),
                               torch.tensor(dcs.induced() / dcs.alpha, dtype=F64), rtol=1e-10, atol=0)
    out = net(x).detach()
    z_before = opt.theta()
    buf_before = opt.moment("momentum_buffer")
    opt.rebalance()  # already balanced: nothing moves; force an imbalance and check the transport
    with torch.no_grad():
        for b in dcs.blocks:
            lat = b.latents()
            lat["w"].mul_(3.0)
            lat["u"].div_(3.0)
    z_forced = opt.theta()
    opt.rebalance()
    torch.testing.assert_close(net(x), out, rtol=0, atol=1e-12)
    torch.testing.assert_close(opt.theta(), z_before, rtol=1e-10, atol=1e-14)
    scales = opt.theta() / z_forced  # J = diag(1/3 on w, 3 on u): covectors map to v / diag J
    torch.testing.assert_close(opt.moment("momentum_buffer"), buf_before / scales, rtol=1e-10, atol=1e-14)
    state = opt.state_dict()
    fresh = DCSOptimizer(torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), dcs, alpha=0.01)
    fresh.load_state_dict(state)
    assert fresh.steps_done == 5 and len(fresh.events) == 3


def test_bad_input_is_one_clear_line():
    net = mlp()
    cases = [
        (lambda: DCS(net, {"0.weight": "sparse"}, alpha=-1.0), "α must be a finite number ≥ 0"),
        (lambda: DCS(net, {"0.weight": "sparse"}, alpha=float("nan")), "α must be a finite number ≥ 0"),
        (lambda: DCS(net, {"0.weight": Sparse(5)}), "has 48 entries"),
        (lambda: DCS(net, {"0.weight": LowRank(4, 4)}), "has 48 entries"),
        (lambda: DCS(net, {"0.bias": "lowrank"}), "needs a matrix"),
        (lambda: DCS(net, {"0.weight": "dense"}), "unknown constraint 'dense'"),
        (lambda: DCS(net, {"3.weight": "sparse"}), "no parameter '3.weight'"),
        (lambda: DCS(net, {}), "at least one"),
        (lambda: Sparse(4, [True, False]), "has 2 entries, the block 4"),
        (lambda: Sparse(3, [0, 0, 0]), "selects no coordinate"),
        (lambda: Group(torch.tensor([0.5, 1.0])), "integer ids"),
        (lambda: LowRank(3, 4, rank=5), "rank"),
        (lambda: DCS.flat(torch.ones(2, 2)), "flat θ"),
        (lambda: Sparse(4).init(torch.ones(3, dtype=F64)), "on 4 numbers"),
        (lambda: lasso_check(alpha=0.0), "α > 0"),
    ]
    for make, message in cases:
        with pytest.raises(InputError, match=message) as info:
            make()
        assert "\n" not in str(info.value)
    shared = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    shared[2].weight = shared[0].weight  # tied weights (as an embedding and a language-model head)
    with pytest.raises(InputError, match="is tied to 2.weight"):
        DCS(shared, {"0.weight": "sparse"})
    DCS(net, {"0.weight": "sparse"})
    with pytest.raises(InputError, match="already parametrized"):
        DCS(net, {"0.weight": "group"})
    with pytest.raises(InputError, match="finite number"):
        DCSOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), DCS(net, {"2.weight": "sparse"}), alpha=-0.1)


def test_critical_alpha_is_the_kkt_bound():
    """2.1 of dcs.md §9: with E[xxᵀ] = I, coordinate i is zero iff 2α ≥ |E[x_i y]| (whitened design)."""
    X = torch.linalg.qr(rand(64, 4, seed=14)).Q * 8  # XᵀX/N = I
    y = rand(64, seed=15)
    corr = X.T @ y / 64
    mask = torch.ones(4, dtype=torch.bool)
    assert critical_alpha(X, y, mask) == pytest.approx(float(corr.abs().max()) / 2, rel=1e-12)
    alpha = float(corr.abs().sort().values[1]) / 2 * 1.01  # between the 2nd and 3rd |correlation|
    th = fit_dcs(X, y, alpha, mask)
    expected = torch.sign(corr) * (corr.abs() - 2 * alpha).clamp(min=0)
    torch.testing.assert_close(th, expected, rtol=0, atol=1e-8)


def test_the_balanced_start_locks_signs_and_the_spread_start_frees_them():
    """A balanced scalar pair lies on the swap-fixed line w = ±u: gradient methods keep it there, so θ_i cannot
    cross 0 (it stalls at the saddle θ_i = 0); the default spread start reaches the other sign.  Both starts are
    exact right inverses (same function)."""
    target = torch.tensor([-1.0, 2.0, -0.5], dtype=F64)
    theta0 = torch.tensor([0.5, 1.0, 0.3], dtype=F64)  # coordinates 0 and 2 must change sign
    ends = {}
    for init in ("balanced", "spread"):
        dcs = DCS.flat(theta0, "sparse", 0.0, init=init)
        torch.testing.assert_close(dcs.theta_flat().detach(), theta0, rtol=0, atol=1e-15)
        opt = DCSOptimizer(torch.optim.SGD(dcs.model.parameters(), lr=0.05), dcs)
        for _ in range(400):
            opt.zero_grad()
            (dcs.theta_flat() - target).pow(2).sum().backward()
            opt.step()
        ends[init] = dcs.theta_flat().detach()
    assert float(ends["balanced"][0].abs()) < 1e-6 and float(ends["balanced"][2].abs()) < 1e-6  # stuck at 0
    torch.testing.assert_close(ends["spread"], target, rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="unknown init"):
        DCS.flat(theta0, "sparse", init="random")
    with pytest.raises(InputError, match="spread must be"):
        DCS.flat(theta0, "sparse", spread=-1.0)
