"""The teleport's fast paths of issue 14 (symdisc.teleport.fastpaths) compute what the paths they replaced
computed: closed-form fields and adjoints equal the jvp / vjp through the finite action, σ' in closed form equals
autograd's, the gradient norms' own value_and_grad equals torch.func's, and a teleport with every fast path on
ends at the same θ as with all of them off (guard off and on, both parameterisations, both metrics)."""

import math

import pytest
import torch
from torch.func import grad_and_value, jacrev

from symdisc import make_generator, zoo
from symdisc.activations import ACTIVATIONS
from symdisc.symmetry import DataDependentGL, hidden_layers_gl
from symdisc.symmetry.base import Symmetry
from symdisc.teleport import adagrad_norm, fastpaths, grad_norm
from symdisc.teleport.guard import LossGuard
from symdisc.teleport.objectives import value_and_grad
from symdisc.teleport.routine import TeleportConfig, teleport


def problem(form, act="leakyrelu", bias=True):
    arch = zoo.get("mlp", dims="3,5,4,2", act=act, bias=bias).to(dtype=torch.float64)
    g = make_generator(3)
    theta = arch.sample_params(g)
    X = torch.randn(4, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(4, 2, generator=g, dtype=torch.float64)
    return arch, hidden_layers_gl(arch, form), theta, X, Y


@pytest.mark.parametrize("form,act,bias", [("pinv", "leakyrelu", True), ("pinv", "tanh", False),
                                           ("pinv", "gelu", True), ("sigma_inverse", "leakyrelu", True)])
def test_closed_form_fields_and_adjoints_equal_the_transforms_through_the_action(form, act, bias):
    arch, sym, theta, X, _ = problem(form, act, bias)
    c = torch.randn(sym.num_generators, generator=make_generator(4), dtype=torch.float64)
    v = torch.randn(theta.shape[0], generator=make_generator(5), dtype=torch.float64)
    with fastpaths.disabled():
        field, pullback = sym.field(c, theta, X), sym.pullback(v, theta, X)  # jvp / vjp through expm
    torch.testing.assert_close(sym.field(c, theta, X), field, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(sym.pullback(v, theta, X), pullback, rtol=1e-11, atol=1e-12)
    tmap = sym.linearize(theta, X)
    torch.testing.assert_close(tmap.field(c), field, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(tmap.pullback(v), pullback, rtol=1e-11, atol=1e-12)
    for f, cf in zip(sym.factors, sym.split(c), strict=True):
        assert isinstance(f, DataDependentGL)
        torch.testing.assert_close(f.field(cf, theta, X), Symmetry.field(f, cf, theta, X), rtol=1e-11, atol=1e-12)
        plain = DataDependentGL(f.layout, f.layer_input, f.w_in, f.w_out, f.sigma, b_in=f.b_in,
                                sigma_inv=f.sigma_inv, form=f.form)  # σ' by a jvp instead of the closed form
        torch.testing.assert_close(plain.field(cf, theta, X), f.field(cf, theta, X), rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(plain.pullback(v, theta, X), f.pullback(v, theta, X), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.derivative is not None])
def test_closed_form_activation_derivatives(name):
    act = ACTIVATIONS[name]
    z = torch.linspace(-3, 3, 61, dtype=torch.float64) + 1e-3  # off the kinks
    expected = torch.diagonal(jacrev(act.fn)(z))
    torch.testing.assert_close(act.derivative(z), expected, rtol=1e-12, atol=1e-14)


def test_gradient_norms_value_and_grad_equals_torch_func():
    arch, _, theta, X, Y = problem("pinv")
    loss = lambda th: arch.batch_loss(th, X, Y)
    G = torch.rand(theta.shape[0], generator=make_generator(6), dtype=torch.float64)
    for objective in (grad_norm(loss), adagrad_norm(loss, G)):
        g_ref, v_ref = grad_and_value(objective)(theta)
        for fn in (objective.value_and_grad, lambda th, o=objective: value_and_grad(lambda t: o(t), th)):
            value, g = fn(theta)
            torch.testing.assert_close(value, v_ref, rtol=1e-13, atol=0)
            torch.testing.assert_close(g, g_ref, rtol=1e-11, atol=1e-14)
    affine = grad_norm(lambda th: th.sum())  # ∇L constant: ∇J = 0, not an autograd error
    value, g = affine.value_and_grad(theta)
    assert float(value) == theta.shape[0] and not g.any()


CONFIGS = {
    "first_order, guard off": dict(parameterisation="first_order", monotone=False,
                                   guard=LossGuard(rtol=math.inf, correct=False)),
    "first_order, guard on": dict(parameterisation="first_order", monotone=False),
    "exp, monotone": dict(parameterisation="exp"),
    "first_order, fields metric": dict(parameterisation="first_order", monotone=False, metric="fields"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_fast_paths_change_no_teleport(name):
    arch, sym, theta, X, Y = problem("pinv")
    loss = lambda th: arch.batch_loss(th, X, Y)
    cfg = TeleportConfig(steps=4, lr=1e-2, max_step=0.05, **CONFIGS[name])
    fast = teleport(sym, theta, loss, X, cfg)
    with fastpaths.disabled():
        slow = teleport(sym, theta, loss, X, cfg)
    assert DataDependentGL.closed_form_field  # restored
    moved = float((slow.theta - theta).norm())
    assert moved > 1e-3 * float(theta.norm())
    assert float((fast.theta - slow.theta).norm()) <= 1e-10 * moved
    assert [e["status"] for e in fast.log] == [e["status"] for e in slow.log]
    assert fast.objective_after == pytest.approx(slow.objective_after, rel=1e-10)
