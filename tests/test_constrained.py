"""The null-constrained learned action, verified subsets and incremental discovery (issue 10)."""

import json
import warnings

import pytest
import torch

from symdisc import SymdiscError, make_generator, zoo
from symdisc.cli.main import main
from symdisc.discovery import artefact
from symdisc.discovery.config import preset_config
from symdisc.discovery.constraint import NullConstraint
from symdisc.discovery.incremental import fit_incremental
from symdisc.discovery.trainer import build_symmetry
from symdisc.errors import InputError, SymdiscWarning
from symdisc.jacobians import output_jacobian
from symdisc.linalg import null_basis
from symdisc.verification.config import VerifyConfig
from symdisc.verification.run import verify_symmetry


def constrained(name: str, k: int, seed: int = 0):
    arch = zoo.get(name).to(dtype=torch.float64)
    cfg = preset_config("constrained", name, k=k, seed=seed)
    X0, _ = arch.sample_data(arch.default_batch_size, make_generator(seed, 1))
    sym = build_symmetry(arch, cfg, list(X0.shape)).to(dtype=torch.float64)
    return arch, sym


def draw(arch, seed=3):
    return (t[0] for t in arch.sample_draws(1, arch.default_batch_size, make_generator(seed, 4)))


def test_projection_matches_the_dense_null_space():
    """Π_ε against the SVD null basis of the output Jacobian (the census), and the residual bound √ε/2."""
    arch = zoo.get("layernorm-linear").to(dtype=torch.float64)
    theta, X, _ = draw(arch)
    V = torch.randn(arch.num_params, 5, generator=make_generator(0, 5), dtype=torch.float64)
    con = NullConstraint(arch)
    N = null_basis(output_jacobian(arch, theta, X))
    assert N.shape[1] == 11  # the census at batch 64 (issue 10)
    PV = con.project(theta, X, V)
    assert torch.allclose(PV, N @ (N.T @ V), atol=1e-9)
    J = con.rows(theta, X)
    eps = con.ridge(J.shape[0])
    assert eps > con.rtol**2  # N = 192 rows: the floor above the Gram's rounding level
    assert ((J @ PV).abs().max(dim=0).values / V.norm(dim=0)).max() <= eps**0.5 / 2
    assert torch.allclose(con.project(theta, X, V[:, 0]), PV[:, 0])  # a vector as well as a matrix


def test_ridge_keeps_the_gram_positive_definite_with_duplicated_samples():
    """A batch with repeated samples (token inputs repeat often) gives a Gram AAᵀ with many exact zero eigenvalues,
    which rounding spreads over ±N·ε_mach: AAᵀ + εI must stay positive definite, or its LU can fail (it did, inside
    vmap, on the token model of tests/test_user_modules.py)."""
    g = make_generator(0, 9)
    base = torch.randn(103, 103, generator=g, dtype=torch.float64)
    A = base[torch.randint(0, 103, (448,), generator=g)]  # 448 rows, 103 distinct
    A = A / A.norm(dim=1, keepdim=True)
    con = NullConstraint(zoo.get("layernorm-linear"))
    G = A @ A.T + con.ridge(448) * torch.eye(448, dtype=torch.float64)
    assert torch.linalg.eigvalsh(G).min() > 0
    v = torch.randn(103, 1, generator=g, dtype=torch.float64)
    Pv = v - con._solve(A, A @ v)
    assert torch.isfinite(Pv).all() and (A @ Pv).abs().max() <= con.ridge(448) ** 0.5 / 2 * v.norm()


