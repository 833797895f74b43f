"""Known symmetries against the papers (discovery.md §6 B1–B3), in float64."""

import math

import pytest
import torch

from symdisc import known_symmetries, make_generator, zoo
from symdisc.symmetry import (
    Attachment,
    HiddenSpace,
    MatrixGroupSymmetry,
    orbit_dimension,
    softmax_translation,
    stacked_tangents,
)
from symdisc.zoo.module import from_module

from .cases import all_architectures
from .conftest import draw

ARCHS = all_architectures()
SYMMETRY_CASES = [
    pytest.param(arch, i, id=f"{cid}:{s.name}")
    for cid, arch in ARCHS
    for i, s in enumerate(known_symmetries(arch))
    if not s.data_dependent
]
CONTINUOUS_CASES = [c for c in SYMMETRY_CASES if not known_symmetries(c.values[0])[c.values[1]].discrete]
TOL = 1e-10


def preserved(arch, sym, theta, X, Y):
    """What the symmetry claims to keep: outputs or per-sample losses."""
    if sym.preserves == "output":
        return lambda th: arch.forward(th, X)
    return lambda th: arch.per_sample_loss(th, X, Y)


@pytest.mark.parametrize("arch,index", SYMMETRY_CASES)
def test_finite_action_preserves(arch, index):
    """B1: f(g·θ, X) = f(θ, X) (or the per-sample loss) to 1e-10 for random θ, X, g."""
    for seed in range(3):
        arch64, theta, X, Y = draw(arch, 16, seed)
        sym = known_symmetries(arch64)[index]
        keep = preserved(arch64, sym, theta, X, Y)
        g = sym.sample_element(make_generator(100 + seed), scale=0.5)
        moved = sym.act(g, theta, None)
        assert (moved - theta).norm() > 1e-3 or sym.discrete  # it really moves θ
        assert (keep(moved) - keep(theta)).abs().max() <= TOL


@pytest.mark.parametrize("arch,index", CONTINUOUS_CASES)
def test_fields_orthogonal_to_gradient(arch, index):
    """B2 / Thm 6.3.1: ⟨∇L(θ), ξ_k(θ)⟩ = 0 for every generator, relative to ‖∇L‖‖ξ_k‖."""
    arch64, theta, X, Y = draw(arch, 16, 7)
    sym = known_symmetries(arch64)[index]
    grad = torch.func.grad(lambda th: arch64.batch_loss(th, X, Y))(theta)
    xi = sym.tangents(theta)
    assert xi.shape == (arch64.num_params, sym.num_generators)
    rel = (grad @ xi).abs() / (grad.norm() * xi.norm(dim=0)).clamp_min(1e-300)
    assert rel.max() <= TOL


@pytest.mark.parametrize("arch,index", CONTINUOUS_CASES)
def test_identity_inverse_and_orbit(arch, index):
    """a(0, θ) = θ, a(−c, a(c, θ)) = θ, and the orbit curve's velocity at 0 is ξ_c."""
    arch64, theta, X, Y = draw(arch, 4, 3)
    sym = known_symmetries(arch64)[index]
    c = sym.sample_element(make_generator(9), scale=0.3)
    assert torch.allclose(sym.act(torch.zeros_like(c), theta), theta, atol=1e-14)
    assert torch.allclose(sym.act(-c, sym.act(c, theta)), theta, atol=1e-10)
    ts = torch.tensor([-1e-4, 0.0, 1e-4], dtype=torch.float64)
    curve = sym.orbit(c, theta, ts)
    assert torch.allclose(curve[1], theta, atol=1e-14)
    fd = (curve[2] - curve[0]) / 2e-4
    assert torch.allclose(fd, sym.field(c, theta), atol=1e-6)
    assert torch.allclose(sym.field(c, theta), sym.tangents(theta) @ c, atol=1e-12)


def test_gl_field_matches_closed_form():
    """ξ_M = (−W_2 M, M W_1, M b_1) for GL_h between linear layers (Ex. 1.2.2)."""
    arch, theta, _, _ = draw(zoo.get("mlp", dims="3,4,2", act="linear", bias=True), 1)
    sym = next(s for s in known_symmetries(arch) if s.name.startswith("GL"))
    M = torch.randn(4, 4, dtype=torch.float64, generator=make_generator(0))
    p = arch.layout.unflatten(theta)
    expected = arch.layout.flatten({"W1": M @ p["W1"], "b1": M @ p["b1"], "W2": -p["W2"] @ M,
                                    "b2": torch.zeros(2, dtype=torch.float64)})
    assert torch.allclose(sym.field(M.reshape(-1), theta), expected, atol=1e-12)


def test_attention_field_matches_closed_form():
    """ξ_M = (−W_Q M, W_K Mᵀ) for GL(d_k) on attention (Ex. 1.2.11)."""
    arch, theta, _, _ = draw(zoo.get("tiny-transformer"), 1)
    sym = next(s for s in known_symmetries(arch) if s.name.startswith("attention"))
    M = torch.randn(2, 2, dtype=torch.float64, generator=make_generator(1))
    p = dict(arch.layout.unflatten(theta))
    xi = arch.layout.unflatten(sym.field(M.reshape(-1), theta))
    assert torch.allclose(xi["W_Q"], -p["W_Q"] @ M, atol=1e-12)
    assert torch.allclose(xi["W_K"], p["W_K"] @ M.T, atol=1e-12)
    assert xi["W_V"].abs().max() == 0 and xi["W_1"].abs().max() == 0


