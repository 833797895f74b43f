"""Ridge Rider's library (symdisc.ridge): the Hessian operator against torch.func.hessian, the search's pieces,
the symmetry-aware designs (ridge_rider.md §6: F2, A's certified clusters, B's projection, C's merge), resume,
and bad input.  The eigensolvers' agreement with eigh is in tests/test_ridge_scalable_experiments.py."""

import pytest
import torch
from torch.func import hessian

import symdisc
from symdisc.errors import ArtefactError, InputError, NumericalError
from symdisc.layout import ParamLayout
from symdisc.ridge import HessianOperator, RidgeRider, RRConfig, most_negative, orbit_distance
from symdisc.ridge.eigen import descent_sign
from symdisc.ridge.symmetric import certify_clusters, field_residuals, orbit_projector
from symdisc.symmetry.base import Symmetry

D64 = torch.float64


def linear_net(seed=0, n=20, minimum=False):
    """2-layer linear net 3-3-3 (mse) with its GL(3) hidden symmetry: loss over θ ∈ ℝ¹⁸ (and, with ``minimum``, a
    global minimiser: W₁ = the least-squares map, W₂ = I)."""
    arch = symdisc.zoo.get("mlp", dims="3,3,3", act="linear", bias=False).to(dtype=D64)
    X, Y = arch.sample_data(n, symdisc.make_generator(seed))
    loss = lambda th: arch.batch_loss(th, X, Y)
    if not minimum:
        return arch, loss, arch.known_symmetries()[0]
    W = torch.linalg.lstsq(X, Y).solution.T
    return arch, loss, arch.known_symmetries()[0], torch.cat([W.reshape(-1), torch.eye(3, dtype=D64).reshape(-1)])


class PlaneRotation(Symmetry):
    """SO(2) rotating coordinates (i, j) of θ; exact for a loss depending on θ_i² + θ_j² only."""

    num_generators = 1
    name = "plane-rotation"

    def __init__(self, p, i=0, j=1):
        super().__init__(ParamLayout.from_pairs([("theta", (p,))]))
        self.i, self.j = i, j

    def act(self, coeffs, theta, X=None):
        c, s = torch.cos(coeffs[0]), torch.sin(coeffs[0])
        a, b = theta[self.i], theta[self.j]
        out = theta.clone()
        out[self.i], out[self.j] = c * a - s * b, s * a + c * b
        return out


def test_hessian_operator_matches_torch_func_hessian_and_counts_products():
    _, loss, _ = linear_net()
    theta = torch.randn(18, generator=torch.Generator().manual_seed(1), dtype=D64)
    op = HessianOperator(loss, theta, chunk=5)
    H = hessian(loss)(theta)
    assert torch.allclose(op.dense(), H, atol=1e-12)
    assert op.hvps == 18
    V = torch.randn(18, 3, dtype=D64)
    assert torch.allclose(op.matvec(V), H @ V, atol=1e-12) and op.hvps == 21
    op._reverse = True  # reverse-over-reverse gives the same products
    assert torch.allclose(op.matvec(V), H @ V, atol=1e-12)


def test_compiled_hvp_matches_eager_and_is_reused_at_a_new_point():
    from symdisc.ridge.hessian import compiled_hvp

    _, loss, _ = linear_net()
    gen = torch.Generator().manual_seed(2)
    V = torch.randn(18, 4, generator=gen, dtype=D64)
    for _ in range(2):  # a second θ reuses the compiled function: θ is its argument
        theta = torch.randn(18, generator=gen, dtype=D64)
        op = HessianOperator(loss, theta, compile=True)
        assert op._compiled is compiled_hvp(loss) is not None
        assert torch.allclose(op.matvec(V), hessian(loss)(theta) @ V, atol=1e-12) and op.hvps == 4


