"""Teleportation core against the papers' properties (teleport.md §5: P1, P2, P4, P5, P7, P8, P9, P14), in float64."""

import math

import pytest
import torch
from torch import nn
from torch.func import grad

import symdisc
from symdisc import SymdiscError, make_generator
from symdisc.errors import InputError
from symdisc.symmetry import hidden_layers_gl, linear_pair_gl
from symdisc.symmetry.base import Symmetry
from symdisc.teleport import (
    LossGuard,
    TeleportConfig,
    TeleportOptimizer,
    booth,
    ellipse,
    grad_norm,
    quadratic,
    rosenbrock,
    teleport,
)

TEST_FUNCTIONS = [booth(), rosenbrock(), ellipse(9.0), quadratic(torch.diag(torch.tensor([1.0, 3.0, 7.0])))]


def mlp_problem(dims="5,6,7,8", batch=4, form="pinv", seed=0, act="leakyrelu"):
    """The zoo MLP, all hidden layers' data-dependent GL actions (one ProductSymmetry), a batch and its loss."""
    arch = symdisc.zoo.get("mlp", dims=dims, act=act).to(torch.float64)
    g = make_generator(seed)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(batch, g)
    sym = hidden_layers_gl(arch, form)
    return arch, sym, theta, X, lambda th: 0.5 * (arch.forward(th, X) - Y).pow(2).sum()


def linear_problem(seed, algebra="gl"):
    """A 3-4-2 linear net, GL(4) (or O(4)) between its layers, a batch of 16 and its mean loss."""
    arch = symdisc.zoo.get("mlp", dims="3,4,2", act="linear").to(torch.float64)
    g = make_generator(seed)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(16, g)
    return linear_pair_gl(arch.layout, "W1", "W2", algebra=algebra), theta, lambda th: arch.batch_loss(th, X, Y), g


@pytest.mark.parametrize("tf", TEST_FUNCTIONS, ids=lambda t: t.name)
def test_test_function_actions_are_symmetries(tf):
    """P1, P2: L(g·x) = L(x); identity and composition exp(c₂)·(exp(c₁)·x) = exp(c₁ + c₂)·x (SO(n) is abelian
    only for n = 2, so the composition check uses collinear coefficients)."""
    sym, x = tf.symmetry, tf.x0() + 0.3
    gen = make_generator(1)
    for _ in range(5):
        c = sym.sample_element(gen, scale=1.0)
        assert abs(float(tf.loss(sym.act(c, x)) - tf.loss(x))) <= 1e-10 * max(1.0, float(tf.loss(x)))
        assert torch.allclose(sym.act(0 * c, x), x, atol=1e-14)
        assert torch.allclose(sym.act(0.7 * c, sym.act(0.3 * c, x)), sym.act(c, x), atol=1e-10)


def test_booth_ratio_rises_from_20_to_36():
    """P5 on Booth from (5, −5) with the paper's 10 steps of lr 1e-3: ‖∇L‖²/L goes 20 → 36 (the bound), L kept."""
    tf = booth()
    r = teleport(tf.symmetry, tf.x0(), tf.loss, config=TeleportConfig(steps=10, lr=1e-3))
    assert r.objective_before / r.loss_before == pytest.approx(20.0)
    assert r.objective_after / r.loss_after == pytest.approx(36.0, rel=1e-6)
    assert abs(r.loss_change) <= 1e-10
    values = [r.objective_before] + [e["objective"] for e in r.log]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))  # monotone ascent


@pytest.mark.parametrize("a", [0.25, 9.0])
def test_ellipse_reaches_the_bound(a):
    """P5/P11: on L = c the largest ‖∇L‖² is 4·max(1, a)·c."""
    tf = ellipse(a)
    r = teleport(tf.symmetry, tf.x0(), tf.loss, config=TeleportConfig(steps=50, lr=0.1))
    assert r.objective_after / r.loss_after == pytest.approx(4 * max(1.0, a), rel=1e-6)


