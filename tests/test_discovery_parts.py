"""Pieces of the discovery engine: generators, learned fields, objective terms, spectral start."""

import pytest
import torch

from symdisc import SymdiscError, make_generator, zoo
from symdisc.discovery.action import ActionConfig, ActionNet
from symdisc.discovery.config import preset_config
from symdisc.discovery.generators import Generators
from symdisc.discovery.learned import LearnedSymmetry
from symdisc.discovery.objective import PRESETS, draw_terms, objective, resolve_preset
from symdisc.discovery.spectral import spectral_generators
from symdisc.symmetry import continuous_symmetries, stacked_tangents


@pytest.mark.parametrize("kind", ["free", "lowrank"])
def test_generator_actions_match_dense(kind):
    G = Generators(7, 3, kind, rank=2, generator=make_generator(0)).double()
    c, th = torch.randn(3, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    H = G.matrices()
    assert torch.allclose(H.flatten(1).norm(dim=1), torch.ones(3, dtype=torch.float64))
    M = torch.einsum("k,kab->ab", c, H)
    assert torch.allclose(G.apply(c, th), M @ th, atol=1e-12)
    assert torch.allclose(G.exp_apply(c, th), torch.linalg.matrix_exp(M) @ th, atol=1e-12)
    assert torch.allclose(G.bracket_apply(0, 2, th), (H[0] @ H[2] - H[2] @ H[0]) @ th, atol=1e-12)


def test_generator_bad_counts():
    with pytest.raises(SymdiscError, match="at least one"):
        Generators(4, 0)
    with pytest.raises(SymdiscError, match="only p = 4"):
        Generators(4, 5)


def _sym(arch, k, cfg=ActionConfig(width=16, depth=2), kind="free"):
    arch = arch.to(dtype=torch.float64)
    X, _ = arch.sample_data(arch.default_batch_size, make_generator(0))
    gens = Generators(arch.num_params, k, kind, generator=make_generator(1)).double()
    action = ActionNet(arch.num_params, X.numel(), cfg, generator=make_generator(2)).double()
    torch.nn.init.normal_(action.head.weight, std=0.1)  # a genuinely nonlinear action
    return arch, LearnedSymmetry(arch.layout, gens, action)


@pytest.mark.parametrize("encoding", ["orbit", "matrix"])
def test_fast_fields_equal_jvp_of_the_finite_action(encoding):
    """ξ from the encoding's derivative = d/dc a_X(exp(Σ c h), θ) at 0 (jacfwd through matrix_exp)."""
    arch, sym = _sym(zoo.get("tanh-3layer"), 3, ActionConfig(width=16, depth=2, encoding=encoding))
    theta, X, _ = (t[0] for t in arch.sample_draws(1, 1, make_generator(3)))
    slow = torch.func.jacfwd(lambda c: sym.act(c, theta, X))(torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(sym.tangents(theta, X), slow, atol=1e-10)


def test_learned_action_checks_data_shape():
    arch, sym = _sym(zoo.get("mlp", dims="3,3,1"), 2)
    theta, X, _ = (t[0] for t in arch.sample_draws(1, 8, make_generator(3)))
    with pytest.raises(SymdiscError, match="data batch"):
        sym.act(torch.zeros(2), theta, X)


def test_paper_associativity_vanishes_once_identity_holds():
    """discovery.md §1.2 / B10a: with a(I, θ) = θ, L_assoc ≡ 0 for any (non-group) action, while the
    finite composition error is not 0."""
    arch, sym = _sym(zoo.get("tanh-3layer"), 2)
    theta, X, Y = arch.sample_draws(4, 1, make_generator(4))
    w = PRESETS["faithful-6.5.3"]
    gen = make_generator(5)
    c = 0.1 * torch.randn(4, 2, dtype=torch.float64)
    terms = torch.func.vmap(lambda t, x, y, a: draw_terms(sym, arch, w, t, x, y, a, -a, (0, 1)))(theta, X, Y, c)
    assert (terms["identity"] == 0).all() and (terms["assoc"] == 0).all()  # the hard identity's exact shortcut
    zero = torch.zeros(2, dtype=torch.float64)
    for t, x in zip(theta, X, strict=True):  # … which the theorem justifies: evaluated, both are 0 up to rounding
        xi = sym.tangents(t, x)
        d_theta = torch.func.jvp(lambda th, x=x: sym.act(zero, th, x), (t,), (xi[:, 0],))[1]
        assert (sym.act(zero, t, x) - t).norm() < 1e-14
        assert (d_theta + xi[:, 1] - (xi[:, 0] + xi[:, 1])).norm() < 1e-12
    _, full = objective(sym, arch, PRESETS["unconstrained"], theta, X, Y, gen)
    assert full["composition"] > 1e-8


def test_frozen_linear_action_skips_terms_that_vanish():
    """While the action is frozen at its linear start, objective reports composition = bracket = 0 exactly
    (not evaluated); evaluated by draw_terms they are 0 up to rounding, and the bracket's ξ_{[h_a,h_b]} from
    ``tangents(extra=…)`` is the field of the commutator."""
    arch, sym = _sym(zoo.get("tanh-3layer"), 3)
    torch.nn.init.zeros_(sym.action.head.weight)
    torch.nn.init.zeros_(sym.action.head.bias)
    theta, X, Y = arch.sample_draws(4, 1, make_generator(4))
    w = PRESETS["unconstrained"]
    c = 0.1 * torch.randn(4, 3, dtype=torch.float64, generator=make_generator(6))
    terms = torch.func.vmap(lambda t, x, y, a: draw_terms(sym, arch, w, t, x, y, a, -a, (0, 2)))(theta, X, Y, c)
    # composition is a squared relative error: rounding of the products of exps leaves ≲ (1e-10)²
    assert terms["composition"].abs().max() < 1e-20 and terms["bracket"].abs().max() < 1e-12
    sym.action.requires_grad_(False)
    _, skipped = objective(sym, arch, w, theta, X, Y, make_generator(5))
    assert skipped["composition"] == 0 and skipped["bracket"] == 0
    sym.action.requires_grad_(True)
    _, evaluated = objective(sym, arch, w, theta, X, Y, make_generator(5))
    assert evaluated["composition"] < 1e-20 and evaluated["bracket"] < 1e-12
    assert torch.allclose(evaluated["invariance"], skipped["invariance"], rtol=1e-12)
    H = sym.gens.matrices()
    t, x = theta[0], X[0]
    Xi, xi_m = sym.tangents(t, x, extra=(sym.gens.bracket_apply(0, 2, t), None))
    assert torch.allclose(Xi, sym.tangents(t, x), atol=1e-14)
    assert torch.allclose(xi_m, (H[0] @ H[2] - H[2] @ H[0]) @ t, atol=1e-12)  # linear action: ξ_M = Mθ


def test_presets():
    assert resolve_preset("faithful", "linear-scalar")[0] == "faithful-6.5.3"
    assert resolve_preset("faithful", "sigmoid-2layer")[1].identity == 10
    w = PRESETS["faithful-6.5.3"]
    assert (w.invariance, w.identity, w.reg_id, w.orth, w.sparse) == (10, 1, 1, 1, 0.1) and not w.scale_free
    cfg = preset_config("faithful", "tanh-3layer", k=2)
    assert cfg.action.encoding == "matrix" and cfg.action.identity == "free" and not cfg.spectral_init
    with pytest.raises(SymdiscError, match="unknown preset"):
        resolve_preset("fast", "mlp")
    # issue 10: "default" names the null-constrained preset; the previous default is "unconstrained"
    assert resolve_preset("default", "mlp")[0] == "constrained"
    assert preset_config("default", "mlp", k=2).action.constraint == "output-null"
    assert preset_config("unconstrained", "mlp", k=2).action.constraint == "none"


def test_spectral_start_recovers_linear_symmetries():
    """The bottom eigen-generators of the linear-action quadratic form: diag(1, −1) for the scalar net,
    and a span equal to the GL(3) tangent space for the 3-3-1 linear net."""
    arch = zoo.get("linear-scalar").to(dtype=torch.float64)
    H, vals = spectral_generators(arch, 1, *arch.sample_draws(64, 1, make_generator(0)))
    target = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)) / 2**0.5
    assert min((H[0] - target).norm(), (H[0] + target).norm()) < 1e-6 and vals[0] < 1e-12 < vals[1]
    arch = zoo.get("mlp", act="linear", dims="3,3,1").to(dtype=torch.float64)
    H, _ = spectral_generators(arch, 9, *arch.sample_draws(64, 64, make_generator(1)))
    theta = arch.sample_params(make_generator(2))
    fields = torch.einsum("kab,b->ak", H, theta)
    K = stacked_tangents(continuous_symmetries(arch), theta)
    Qf, Qk = torch.linalg.qr(fields)[0], torch.linalg.svd(K, full_matrices=False)[0][:, :9]
    assert torch.linalg.matrix_rank(fields) == 9
    assert torch.linalg.svdvals(Qf.T @ Qk).pow(2).mean() > 0.999


