"""The closed-form fields of issue 14 (data-dependent GL through g = I + M; a product's field as the sum of its
factors') equal the jvp through the finite action, and skipping the unused drift changes no teleport."""

import math

import pytest
import torch

from symdisc import make_generator, zoo
from symdisc.symmetry import DataDependentGL, ProductSymmetry, hidden_layers_gl
from symdisc.symmetry.base import Symmetry
from symdisc.teleport import routine
from symdisc.teleport.guard import LossGuard
from symdisc.teleport.routine import TeleportConfig, teleport


def problem(form):
    arch = zoo.get("teleport-regression").to(dtype=torch.float64)
    g = make_generator(3)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(4, g)
    return arch, hidden_layers_gl(arch, form), theta, X, Y


@pytest.mark.parametrize("form", ["pinv", "sigma_inverse"])
def test_closed_form_fields_equal_the_jvp_through_the_action(form):
    arch, sym, theta, X, _ = problem(form)
    c = torch.randn(sym.num_generators, generator=make_generator(4), dtype=torch.float64)
    reference = Symmetry.field(sym, c, theta, X)  # a jvp through the product's finite action (expm inside)
    torch.testing.assert_close(sym.field(c, theta, X), reference, rtol=1e-11, atol=1e-12)
    for f, cf in zip(sym.factors, sym.split(c), strict=True):
        assert isinstance(f, DataDependentGL)
        torch.testing.assert_close(f.field(cf, theta, X), Symmetry.field(f, cf, theta, X), rtol=1e-11, atol=1e-12)
    assert ProductSymmetry.closed_form_field and DataDependentGL.closed_form_field


def test_skipping_the_unused_drift_changes_no_teleport():
    arch, sym, theta, X, Y = problem("pinv")
    loss = lambda th: arch.batch_loss(th, X, Y)
    cfg = TeleportConfig(steps=4, lr=1e-3, parameterisation="first_order", monotone=False,
                         guard=LossGuard(rtol=math.inf, correct=False))
    fast = teleport(sym, theta, loss, X, cfg).theta
    routine.SKIP_UNUSED_DRIFT = False
    try:
        slow = teleport(sym, theta, loss, X, cfg).theta
    finally:
        routine.SKIP_UNUSED_DRIFT = True
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-13)
    assert float((fast - theta).norm()) > 0
