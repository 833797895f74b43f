"""Sharpness φ and curvature κ/ψ (teleport.md §2.1–2.2, P17) and the E8 / E9 runners, in float64."""

import json

import pytest
import torch

import symdisc
from experiments.cli import main
from experiments.teleport.correlation import exact_batch, run_correlation
from experiments.teleport.generalization import run_teleport_generalization
from symdisc import make_generator
from symdisc.layout import ParamLayout
from symdisc.symmetry import hidden_layers_gl
from symdisc.symmetry.data_dependent import DataDependentGL
from symdisc.teleport import geometry

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def kappa(curve, t0=0.0):
    return float(geometry.curve_curvature(curve, t0))


# ---- P17: curvature of plane curves -------------------------------------------------------------------

@pytest.mark.parametrize("speed", [1e-6, 1.0, 1e3])
def test_straight_line_has_zero_curvature(speed):
    """At any speed (no absolute floor that turns slow lines into curves) and in float32."""
    a, b = torch.randn(5, dtype=F64), speed * torch.randn(5, dtype=F64)
    assert kappa(lambda t: a + t * b) == pytest.approx(0.0, abs=1e-12)
    a32, b32 = a.float(), b.float()
    bent = geometry.curve_curvature(lambda t: a32 + t * b32 + 1e-3 * t**2 * b32, 0.0, torch.float32)
    assert float(bent) <= 1e-5 / speed


@pytest.mark.parametrize("r", [0.3, 1.0, 4.0])
def test_circle_has_curvature_one_over_r(r):
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=F64, generator=make_generator(1)))  # embedded in ℝ⁶, rotated
    circle = lambda t: Q[:, :2] @ torch.stack([r * torch.cos(t), r * torch.sin(t)])
    for t0 in (0.0, 0.7):
        assert kappa(circle, t0) == pytest.approx(1 / r, rel=1e-12)


@pytest.mark.parametrize("k", [0.25, 1.0, 3.0])
def test_parabola_curvature_at_the_vertex_is_2k(k):
    assert kappa(lambda t: torch.stack([t, k * t**2])) == pytest.approx(2 * k, rel=1e-12)


def mlp_with_product(dims="6,5,4,3", batch=4, seed=0, form="sigma_inverse"):
    arch = symdisc.zoo.get("mlp", dims=dims, act="leakyrelu").to(F64)
    g = make_generator(seed)
    theta = arch.sample_params(g)
    X, _ = arch.sample_data(batch, g)
    return arch, hidden_layers_gl(arch, form), theta, X, g


@pytest.mark.parametrize("form", ["sigma_inverse", "pinv"])
def test_psi_is_nonnegative_and_scale_invariant(form):
    """ψ ≥ 0; κ(γ_{sM}) = κ(γ_M) for s > 0 (a reparameterisation t ↦ st of the same orbit curve)."""
    _, sym, theta, X, g = mlp_with_product(batch=exact_batch("6,5,4,3", form), form=form)
    assert sym.exactness(theta, X)["exact"]
    C = geometry.random_algebra_elements(sym, 3, g)
    assert float(geometry.psi(sym, theta, C, X)) >= 0
    base = float(geometry.orbit_curvature(sym, theta, C[0], X))
    for s in (1e-2, 10.0, 1e2):
        assert float(geometry.orbit_curvature(sym, theta, s * C[0], X)) == pytest.approx(base, rel=1e-8)


# ---- P17: closed forms of P eq. 90 and the corrected eq. 93 ------------------------------------------------

def closed_form(U, V, Xc, M, sp, spp, sppp, sigma):
    """γ', γ'', γ''' of g = exp(tM) acting by (U g⁻¹, σ⁻¹(g σ(VX)) X⁻¹) at t = 0 (teleport.md §2.2),
    s = σ⁻¹ with s', s'', s''' given as functions of Z = VX."""
    Z = V @ Xc
    A, Xi = sigma(Z), torch.linalg.inv(Xc)
    MA, M2A, M3A = M @ A, M @ M @ A, M @ M @ M @ A
    dU = [-U @ M, U @ M @ M, -U @ M @ M @ M]
    dV = [(MA * sp(Z)) @ Xi,
          (M2A * sp(Z) + MA**2 * spp(Z)) @ Xi,
          (M3A * sp(Z) + 3 * MA * M2A * spp(Z) + MA**3 * sppp(Z)) @ Xi]
    return dU, dV