def test_quadratic_one_teleport_is_enough():
    """P7, P8, P9: after one teleport w is a top eigenvector of A (so also closest to 0 on its level set); GD then stays
    on it: a later teleport finds nothing to gain; the gradient is a Hessian eigenvector with eigenvalue 2λ_max."""
    A = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)
    tf = quadratic(A, start=torch.tensor([1.0, -2.0, 0.5]))
    lam, vecs = torch.linalg.eigh(A)
    w = tf.x0()
    c = float(tf.loss(w))
    r = teleport(tf.symmetry, w, tf.loss, config=TeleportConfig(steps=50, lr=1e-2))
    assert r.objective_after == pytest.approx(4 * lam[-1].item() * c, rel=1e-8)
    w = r.theta
    assert abs(float(w @ vecs[:, -1]) / float(w.norm())) == pytest.approx(1.0, abs=1e-6)
    on_level_set = vecs @ (torch.sqrt(c / lam) * torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    assert float(w.norm()) == pytest.approx(float(on_level_set.norm()), rel=1e-6)
    g = grad(tf.loss)(w)
    assert torch.allclose(2 * A @ g, 2 * lam[-1] * g, rtol=1e-5, atol=1e-8)  # H∇L = λ∇L with H = 2A
    for _ in range(20):
        w = w - 0.05 * grad(tf.loss)(w)
        again = teleport(tf.symmetry, w, tf.loss, config=TeleportConfig(steps=5, lr=1e-2))
        assert again.objective_after <= again.objective_before * (1 + 1e-6)


def test_rosenbrock_teleport_ends_closer_to_the_minimum():
    """E1: GD lr 1e-3 for 1000 steps from (−1, −1), teleport every 100 steps (10 steps of lr 1e-1)."""
    tf = rosenbrock()
    dist = {}
    for tele in (False, True):
        x = tf.x0()
        for step in range(1000):
            if tele and step % 100 == 0:
                x = teleport(tf.symmetry, x, tf.loss, config=TeleportConfig(steps=10, lr=1e-1)).theta
            x = x - 1e-3 * grad(tf.loss)(x)
        dist[tele] = float((x - torch.tensor(tf.minimiser, dtype=torch.float64)).norm())
    assert dist[True] < dist[False]


def test_data_dependent_teleport_exact_below_width_and_gradient_transport():
    """P1 (action 2, batch ≤ width, exact) and P4: ∇L(g·θ) = J^{-T}∇L(θ) for the composite teleport move."""
    arch, sym, theta, X, loss = mlp_problem()
    assert sym.exactness(theta, X)["exact"] is True
    r = teleport(sym, theta, loss, X, TeleportConfig(steps=5, lr=1e-2, max_step=0.1))
    assert r.objective_after > 1.5 * r.objective_before
    assert abs(r.loss_change) <= 1e-9 * r.loss_before
    assert r.counts()["accepted"] == 5
    g0, g1 = grad(loss)(theta), grad(loss)(r.theta)
    assert torch.allclose(r.transport_covector(g0), g1, rtol=1e-8, atol=1e-10)


def test_transport_iterative_equals_dense():
    """Where J is near the identity (a linear pair action, small moves) the Richardson solve of Jᵀy = v agrees with
    the dense solve; where it is not (σ-inverse action: ‖J − I‖ ≫ 1) ``auto`` falls back to the dense solve."""
    gl, theta, loss, _ = linear_problem(2)
    r = teleport(gl, theta, loss, None, TeleportConfig(steps=3, lr=1e-2, max_step=0.1))
    g0 = grad(loss)(theta)
    assert torch.allclose(r.transport_covector(g0, "iterative"), r.transport_covector(g0, "solve"), rtol=1e-9,
                          atol=1e-11)
    arch, sym, theta, X, loss = mlp_problem(dims="4,4,4,3", batch=4, form="sigma_inverse")
    r = teleport(sym, theta, loss, X, TeleportConfig(steps=3, lr=1e-2, max_step=0.1))
    g0, g1 = grad(loss)(theta), grad(loss)(r.theta)
    assert torch.allclose(r.transport_covector(g0), g1, rtol=1e-7, atol=1e-9)


def test_orthogonal_action_leaves_the_gradient_norm():
    """P4 corollary: an orthogonal linear action (O(h) on a linear net) cannot change ‖∇L‖: teleport gains nothing."""
    so, theta, loss, g = linear_problem(3, algebra="so")
    for _ in range(3):
        moved = so.act(so.sample_element(g), theta)
        assert float(grad_norm(loss)(moved)) == pytest.approx(float(grad_norm(loss)(theta)), rel=1e-10)


def test_approximate_action_is_corrected_or_refused():
    """A batch larger than the width: the pinv action drifts; the guard corrects back to the level set (and says so)
    or, with correction off, refuses; the loss never moves beyond the tolerance; a warning names the condition."""
    arch, sym, theta, X, loss = mlp_problem(dims="5,3,3,2", batch=12)
    assert sym.exactness(theta, X)["exact"] is False
    guard = LossGuard(rtol=1e-8)
    with pytest.warns(UserWarning, match="not exact"):
        r = teleport(sym, theta, loss, X, TeleportConfig(steps=5, lr=1e-2, max_step=0.2, guard=guard))
    assert r.counts()["corrected"] >= 1
    assert abs(r.loss_change) <= guard.tolerance(r.loss_before)
    strict = LossGuard(rtol=1e-8, correct=False)
    with pytest.warns(UserWarning):
        r = teleport(sym, theta, loss, X, TeleportConfig(steps=5, lr=1e-2, max_step=0.2, guard=strict))
    assert r.counts()["corrected"] == 0 and r.log[-1]["status"] == "refused"
    assert abs(r.loss_change) <= strict.tolerance(r.loss_before)


def test_first_order_parameterisation_drifts_at_second_order():
    """The papers' I + T: θ + ξ_T(θ) changes the loss by O(‖T‖²) (first order: 0); the exp form does not move it."""
    gl, theta, loss, g = linear_problem(5)
    c = gl.sample_element(g)
    drifts = [abs(float(loss(theta + gl.field(t * c, theta)) - loss(theta))) for t in (1e-2, 5e-3)]
    assert drifts[0] / drifts[1] == pytest.approx(4.0, rel=0.05)
    assert abs(float(loss(gl.act(1e-2 * c, theta)) - loss(theta))) <= 1e-13
    r = teleport(gl, theta, loss, None, TeleportConfig(steps=5, lr=1e-2, parameterisation="first_order", max_step=0.2))
    assert r.objective_after > r.objective_before and abs(r.loss_change) <= LossGuard().tolerance(r.loss_before)


def test_discrete_symmetry_random_search_keeps_the_loss():
    """Permutations / sign flips: random search over elements; the loss is exactly kept."""
    arch = symdisc.zoo.get("mlp", dims="3,4,2", act="tanh").to(torch.float64)
    g = make_generator(8)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(8, g)
    flips = next(s for s in arch.known_symmetries() if s.name.startswith("sign-flip"))
    r = teleport(flips, theta, lambda th: arch.batch_loss(th, X, Y), None, TeleportConfig(samples=16))
    assert abs(r.loss_change) <= 1e-12 and r.objective_after >= r.objective_before


def test_learned_symmetry_from_disk_teleports():
    """A discovered artefact (zoo/gl3-linear-3-3-1, loaded without retraining) drives a teleport: the gradient
    grows while the guard holds the loss."""
    arch = symdisc.zoo.get("mlp", act="linear", dims="3,3,1").to(torch.float64)
    sym = symdisc.load("zoo/gl3-linear-3-3-1", arch=arch)
    g = make_generator(11)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(64, g)
    loss = lambda th: arch.batch_loss(th, X, Y)
    r = teleport(sym, theta, loss, X, TeleportConfig(steps=5, lr=1e-2, max_step=0.2))
    assert r.objective_after > 1.2 * r.objective_before
    assert abs(r.loss_change) <= LossGuard().tolerance(r.loss_before)
    assert r.exactness["exact"] is None  # learned: approximate, guarded


# ---- the optimizer wrapper -------------------------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.out = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.inp(x))


def module_setup(opt_name, policy, seed=0):
    torch.manual_seed(seed)
    net = TwoLayer().double()
    x, y = torch.randn(32, 3, dtype=torch.float64), torch.randn(32, 2, dtype=torch.float64)
    from symdisc.zoo import from_module
    arch = from_module(net, lambda b, gen: (x[:b], y[:b]), "mse")
    sym = linear_pair_gl(arch.layout, "inp.weight", "out.weight", "inp.bias")
    inner = {"sgd": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9),
             "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
             "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-2)}[opt_name](net.parameters())
    crit = lambda out, tgt: (out - tgt).pow(2).mean()
    opt = TeleportOptimizer(inner, sym, model=net, criterion=crit, batches=lambda g: (x, y), schedule=[3],
                            config=TeleportConfig(steps=3, lr=1e-2, max_step=0.1), state_policy=policy)
    return net, opt, x, y, crit


def train_steps(net, opt, x, y, crit, n):
    for _ in range(n):
        opt.zero_grad()
        crit(net(x), y).backward()
        opt.step()


@pytest.mark.parametrize("opt_name,key", [("sgd", "momentum_buffer"), ("adam", "exp_avg")])
def test_state_policies(opt_name, key):
    """transform: first moments become J^{-T} m (so a momentum equal to the gradient stays the gradient); keep: as
    is; reset: zero; second moments are always kept; the loss is unchanged by the teleport."""
    outcomes = {}
    for policy in ("transform", "keep", "reset"):
        net, opt, x, y, crit = module_setup(opt_name, policy)
        train_steps(net, opt, x, y, crit, 2)
        before = {k: v.clone() for k, v in opt.state[net.inp.weight].items() if torch.is_tensor(v)}
        m_before = opt.moment(key)
        loss_before = float(crit(net(x), y).detach())
        opt.teleport((x, y))
        assert abs(float(crit(net(x), y).detach()) - loss_before) <= 1e-10
        after = opt.state[net.inp.weight]
        for k in ("exp_avg_sq", "step"):
            if k in before:
                assert torch.equal(after[k], before[k])
        outcomes[policy] = (m_before, opt.moment(key), opt.events[-1])
    m0, m_keep, _ = outcomes["keep"]
    assert torch.equal(m_keep, m0)
    assert torch.count_nonzero(outcomes["reset"][1]) == 0
    m_transformed = outcomes["transform"][1]
    assert not torch.allclose(m_transformed, m0)


def test_transform_policy_matches_the_gradient_law():
    """With the momentum buffer set to ∇L(θ), transform makes it ∇L(θ') on the teleport batch (P4)."""
    net, opt, x, y, crit = module_setup("sgd", "transform")
    train_steps(net, opt, x, y, crit, 1)
    theta0 = opt.theta()
    loss = lambda th: opt.loss_fn(th, (x, y))
    g0 = grad(loss)(theta0)
    with torch.no_grad():
        for t, part in zip(opt.binding.tensors, opt.binding.split(g0), strict=True):
            opt.state[t]["momentum_buffer"].copy_(part)
    opt.teleport((x, y))
    assert torch.allclose(opt.moment("momentum_buffer"), grad(loss)(opt.theta()), rtol=1e-8, atol=1e-10)


def test_schedule_step_and_state_dict():
    net, opt, x, y, crit = module_setup("adagrad", "transform")
    train_steps(net, opt, x, y, crit, 5)
    assert [e["step"] for e in opt.events] == [3]
    state = opt.state_dict()
    net2, opt2, *_ = module_setup("adagrad", "transform")
    opt2.load_state_dict(state)
    assert opt2.steps_done == 5 and opt2.events == opt.events


def test_adagrad_metric_objective_uses_the_accumulator():
    config = TeleportConfig(objective="adagrad", steps=3, lr=1e-2, max_step=0.1)
    net, opt, x, y, crit = module_setup("adam", "keep")
    opt.config = config
    with pytest.raises(SymdiscError, match="accumulator"):
        opt.teleport((x, y))
    net, opt, x, y, crit = module_setup("adagrad", "keep")
    opt.config = config
    train_steps(net, opt, x, y, crit, 1)
    r = opt.teleport((x, y))
    G = opt.moment("sum")
    g = grad(lambda th: opt.loss_fn(th, (x, y)))(r.theta)
    assert r.objective_after == pytest.approx(float((g.pow(2) / (G + 1e-10).sqrt()).sum()), rel=1e-8)


def test_bad_input_leaves_training_state_intact():
    net, opt, x, y, crit = module_setup("sgd", "transform")
    arch = symdisc.zoo.get("mlp", dims="3,4,2", act="linear")
    wrong = linear_pair_gl(arch.layout, "W1", "W2")
    with pytest.raises(SymdiscError, match="does not have"):
        TeleportOptimizer(opt.optimizer, wrong, model=net, criterion=crit)
    with pytest.raises(SymdiscError, match="does not match"):
        TeleportOptimizer(opt.optimizer, wrong, params=list(net.parameters()), loss_fn=lambda th, b: th.sum())
    train_steps(net, opt, x, y, crit, 1)
    snapshot = [p.detach().clone() for p in net.parameters()], opt.moment("momentum_buffer").clone()
    bad = (x * math.nan, y)
    with pytest.raises(SymdiscError, match="non-finite"):
        opt.teleport(bad)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), snapshot[0], strict=True))
    assert torch.equal(opt.moment("momentum_buffer"), snapshot[1])
    with pytest.raises(SymdiscError, match="lr"):
        TeleportConfig(lr=-1.0).validate()