def test_matrix_group_action_composes():
    """Group axiom: acting by g_1 then g_2 equals acting by g_2 g_1 (through the hidden space)."""
    arch, theta, X, _ = draw(zoo.get("mlp", dims="3,4,2", act="linear", bias=True), 1)
    sym = next(s for s in known_symmetries(arch) if s.name.startswith("GL"))
    gen = make_generator(2)
    c1, c2 = sym.sample_element(gen, 0.3), sym.sample_element(gen, 0.3)
    B = sym.generators()
    g1, g2 = (torch.linalg.matrix_exp(torch.einsum("k,kab->ab", c, B)) for c in (c1, c2))
    g = g2 @ g1
    direct = sym.space.transform(theta, g, torch.linalg.inv(g))
    assert torch.allclose(sym.act(c2, sym.act(c1, theta)), direct, atol=1e-12)


# --- B3: generic orbit dimensions, corrected formulas (discovery.md §2.1) -----------------------
DIMS = [(3, 4, 2), (3, 2, 2), (1, 5, 1), (2, 6, 3)]


def _orbit(act, n, h, m, seed=0):
    arch, theta, _, _ = draw(zoo.get("mlp", dims=(n, h, m), act=act), 1, seed)
    cont = [s for s in known_symmetries(arch) if not s.discrete and not s.data_dependent]
    return orbit_dimension(stacked_tangents(cont, theta))


@pytest.mark.parametrize("n,h,m", DIMS)
def test_orbit_dimension_formulas(n, h, m):
    assert _orbit("linear", n, h, m) == h * h - max(0, h - n) * max(0, h - m)
    assert _orbit("relu", n, h, m) == h
    assert _orbit("radial", n, h, m) == math.comb(h, 2) - math.comb(max(0, h - n - m), 2)


def test_orbit_dimension_reference_values():
    assert [_orbit("linear", *d) for d in DIMS] == [14, 4, 9, 24]
    arch, theta, _, _ = draw(zoo.get("tiny-transformer"), 1)
    cont = [s for s in known_symmetries(arch) if not s.discrete]
    assert orbit_dimension(stacked_tangents(cont, theta)) == 16


# --- negative controls: these must fail ---------------------------------------------------------
class SoftmaxHead(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc, self.dim = torch.nn.Linear(3, 4), dim

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=self.dim)


def _softmax_change(dim):
    sample = lambda b, g: (torch.randn(b, 3, generator=g), torch.randn(b, 4, generator=g))
    arch = from_module(SoftmaxHead(dim), sample, "mse").to(dtype=torch.float64)
    gen = make_generator(0)
    theta = arch.sample_params(gen)
    X, _ = arch.sample_data(8, gen)
    sym = softmax_translation(arch.layout, "fc.weight", "fc.bias")
    moved = sym.act(sym.sample_element(gen, 1.0), theta)
    return (arch.forward(moved, X) - arch.forward(theta, X)).abs().max()


def test_softmax_translation_needs_softmax_over_classes():
    assert _softmax_change(dim=1) <= TOL  # per sample, over the classes
    assert _softmax_change(dim=0) > 1e-3  # "row-wise" over the batch: not a symmetry


@pytest.mark.parametrize("act,algebra", [("relu", "so"), ("tanh", "diag")], ids=["O(h)-on-relu", "rescale-on-tanh"])
def test_wrong_group_for_the_activation_fails(act, algebra):
    """O(h) needs a radial σ and positive rescaling a homogeneous one: on ReLU / tanh they break f."""
    arch, theta, X, _ = draw(zoo.get("mlp", dims="3,4,2", act=act), 16)
    space = HiddenSpace(arch.layout, 4, [Attachment("W1", 0, "produces"), Attachment("W2", 1, "consumes")])
    sym = MatrixGroupSymmetry(space, algebra, f"{algebra} on {act}")
    moved = sym.act(sym.sample_element(make_generator(0), 0.5), theta)
    assert (arch.forward(moved, X) - arch.forward(theta, X)).abs().max() > 1e-3


def test_batchnorm_scale_only_approximate_with_eps():
    from symdisc.symmetry import batchnorm_scale

    from .cases import BatchNormNet, sampler

    arch = from_module(BatchNormNet(eps=1e-3), sampler(3, 2), "mse", samplewise=False).to(dtype=torch.float64)
    gen = make_generator(0)
    theta = arch.sample_params(gen)
    X, _ = arch.sample_data(16, gen)
    sym = batchnorm_scale(arch.layout, "fc1.weight", "fc1.bias")
    moved = sym.act(torch.full((4,), -2.0, dtype=torch.float64), theta)
    assert (arch.forward(moved, X) - arch.forward(theta, X)).abs().max() > 1e-6
