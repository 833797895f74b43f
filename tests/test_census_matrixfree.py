"""Matrix-free field checks and subspace null dimensions (issue 11), against the explicit Jacobian at small size."""

import json

import pytest
import torch

from symdisc import SymdiscError, census, make_generator, zoo
from symdisc.cli.main import main
from symdisc.jacobians import loss_jacobian, output_jacobian
from symdisc.matrixfree import check_fields, subspace_null_dimension
from symdisc.symmetry.base import stacked_tangents
from symdisc.symmetry.known import continuous_symmetries

D = dict(dtype=torch.float64)


def _point(arch, B, seed=0):
    """The census's first point at batch B (its streams)."""
    arch = arch.to(dtype=torch.float64)
    return arch, arch.sample_params(make_generator(seed, 0, 0)), *arch.sample_data(B, make_generator(seed, 1, 0, B))


def test_known_fields_pass_and_random_directions_fail():
    """ReLU 4-6-5-3 with biases has 11 rescalings (Symmetry objects, one field at a time): their residuals are at
    rounding, random directions' are O(0.1); ‖J‖₂ by power iteration is a lower bound within 1e-3 here."""
    arch, theta, X, Y = _point(zoo.get("mlp", dims="4,6,5,3", act="relu", bias=True), 32)
    syms = continuous_symmetries(arch)
    known = check_fields(arch, theta, X, syms)
    assert len(known.names) == 11 and known.names[0] == "rescale(h1)[0]" and known.max_residual < 1e-13
    J = output_jacobian(arch, theta, X)
    norm = float(torch.linalg.matrix_norm(J, 2))
    assert norm * (1 - 1e-3) < known.jacobian_norm <= norm * (1 + 1e-12)
    dense = check_fields(arch, theta, X, stacked_tangents(syms, theta))
    assert dense.max_residual < 1e-13 and dense.names[0] == "field[0]"
    R = torch.randn(arch.num_params, 5, generator=torch.Generator().manual_seed(1), **D)
    rand = check_fields(arch, theta, X, R, chunk=2)
    exact = torch.linalg.vector_norm(J @ R, dim=0) / (norm * R.norm(dim=0))
    assert torch.allclose(torch.tensor(rand.residuals, **D), exact, rtol=1e-3) and min(rand.residuals) > 1e-2
    assert rand.seconds >= 0 and rand.memory_kind.startswith("ru_maxrss") and rand.rows == 96


def test_loss_level_and_bad_input():
    arch, theta, X, Y = _point(zoo.get("mlp", dims="4,5,3", act="relu", bias=True, loss="cross_entropy"), 16)
    loss_syms = [s for s in continuous_symmetries(arch, None) if s.preserves == "loss"]
    r = check_fields(arch, theta, X, loss_syms, Y, level="loss")
    assert r.max_residual < 1e-13 and r.rows == 16
    J = loss_jacobian(arch, theta, X, Y)
    assert r.jacobian_norm == pytest.approx(float(torch.linalg.matrix_norm(J, 2)), rel=1e-3)
    assert check_fields(arch, theta, X, loss_syms, level="output").max_residual > 1e-3  # not output symmetries
    with pytest.raises(SymdiscError, match="targets"):
        check_fields(arch, theta, X, loss_syms, level="loss")
    with pytest.raises(SymdiscError, match=r"\(p, k\)"):
        check_fields(arch, theta, X, torch.zeros(3, 2, **D))


def test_subspace_null_dimension_basis_and_block():
    arch, theta, X, _ = _point(zoo.get("mlp", dims="4,6,5,3", act="relu", bias=True), 64)
    xi = stacked_tangents(continuous_symmetries(arch), theta)
    R = torch.randn(arch.num_params, 6, generator=torch.Generator().manual_seed(2), **D)
    s = subspace_null_dimension(arch, theta, X, basis=torch.cat([xi, R, xi[:, :3] + xi[:, 3:6]], dim=1))
    assert (s.dim, s.null_dim, s.ambiguous) == (17, 11, False) and s.gap_decades > 8  # a dependent column dropped
    full = subspace_null_dimension(arch, theta, X, block=list(arch.layout.names))
    assert full.dim == arch.num_params
    assert full.null_dim == census(arch, [64], level="output", points=1).rows[0].output_null_dim
    J = output_jacobian(arch, theta, X)
    cols = arch.layout.slice("W3")
    sv = torch.linalg.svdvals(J[:, cols])
    w3 = subspace_null_dimension(arch, theta, X, block=["W3"])
    assert w3.dim == 15 and w3.null_dim == 15 - int((sv > 1e-10 * sv[0]).sum())
    with pytest.raises(SymdiscError, match="exactly one"):
        subspace_null_dimension(arch, theta, X)
    with pytest.raises(SymdiscError, match="no parameter"):
        subspace_null_dimension(arch, theta, X, block=["W9"])
    with pytest.raises(SymdiscError, match="GiB"):
        subspace_null_dimension(arch, theta, X, block=["W1"], max_gb=1e-9)


def test_cli_matrix_free(capsys):
    args = ["census", "mlp", "--dims", "4,6,5,3", "--act", "relu", "--bias", "--batch-sizes", "32", "--matrix-free"]
    assert main([*args, "--block", "W3,b3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fields"]["max_residual"] < 1e-13 and len(doc["fields"]["residuals"]) == 11
    assert doc["known_symmetries"] == ["rescale(h1)", "rescale(h2)"] and doc["num_params"] == 83
    assert doc["block"]["subspace"] == "W3,b3" and doc["block"]["dim"] == 18
    assert {"seconds", "peak_memory_mib", "memory_kind"} <= set(doc["fields"]) | set(doc["block"])
    assert main([*args, "--fields", "random:3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert min(doc["fields"]["residuals"]) > 1e-3 and doc["block"] is None
    assert main([*args]) == 0 and "checked" in capsys.readouterr().out
    assert main(["census", "tanh-3layer", "--matrix-free"]) == 2  # no known symmetries
    assert main([*args, "--fields", "random:x"]) == 2
    assert main([*args, "--fields", "none"]) == 2