def test_a_failed_compile_warns_once_and_falls_back_to_eager(monkeypatch):
    from symdisc.ridge.hessian import compiled_hvp

    def broken(fn):
        def call(*args):
            raise RuntimeError("inductor cannot lower this op")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    _, loss, _ = linear_net(seed=3)
    theta = torch.randn(18, generator=torch.Generator().manual_seed(4), dtype=D64)
    op = HessianOperator(loss, theta, compile=True)
    V = torch.randn(18, 2, dtype=D64)
    with pytest.warns(RuntimeWarning, match="inductor cannot lower"):
        out = op.matvec(V)
    assert torch.allclose(out, hessian(loss)(theta) @ V, atol=1e-12)
    assert op._compiled is None and compiled_hvp(loss) is None  # not tried again for this loss
    assert torch.allclose(HessianOperator(loss, theta, compile=True).matvec(V), out, atol=0)


def test_nondeterministic_losses_are_refused_with_a_clear_error():
    calls = [0]

    def drifting(th):  # a new "batch" per call
        calls[0] += 1
        return (th ** 2).sum() * (1 + 0.1 * (calls[0] % 3))

    with pytest.raises(InputError, match="not deterministic"):
        HessianOperator(drifting, torch.ones(3, dtype=D64)).check_deterministic()
    dropout = lambda th: torch.nn.functional.dropout(th, 0.5, training=True).square().sum()
    with pytest.raises(InputError, match="random"):
        HessianOperator(dropout, torch.ones(3, dtype=D64)).matvec(torch.ones(3, dtype=D64))


def test_krylov_non_convergence_is_a_numerical_error():
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(300, 300, generator=g, dtype=D64))
    A = Q @ torch.diag(torch.linspace(-1, 1, 300, dtype=D64) ** 3) @ Q.T  # a clustered spectrum around 0
    op = HessianOperator(lambda th: 0.5 * th @ A @ th, torch.zeros(300, dtype=D64))
    for method in ("lanczos", "lobpcg"):
        with pytest.raises(NumericalError, match=f"the {method} eigensolver"):
            most_negative(op, 6, method=method, maxiter=2, tol=1e-14)


def test_descent_sign_and_one_step_from_a_saddle_lowers_the_loss():
    """T12: a ridge step θ − αe from a saddle along a negative eigenvector lowers L at second order, and after the
    step ⟨∇L, e⟩ > 0 (the corrected sign of [A D.5])."""
    loss = lambda th: th[0] ** 2 - th[1] ** 2 + th[0] * th[1] ** 3
    theta = torch.zeros(2, dtype=D64)
    pairs = most_negative(HessianOperator(loss, theta), 1, method="dense")
    e = descent_sign(pairs.vectors[:, 0], torch.zeros(2, dtype=D64))
    alpha = 1e-2
    after = theta - alpha * e
    assert float(loss(after)) < float(loss(theta))
    assert float(torch.func.grad(loss)(after) @ e) > 0


def test_exact_rr_on_a_linear_net_reaches_the_global_minimum_and_records_its_tree():
    _, loss, _ = linear_net()
    _, loss, _, best = linear_net(minimum=True)
    result = RidgeRider(loss, torch.zeros(18, dtype=D64), RRConfig(n_ridges=2, max_depth=2, budget=400,
                                                                   finish_steps=100, finish_lr=0.2)).run()
    s = result.summary()
    assert s["solutions"] >= 1 and s["iterations"] <= 400 + 50
    roots = [n for n in result.archive.nodes if n.parent is None]
    assert {tuple(n.fingerprint) for n in roots} == {(0,), (1,)} and {n.sign for n in roots} == {1, -1}
    for n in result.archive.nodes:
        if n.parent is not None:
            assert n.fingerprint[:-1] == result.archive.nodes[n.parent].fingerprint
    assert s["best_loss"] < float(loss(best)) + 1e-3  # the global minimum (the least-squares fit)


def test_f2_holds_for_an_exact_symmetry_at_random_points():
    """F2: H ξ_k = −J_{ξ_k}ᵀ ∇L for every θ (reference §6.1)."""
    _, loss, gl = linear_net()
    theta = torch.randn(18, generator=torch.Generator().manual_seed(3), dtype=D64)
    op = HessianOperator(loss, theta)
    res = field_residuals(gl, loss, theta, None, op.matvec)
    assert max(r["f2"] for r in res) < 1e-10 and max(r["f1"] for r in res) < 1e-10