def test_constrained_fields_and_flow_keep_the_outputs():
    """Untrained generators already give invariant fields (by construction) and a flow that keeps f(·, X)."""
    arch, sym = constrained("layernorm-linear", 4)
    theta, X, _ = draw(arch)
    Xi = sym.tangents(theta, X)
    J = output_jacobian(arch, theta, X)
    assert ((J @ Xi).norm(dim=0) / (J.norm() * Xi.norm(dim=0))).max() < 1e-12
    c = torch.tensor([0.3, -0.2, 0.1, 0.25], dtype=torch.float64)
    moved = sym.act(c, theta, X)
    assert (moved - theta).norm() > 1e-2 * theta.norm()  # it moves …
    rel = (arch.forward(moved, X) - arch.forward(theta, X)).norm() / arch.forward(theta, X).norm()
    assert rel < 1e-6  # … along the level set (RK4 error only)
    assert torch.equal(sym.act(torch.zeros(4, dtype=torch.float64), theta, X), theta)
    ts = torch.tensor([-0.5, 0.0, 0.5, 1.0], dtype=torch.float64)
    path = sym.orbit(c, theta, ts, X)
    assert torch.allclose(path[3], moved, atol=1e-10) and torch.equal(path[1], theta)
    assert torch.allclose(path[0], sym.act(-0.5 * c, theta, X), atol=1e-9)


def test_retraction_keeps_the_outputs_across_a_kink():
    """E3's LeakyReLU net (p = 128, batch 4), the committed k = 96 artefact, a move of first-order size 6: the
    plain RK4 flow (retract_steps = 0) crosses an activation kink and loses the outputs (0.4 here), the flow
    returned to the level set after each step (the default, 3 Gauss–Newton steps) keeps them to 1e-7."""
    from dataclasses import replace

    arch = zoo.get("teleport-regression").to(dtype=torch.float64)
    g = make_generator(2, 3)
    theta = arch.sample_params(g)
    X, _ = arch.sample_data(4, g)
    sym = artefact.load("zoo/teleport-regression-constrained-k96", arch=arch)
    assert sym.action.cfg.retract_steps == 3 and "Gauss–Newton" in sym.exactness(theta, X)["condition"]
    draws = make_generator(7)
    for _ in range(3):
        c = torch.randn(96, generator=draws, dtype=torch.float64)
    c = 6.0 * c / sym.field(c, theta, X).norm()
    f0 = arch.forward(theta, X)
    with torch.no_grad():
        kept = (arch.forward(sym.act(c, theta, X), X) - f0).norm()
        sym.action.cfg = replace(sym.action.cfg, retract_steps=0)
        plain = (arch.forward(sym.act(c, theta, X), X) - f0).norm()
    assert plain > 1e-2 and kept < 1e-5


def test_constrained_fields_depend_on_the_data_at_batch_one():
    arch, sym = constrained("sigmoid-2layer", 4)
    theta, X, _ = draw(arch)
    X2 = X + 0.5
    assert (sym.tangents(theta, X) - sym.tangents(theta, X2)).norm() > 1e-3 * sym.tangents(theta, X).norm()


def test_more_fields_than_the_census_keep_the_independent_ones():
    """k = census + 2: every field is invariant, but only 11 are independent — 11 of 13 verified, kept."""
    arch, sym = constrained("layernorm-linear", 13)
    r = verify_symmetry(sym, arch, 64, VerifyConfig(draws=2, curves=False))
    assert r["counts"]["functional"] == 13
    assert r["verified"]["count"] == 11 and r["verified"]["summary"] == "11 of 13 fields verified; kept"
    dependent = [f for f in r["fields"] if not f["verified"]]
    assert len(dependent) == 2 and all(f["independence"] < 1e-2 for f in dependent)
    assert r["principal_angles_mean_cos2"]["output_null"] == pytest.approx(1.0, abs=1e-9)
    assert r["unavailable"]["composition_error_median"].startswith("the null-constrained action")


def _saved(tmp_path, verification):
    arch, sym = constrained("layernorm-linear", 3)
    card = artefact.make_card(sym, arch, sym.data_shape, {"config": {"seed": 0}})
    card["architecture"]["spec"] = dict(arch.spec)
    artefact.save(sym, tmp_path, card)
    if verification is not None:
        artefact.update_card(tmp_path, verification=verification)
    return arch


def _report(kept, k=3):
    fields = [{"index": i, "invariance_median": 1e-9 if i in kept else 0.3,
               "class": "functional" if i in kept else "not invariant", "independence": 1.0, "verified": i in kept}
              for i in range(k)]
    return {"fields": fields, "verified": {"indices": kept, "count": len(kept), "of": k}}


