"""The two data-dependent GL actions of teleportation (teleport.md §1.4.3): exact in their regime, and
reported (not silently wrong) outside it."""

import pytest
import scipy.linalg
import torch

from symdisc import known_symmetries, make_generator, zoo
from symdisc.symmetry import DataDependentGL

from .conftest import draw

# hidden widths 6 and 5 after input 4: pinv exact iff B ≤ h_j; σ-inverse exact iff B ≤ h_{j−1}
ARCH = zoo.get("mlp", dims="4,6,5,2", act="leakyrelu", bias=True)


def actions(arch):
    return [s for s in known_symmetries(arch) if isinstance(s, DataDependentGL)]


def test_both_forms_on_every_hidden_layer():
    forms = sorted((s.w_in, s.form) for s in actions(ARCH))
    assert forms == [("W1", "pinv"), ("W1", "sigma_inverse"), ("W2", "pinv"), ("W2", "sigma_inverse")]
    # σ-inverse needs a bijective σ: absent for tanh
    assert {s.form for s in actions(zoo.get("mlp", dims="4,6,2", act="tanh"))} == {"pinv"}


@pytest.mark.parametrize("index", range(4))
def test_exact_when_batch_small(index):
    arch, theta, X, Y = draw(ARCH, 4, seed=index)
    sym = actions(arch)[index]
    report = sym.exactness(theta, X)
    assert report["exact"], report
    g = sym.sample_element(make_generator(index), scale=0.3)
    moved = sym.act(g, theta, X)
    assert (moved - theta).norm() > 1e-3
    assert (arch.forward(moved, X) - arch.forward(theta, X)).abs().max() <= 1e-10
    grad = torch.func.grad(lambda th: arch.batch_loss(th, X, Y))(theta)
    xi = sym.tangents(theta, X)
    assert ((grad @ xi).abs() / (grad.norm() * xi.norm(dim=0)).clamp_min(1e-300)).max() <= 1e-10


@pytest.mark.parametrize("index", range(4))
def test_drift_reported_when_batch_too_large(index):
    arch, theta, X, _ = draw(ARCH, 12, seed=index)
    sym = actions(arch)[index]
    report = sym.exactness(theta, X)
    assert not report["exact"] and "batch 12" in report["condition"]
    moved = sym.act(sym.sample_element(make_generator(index), scale=0.3), theta, X)
    assert (arch.forward(moved, X) - arch.forward(theta, X)).abs().max() > 1e-6


def test_data_dependent_is_local_to_the_batch():
    """Exact on X, not on other inputs X' (a data-dependent, not functional, symmetry)."""
    arch, theta, X, _ = draw(ARCH, 4, seed=0)
    sym = actions(arch)[0]
    moved = sym.act(sym.sample_element(make_generator(0), scale=0.3), theta, X)
    X2, _ = arch.sample_data(4, make_generator(99))
    assert (arch.forward(moved, X2) - arch.forward(theta, X2)).abs().max() > 1e-3


def _gl(sym, c):
    return torch.linalg.matrix_exp(torch.einsum("k,kab->ab", c, sym.generators()))


@pytest.mark.parametrize("batch", [2, 3])
def test_sigma_inverse_is_a_group_action_with_complement(batch):
    """Action 1 with the complement kept: a(I, θ) = θ and a(g2, a(g1, θ)) = a(g2 g1, θ) for any
    full-rank batch ≤ h_{j−1} (here 3), where the literal form fails the identity for batch < 3."""
    arch = zoo.get("mlp", dims="3,4,2", act="leakyrelu", bias=True)
    arch, theta, X, _ = draw(arch, batch, seed=1)
    sym, literal = (next(s for s in actions(arch) if s.form == "sigma_inverse"),
                    DataDependentGL(arch.layout, lambda th, x: x, "W1", "W2", actions(arch)[0].sigma, b_in="b1",
                                    sigma_inv=lambda y: torch.where(y > 0, y, y / 0.1), form="sigma_inverse",
                                    complement=False))
    assert sym.exactness(theta, X)["group_axioms"]
    zero = torch.zeros(16, dtype=torch.float64)
    assert torch.allclose(sym.act(zero, theta, X), theta, atol=1e-10)
    assert literal.exactness(theta, X)["identity"] == (batch == 3)
    assert torch.allclose(literal.act(zero, theta, X), theta, atol=1e-10) == (batch == 3)
    gen = make_generator(3)
    c1, c2 = sym.sample_element(gen, 0.2), sym.sample_element(gen, 0.2)
    twice = sym.act(c2, sym.act(c1, theta, X), X)
    log_g = torch.from_numpy(scipy.linalg.logm((_gl(sym, c2) @ _gl(sym, c1)).numpy()).real)
    once = sym.act(log_g.reshape(-1), theta, X)
    # both map the hidden activations H_1 ↦ g2 g1 H_1
    H = lambda th: torch.nn.functional.leaky_relu(X @ arch.layout.unflatten(th)["W1"].T
                                                  + arch.layout.unflatten(th)["b1"], 0.1)
    assert torch.allclose(H(twice), H(theta) @ (_gl(sym, c2) @ _gl(sym, c1)).T, atol=1e-9)
    assert torch.allclose(once, twice, atol=1e-8)


def test_pinv_literal_form_is_not_the_identity_below_width():
    """The papers' action 2 projects W_{j+1} at g = I when batch < width; the default keeps it."""
    arch, theta, X, _ = draw(ARCH, 4, seed=2)
    default = actions(arch)[0]
    literal = DataDependentGL(arch.layout, default.layer_input, "W1", "W2", default.sigma, b_in="b1",
                              complement=False)
    zero = torch.zeros(36, dtype=torch.float64)
    assert torch.allclose(default.act(zero, theta, X), theta, atol=1e-10)
    assert (literal.act(zero, theta, X) - theta).norm() > 1e-3
    assert not literal.exactness(theta, X)["identity"] and default.exactness(theta, X)["identity"]
    moved = literal.act(literal.sample_element(make_generator(0), 0.3), theta, X)
    assert (arch.forward(moved, X) - arch.forward(theta, X)).abs().max() <= 1e-10


def test_data_dependent_needs_X():
    arch, theta, _, _ = draw(ARCH, 4)
    with pytest.raises(Exception, match="data-dependent"):
        actions(arch)[0].act(torch.zeros(36), theta)