def test_design_a_certifies_the_gl_clusters_at_the_origin():
    """Reference §6.2 test (a): at the origin of the linear net the 9 negative eigenvalues form 3 clusters of
    size h = 3, each certified and explored by one representative with one sign (SO(3) turns e into −e)."""
    _, loss, gl = linear_net()
    theta = torch.zeros(18, dtype=D64)
    pairs = most_negative(HessianOperator(loss, theta), 18, method="dense")
    neg = pairs.values < -1e-8 * pairs.norm
    clusters = certify_clusters(gl, theta, pairs.values[neg], pairs.vectors[:, neg], pairs.norm)
    assert [len(c.members) for c in clusters] == [3, 3, 3]
    assert all(c.certified and [o.kind for o in c.offers] == ["orbit"] and c.offers[0].one_sign for c in clusters)
    rr = RidgeRider(loss, theta, RRConfig(n_ridges=9), symmetry=gl)
    naive = RidgeRider(loss, theta, RRConfig(n_ridges=9))
    assert len(rr.get_ridges(theta)) == 3 and len(naive.get_ridges(theta)) == 18


def test_design_a_rejects_accidental_degeneracy_and_splits_mixed_clusters():
    """§6.2 test (b): an eigenvalue repeated by accident is not certified (every member explored); a cluster made
    of a rotation plane plus an accidentally equal fixed direction offers one orbit representative and the fixed
    direction separately."""
    loss = lambda th: -0.5 * (th[0] ** 2 + th[1] ** 2) - 0.5 * th[2] ** 2 + 0.25 * (th ** 4).sum()
    theta = torch.zeros(3, dtype=D64)
    pairs = most_negative(HessianOperator(loss, theta), 3, method="dense")
    (mixed,) = certify_clusters(PlaneRotation(3), theta, pairs.values, pairs.vectors, pairs.norm)
    assert mixed.certified and sorted(o.kind for o in mixed.offers) == ["fixed", "orbit"]
    fixed = next(o for o in mixed.offers if o.kind == "fixed").vector
    assert abs(float(fixed[2])) > 1 - 1e-10
    rotate_far = PlaneRotation(4, 2, 3)  # acts on coordinates the degenerate pair does not live in
    loss4 = lambda th: -0.5 * (th[0] ** 2 + th[1] ** 2) + th[0] ** 2 * th[1] ** 2 + (th[2] ** 2 + th[3] ** 2)
    theta4 = torch.zeros(4, dtype=D64)
    p4 = most_negative(HessianOperator(loss4, theta4), 2, method="dense")
    (acc,) = certify_clusters(rotate_far, theta4, p4.values, p4.vectors, p4.norm)
    assert not acc.certified and [o.kind for o in acc.offers] == ["accidental", "accidental"]


def test_design_b_projects_orbit_zero_modes_out_at_a_minimum():
    """§6.3 test (b): at a global minimum the orbit tangents are zero modes; the projected operator has the
    unprojected spectrum minus those zeros, and GetRidges with neg_tol = 0 never offers a tangent direction."""
    arch, loss, gl, theta = linear_net(minimum=True)
    op = HessianOperator(loss, theta)
    assert float(op.gradient().norm()) < 1e-9
    P = orbit_projector(gl, loss, theta)
    assert P.Q.shape[1] == 9
    full = torch.linalg.eigvalsh(op.dense())
    projected = torch.linalg.eigvalsh(HessianOperator(loss, theta, projector=P).dense())
    big = lambda ev: torch.sort(ev[ev.abs() > 1e-8]).values
    assert torch.allclose(big(full), big(projected), atol=1e-9)
    assert int((projected.abs() <= 1e-8).sum()) == int((full.abs() <= 1e-8).sum())  # the 9 zeros stay zeros
    Xi = gl.tangents(theta)
    rr = RidgeRider(loss, theta, RRConfig(neg_tol=0.0, n_ridges=18), symmetry=gl)
    for r in rr.get_ridges(theta):
        assert float((P.Q.T @ r.e).norm()) < 1e-6
    assert Xi.shape == (18, 9)