def test_consumers_use_only_verified_fields(tmp_path):
    arch = _saved(tmp_path, _report([0, 2]))
    with pytest.warns(SymdiscWarning, match=r"using the 2 verified of 3 fields; skipping 1 \(residual 0.3"):
        sym = artefact.load(tmp_path, arch=arch)
    assert sym.num_generators == 2 and sym.indices == [0, 2]
    full = artefact.load(tmp_path, arch=arch, fields="all")
    theta, X, _ = draw(arch)
    assert torch.allclose(sym.tangents(theta, X), full.tangents(theta, X)[:, [0, 2]])
    with pytest.raises(InputError, match=r"refused: 1 of 3 fields are unverified: 1 \(residual 0.3"):
        artefact.load(tmp_path, arch=arch, strict=True)
    with pytest.warns(SymdiscWarning, match="of which 1 are unverified"):
        assert artefact.select_fields(full, "all").num_generators == 3
    with pytest.raises(InputError, match="fields must be verified or all"):
        artefact.load(tmp_path, arch=arch, fields="some")


def test_never_verified_and_nothing_verified(tmp_path):
    arch = _saved(tmp_path / "a", None)
    with pytest.warns(SymdiscWarning, match="never verified"):
        assert artefact.load(tmp_path / "a", arch=arch).num_generators == 3
    with pytest.raises(InputError, match="refused: this artefact was never verified"):
        artefact.load(tmp_path / "a", arch=arch, strict=True)
    arch = _saved(tmp_path / "b", _report([]))
    with pytest.raises(InputError, match="none of the 3 fields verified"):
        artefact.load(tmp_path / "b", arch=arch)
    with warnings.catch_warnings():  # fields="all": every stored field, no check and no warning (verify, export)
        warnings.simplefilter("error")
        assert artefact.load(tmp_path / "b", arch=arch, fields="all").num_generators == 3


def test_cli_teleport_refuses_unverified_fields_under_strict(tmp_path, capsys):
    _saved(tmp_path, _report([0, 2]))
    code = main(["teleport", "layernorm-linear", "--symmetry", str(tmp_path), "--strict", "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "refused: 1 of 3 fields are unverified" in err and err.count("\n") == 1


def test_incremental_rounds_freeze_verified_fields(tmp_path):
    """LayerNorm → Linear has an 11-dimensional census at batch 64: asking for 13 in blocks of 6 verifies 6, then
    5 more (the sixth fresh field is dependent), then nothing with 2 fresh, nothing with 1: 11 of 13 kept (the
    13-field round's artefact), the frozen fields unchanged."""
    arch = zoo.get("layernorm-linear")
    cfg = preset_config("constrained", "layernorm-linear", k=13, steps=4, draws=2, block=6)
    trainer, summary = fit_incremental(arch, cfg, tmp_path, block=6, round_draws=4)
    rounds = summary["rounds"]
    assert [(r["k"], r["frozen"], r["verified_new"]) for r in rounds] == [(6, 0, 6), (12, 6, 5), (13, 11, 0),
                                                                          (12, 11, 0)]  # the block halved
    assert summary["verified_in_rounds"] == 11 and summary["stopped"] == "a round verified no new field"
    assert all(r["residuals"][:6] == pytest.approx(rounds[0]["residuals"], rel=1e-6, abs=1e-15) for r in rounds)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["generators"]["k"] == 13 and trainer.symmetry.num_generators == 13


def test_bad_block_is_refused(tmp_path):
    with pytest.raises(SymdiscError, match="block size must be ≥ 1"):
        preset_config("default", "mlp", k=2, block=0).validate(12)


def test_cli_teleport_warns_in_one_line_and_uses_the_verified_fields(tmp_path, capsys):
    _saved(tmp_path, _report([0, 2]))
    code = main(["teleport", "layernorm-linear", "--symmetry", str(tmp_path), "--steps", "2", "--train-size", "64",
                 "--json"])
    out, err = capsys.readouterr()
    warning = [line for line in err.splitlines() if line.startswith("symdisc: warning:")]
    assert code == 0 and len(warning) == 1 and "using the 2 verified of 3 fields; skipping 1" in warning[0]
    assert json.loads(out)["symmetry"]["num_generators"] == 2