def sinh_symmetry(n, h, m):
    """σ = sinh (σ'' ≠ 0): the case where P eq. 93 as printed and the corrected form differ."""
    layout = ParamLayout.from_pairs([("W1", (h, n)), ("W2", (m, h))])
    return DataDependentGL(layout, lambda theta, X: X, "W1", "W2", torch.sinh, sigma_inv=torch.asinh,
                           form="sigma_inverse")


def sinh_derivatives():
    sp = lambda Z: 1 / torch.cosh(Z)
    spp = lambda Z: -torch.sinh(Z) / torch.cosh(Z) ** 3
    sppp = lambda Z: (3 * torch.sinh(Z) ** 2 - torch.cosh(Z) ** 2) / torch.cosh(Z) ** 5
    return sp, spp, sppp


@pytest.mark.parametrize("act", ["leakyrelu", "sinh"])
def test_closed_form_orbit_derivatives_match_nested_jvp(act):
    n, h, m = 4, 3, 2
    g = make_generator(7)
    if act == "leakyrelu":
        arch = symdisc.zoo.get("mlp", dims=f"{n},{h},{m}", act="leakyrelu").to(F64)
        sym = hidden_layers_gl(arch, "sigma_inverse").factors[0]
        slope = 0.1
        sigma = lambda Z: torch.nn.functional.leaky_relu(Z, slope)
        sp = lambda Z: torch.where(Z > 0, 1.0, 1 / slope).to(Z)  # 1/σ'(Z) ∈ {1, 10}; σ'' = 0 a.e.
        spp = sppp = torch.zeros_like
    else:
        sym, sigma = sinh_symmetry(n, h, m), torch.sinh
        sp, spp, sppp = sinh_derivatives()
    theta = 0.7 * torch.randn(sym.layout.num_params, dtype=F64, generator=g)
    X = torch.randn(n, n, dtype=F64, generator=g)  # square, invertible: n samples of n features
    c = torch.randn(sym.num_generators, dtype=F64, generator=g)
    M = torch.einsum("k,kab->ab", c, sym.generators())
    derivs = geometry.curve_derivatives(lambda t: sym.act(t * c, theta, X), torch.tensor(0.0, dtype=F64), order=3)
    p = sym.layout.unflatten(theta)
    dU, dV = closed_form(p["W2"], p["W1"], X.T, M, sp, spp, sppp, sigma)
    for j, d in enumerate(derivs):
        named = sym.layout.unflatten(d)
        torch.testing.assert_close(named["W2"], dU[j], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(named["W1"], dV[j], rtol=1e-9, atol=1e-9)
    # central finite differences of γ' and γ''
    eps, curve = 1e-4, lambda t: sym.act(t * c, theta, X)
    fd1 = (curve(eps) - curve(-eps)) / (2 * eps)
    fd2 = (curve(eps) - 2 * curve(0.0) + curve(-eps)) / eps**2
    torch.testing.assert_close(fd1, derivs[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fd2, derivs[1], rtol=1e-5, atol=1e-5)


def test_eq93_as_printed_is_wrong_when_sigma_second_derivative_is_nonzero():
    """P eq. 93 prints −2 (MA)^⊙2 ⊙ σ''/σ'³ in γ_V''; the Taylor series gives −1 × (teleport.md §2.2)."""
    n, h, m = 3, 3, 2
    g = make_generator(8)
    sym = sinh_symmetry(n, h, m)
    theta = 0.7 * torch.randn(sym.layout.num_params, dtype=F64, generator=g)
    X = torch.randn(n, n, dtype=F64, generator=g)
    c = torch.randn(sym.num_generators, dtype=F64, generator=g)
    M = torch.einsum("k,kab->ab", c, sym.generators())
    _, d2 = geometry.curve_derivatives(lambda t: sym.act(t * c, theta, X), torch.tensor(0.0, dtype=F64))
    sp, spp, _ = sinh_derivatives()
    Z = sym.layout.unflatten(theta)["W1"] @ X.T
    MA, M2A = M @ torch.sinh(Z), M @ M @ torch.sinh(Z)
    printed = (M2A * sp(Z) + 2 * MA**2 * spp(Z)) @ torch.linalg.inv(X.T)
    assert (sym.layout.unflatten(d2)["W1"] - printed).abs().max() > 1e-3


# ---- sharpness φ -----------------------------------------------------------------------------------------

def test_phi_raw_minus_phi_delta_is_the_loss():
    arch = symdisc.zoo.get("mlp", dims="5,4,3", act="leakyrelu", loss="cross_entropy").to(F64)
    g = make_generator(2)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(16, g)
    loss = lambda th: arch.batch_loss(th, X, Y)
    D = geometry.random_directions(30, arch.num_params, g)
    raw = geometry.sharpness(loss, theta, D, chunk_size=64)
    delta = geometry.sharpness(loss, theta, D, variant="delta")
    assert float(raw - delta) == pytest.approx(float(loss(theta)), rel=1e-12)
    assert torch.allclose(D.norm(dim=1), torch.ones(30, dtype=F64))


def test_phi_of_a_quadratic_at_its_minimum():
    """L(w) = wᵀAw at w = 0: φ = mean_t t² · mean_d dᵀAd exactly."""
    g = make_generator(3)
    B = torch.randn(7, 7, dtype=F64, generator=g)
    A = B @ B.T
    D = geometry.random_directions(50, 7, g)
    phi = geometry.sharpness(lambda w: w @ A @ w, torch.zeros(7, dtype=F64), D)
    t = torch.tensor(geometry.PAPER_DISPLACEMENTS, dtype=F64)
    expected = t.pow(2).mean() * torch.einsum("di,ij,dj->d", D, A, D).mean()
    assert float(phi) == pytest.approx(float(expected), rel=1e-12)
    assert len(geometry.PAPER_DISPLACEMENTS) == 20 and geometry.PAPER_DISPLACEMENTS[-1] == 0.191


# ---- runners (tiny configurations) ---------------------------------------------------------------------

def test_correlation_runner_fields():
    r = run_correlation("digits", n_models=4, epochs=1, seed=0, directions=3, n_boot=50)
    m = r["models"]
    assert r["used"] == 4 and set(r["correlations_with_val_loss"]) == {"phi", "phi_delta", "psi", "train_loss"}
    assert all(v >= 0 for v in m["psi"])
    for phi, d, tr in zip(m["phi"], m["phi_delta"], m["train_loss"], strict=True):
        assert phi - tr == pytest.approx(d, abs=1e-12)
    # the paper's displacements are small: φ_raw is the training loss plus a little, so they rank alike
    assert all(abs(d) < 0.05 * tr for d, tr in zip(m["phi_delta"], m["train_loss"], strict=True))
    c = r["correlations_with_val_loss"]["phi"]
    assert -1 <= c["pearson"] <= 1 and len(c["pearson_ci"]) == 2
    assert r["config"]["psi"]["exactness_model0"]["exact"] and r["config"]["psi"]["batch"] == 16
    assert r["paper_table1"] == {"column": "MNIST", "phi_pearson": 0.704, "psi_pearson": -0.05,
                                 "source": r["paper_table1"]["source"]}


def test_generalization_runner_fields_and_guard():
    r = run_teleport_generalization(seeds=1, epochs=3, teleport_epoch=2, n_samples=400, n_teleport_batches=1,
                                    teleport_batch_size=60, phi_steps=2, sharpness_directions=2)
    assert set(r["summary"]) == {"none", "phi_down", "phi_up", "psi_down", "psi_up"}
    run = r["runs"][0]["arms"]
    assert run["none"]["teleport"] is None and len(run["none"]["val_loss"]) == 3
    guard_tol = lambda L: r["config"]["guard"]["atol"] + r["config"]["guard"]["rtol"] * abs(L)
    for arm in ("phi_down", "phi_up", "psi_down", "psi_up"):
        for b in run[arm]["teleport"]["batches"]:
            assert b["exact"] is False  # batch 60 > hidden widths 32, 10
            assert abs(b["loss_change"]) <= guard_tol(b["loss_before"]) + 1e-12
            assert sum(b["statuses"].values()) >= 1
        assert "statuses" in r["summary"][arm]["teleport"]
    assert run["phi_down"]["val_loss"][:2] == run["none"]["val_loss"][:2]  # arms share the pre-teleport run


@pytest.mark.parametrize("runner", ["e8_correlation"])  # both run in tests/test_experiments_registry.py too
def test_experiment_runners_smoke(runner, tmp_path):
    out = tmp_path / "result.json"
    assert main(["run", runner, "--smoke", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith(f"python -m experiments run {runner} --smoke")
    assert out.with_suffix(".png").stat().st_size > 0
    record = data["results"][0]["setup"] if runner == "e9_generalization" else data["results"][0]
    assert "substitute" in record["note"] and ("paper_table1" in record or "paper" in record)