def test_design_c_merges_planted_orbit_copies_and_not_other_solutions():
    _, loss, gl, theta = linear_net(minimum=True)
    g = torch.Generator().manual_seed(5)
    copy = gl.act(0.3 * torch.randn(9, generator=g, dtype=D64), theta)
    assert abs(float(loss(copy) - loss(theta))) < 1e-12
    assert orbit_distance(gl, copy, theta) < 1e-8
    other = theta.clone()
    other[0] += 0.5
    assert orbit_distance(gl, other, theta) > 1e-3


def test_symmetric_rr_finds_the_same_solutions_with_fewer_rides():
    """Designs A + B + C against plain RR on the linear net: the same distinct leaf losses, far fewer rides."""
    _, loss, gl = linear_net()
    cfg = dict(n_ridges=9, max_depth=1, budget=4000, finish_steps=200, finish_lr=0.2)
    theta = torch.zeros(18, dtype=D64)
    plain = RidgeRider(loss, theta, RRConfig(**cfg)).run()
    aware = RidgeRider(loss, theta, RRConfig(**cfg), symmetry=gl).run()
    levels = lambda r: {round(n.loss_end, 3) for n in r.archive.ends()}
    assert levels(aware) == levels(plain)
    assert aware.summary()["rides"] * 6 == plain.summary()["rides"] == 18  # 3 certified clusters, one sign each


def test_an_interrupted_search_resumes_to_the_same_archive(tmp_path):
    _, loss, gl = linear_net()
    cfg = RRConfig(n_ridges=3, max_depth=2, budget=300, search="random")
    theta = torch.zeros(18, dtype=D64)
    whole = RidgeRider(loss, theta, cfg, symmetry=gl, generator=torch.Generator().manual_seed(7)).run()

    calls, limit = [0], 150

    def dying(th):
        calls[0] += 1
        if calls[0] > limit:
            raise KeyboardInterrupt
        return loss(th)

    rr = RidgeRider(dying, theta, cfg, symmetry=gl, generator=torch.Generator().manual_seed(7),
                    directory=tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        rr.run()
    saved = (tmp_path / "run" / "archive.json").read_text()
    assert '"nodes"' in saved
    resumed = RidgeRider.resume(tmp_path / "run", loss, symmetry=gl).run()
    assert resumed.archive.tree() == whole.archive.tree()
    assert resumed.iterations == whole.iterations
    with pytest.raises(InputError, match="same symmetry"):
        RidgeRider.resume(tmp_path / "run", loss)
    (tmp_path / "run" / "archive.safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtefactError):
        RidgeRider.resume(tmp_path / "run", loss, symmetry=gl)


def test_bad_inputs_fail_with_one_line_errors():
    _, loss, gl = linear_net()
    theta = torch.zeros(18, dtype=D64)
    other = symdisc.zoo.get("mlp", dims="2,4,1", act="linear", bias=False).known_symmetries()[0]
    with pytest.raises(InputError, match="another architecture"):
        RidgeRider(loss, theta, symmetry=other)
    with pytest.raises(InputError, match="unknown ridge update"):
        RidgeRider(loss, theta, RRConfig(update="newton"))
    relu = symdisc.zoo.get("mlp", dims="3,4,2", act="relu", bias=False).to(dtype=D64)
    X, Y = relu.sample_data(8, symdisc.make_generator(0))
    with pytest.raises(InputError, match="not twice differentiable"):
        RidgeRider(lambda th: relu.batch_loss(th, X, Y), torch.zeros(relu.num_params, dtype=D64))
    assert "\n" not in str(pytest.raises(InputError, RRConfig(alpha=-1).validate).value)


def test_for_module_runs_on_a_user_module_and_assigns_a_solution():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e-2)
    x, y = torch.randn(16, 3, dtype=D64), torch.randn(16, 2, dtype=D64)
    rr = RidgeRider.for_module(model, torch.nn.functional.mse_loss, (x, y),
                               RRConfig(n_ridges=1, max_depth=1, budget=200, signs="descent"))
    result = rr.run()
    best = min(result.archive.ends(), key=lambda n: n.loss_end)
    rr.assign(best)
    with torch.no_grad():
        assert abs(float(torch.nn.functional.mse_loss(model(x), y)) - best.loss_end) < 1e-12