def test_woodbury_stiefel_equals_geoopt_cayley():
    """The O(nk²) Cayley retraction and transport agree with geoopt's dense O(n³) solve."""
    import geoopt

    from symdisc.discovery.generators import WoodburyStiefel

    g = torch.Generator().manual_seed(0)
    n, k = 100, 4
    x = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))[0]
    dense, fast = geoopt.CanonicalStiefel(), WoodburyStiefel()
    w = torch.randn(n, k, generator=g, dtype=torch.float64)
    assert torch.allclose(fast.proju(x, w), dense.proju(x, w), atol=1e-12)
    assert torch.allclose(fast.egrad2rgrad(x, w), dense.egrad2rgrad(x, w), atol=1e-12)
    u = dense.proju(x, w)
    v = torch.randn(n, k, generator=g, dtype=torch.float64)
    assert torch.allclose(fast.retr(x, u), dense.retr(x, u), atol=1e-12)
    for a, b in zip(fast.retr_transp(x, u, v), dense.retr_transp(x, u, v), strict=True):
        assert torch.allclose(a, b, atol=1e-12)
    assert fast.check_point_on_manifold(fast.retr(x, u))


@pytest.mark.parametrize("bound", [0.1, 1.0, 3.7])
def test_taylor_exp_apply_matches_matrix_exp(bound):
    from symdisc.discovery.generators import taylor_exp_apply

    g = torch.Generator().manual_seed(1)
    M = torch.randn(20, 20, generator=g, dtype=torch.float64)
    M = M / torch.linalg.matrix_norm(M, 2) * bound
    v = torch.randn(20, generator=g, dtype=torch.float64)
    ref = torch.linalg.matrix_exp(M) @ v
    assert torch.allclose(taylor_exp_apply(M, v, bound), ref, rtol=1e-13, atol=1e-13)


def test_lowrank_orthogonality_never_forms_p_by_p_and_matches_the_dense_formula():
    from symdisc.discovery.generators import Generators

    g = Generators(7, 3, "lowrank", rank=2, generator=torch.Generator().manual_seed(0))
    flat = g.matrices().flatten(1)
    flat = flat / flat.norm(dim=1, keepdim=True)
    dense = torch.triu(flat @ flat.T, diagonal=1).abs().sum()
    assert torch.allclose(g.orthogonality(), dense, rtol=1e-5)