class _Mixed(Symmetry):
    """The same action in another generator basis: c ↦ base.act(M c), M invertible."""

    def __init__(self, base: Symmetry, M: torch.Tensor):
        super().__init__(base.layout)
        self.base, self.M, self.num_generators = base, M, base.num_generators

    def act(self, coeffs, theta, X=None):
        return self.base.act(self.M.to(coeffs) @ coeffs, theta, X)


def test_fields_metric_is_invariant_to_the_generator_basis():
    """metric="fields": c = lr·(ΞᵀΞ)⁻¹∇_cJ, a θ-step lr·P_Ξ∇J, so recombined and rescaled generators (M = 10·(I + R))
    teleport to the same θ' — a learned artefact's arbitrary scale does not matter — while the papers' coefficient
    ascent (ΞΞᵀ∇J) does not; max_step bounds the first-order displacement ‖Ξc‖ in θ's units."""
    arch = symdisc.zoo.get("mlp", dims="4,3,2", act="linear").to(torch.float64)  # Ξ of full column rank
    g = make_generator(4)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(16, g)
    loss = lambda th: arch.batch_loss(th, X, Y)  # noqa: E731
    gl = linear_pair_gl(arch.layout, "W1", "W2")
    k = gl.num_generators
    mixed = _Mixed(gl, 10 * (torch.eye(k, dtype=torch.float64) + 0.3 * torch.randn(k, k, generator=g,
                                                                                      dtype=torch.float64)))
    fields = TeleportConfig(steps=3, lr=1e-2, max_step=0.05, metric="fields")
    a, b = teleport(gl, theta, loss, None, fields), teleport(mixed, theta, loss, None, fields)
    assert a.objective_after > a.objective_before and a.counts() == b.counts()
    assert torch.allclose(a.theta, b.theta, rtol=1e-8, atol=1e-10)
    c0, before = a.moves[0]
    assert float(gl.field(c0, before).norm()) <= 0.05 * (1 + 1e-9)
    coefficients = TeleportConfig(steps=3, lr=1e-2, max_step=0.05)
    c, d = teleport(gl, theta, loss, None, coefficients), teleport(mixed, theta, loss, None, coefficients)
    assert (c.theta - d.theta).norm() > 1e-3 * (c.theta - theta).norm()
    with pytest.raises(InputError, match="unknown teleport metric"):
        teleport(gl, theta, loss, None, TeleportConfig(metric="euclid"))
