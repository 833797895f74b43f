"""The Gram method of the census (issue 11): the same counts and spectra as the SVD, memory n² instead of N·p."""

import dataclasses

import pytest
import torch

import symdisc.spectrum as spectrum_mod
from symdisc import SymdiscError, census, make_generator, zoo
from symdisc.gram import accumulate_gram, gram_singular_values
from symdisc.jacobians import (
    jacobian,
    jacobian_row_blocks,
    jacobian_times,
    jacobian_transpose_times,
    loss_jacobian,
    output_jacobian,
)
from symdisc.linalg import gap_cut, rtol_cut
from symdisc.spectrum import jacobian_spectrum, resolve_method

from .cases import bn_arch

D = dict(dtype=torch.float64)


def _point(arch, B, seed=0):
    arch = arch.to(dtype=torch.float64)
    return arch, arch.sample_params(make_generator(seed, 0)), *arch.sample_data(B, make_generator(seed, 1))


def test_jacobian_products_and_blocks_match_the_jacobian():
    for arch in (zoo.get("mlp", dims="3,5,2", act="tanh", bias=True), bn_arch()):
        arch, theta, X, Y = _point(arch, 6)
        for level in ("output", "loss"):
            J = jacobian(arch, theta, X, Y, level)
            V, E = torch.randn(J.shape[1], 3, **D), torch.randn(J.shape[0], 2, **D)
            assert torch.allclose(jacobian_times(arch, theta, X, V, Y, level), J @ V, atol=1e-12)
            assert torch.allclose(jacobian_transpose_times(arch, theta, X, E, Y, level), J.T @ E, atol=1e-12)
            assert torch.equal(torch.cat(list(jacobian_row_blocks(arch, theta, X, Y, level, 4))), J)
    assert torch.equal(jacobian(arch, theta, X, Y, "loss"), loss_jacobian(arch, theta, X, Y))
    with pytest.raises(SymdiscError, match="targets"):
        jacobian(arch, theta, X, None, "loss")


def test_gram_recovers_singular_values_far_below_its_squared_resolution():
    """σ = 1 … 1e-4, five at 1e-11 (λ = 1e-22: invisible in G) and ten zeros: the float64 refinement of the
    bottom gives them back, so either cut finds the SVD's rank, with both factorisations."""
    g = torch.Generator().manual_seed(0)
    U = torch.linalg.qr(torch.randn(400, 150, generator=g, **D)).Q
    W = torch.linalg.qr(torch.randn(150, 150, generator=g, **D)).Q
    sig = torch.cat([torch.logspace(0, -4, 135, **D), torch.full((5,), 1e-11, **D), torch.zeros(10, **D)])
    A = U @ torch.diag(sig) @ W.T
    for factor in ("cholesky", "eigh"):
        s = gram_singular_values(accumulate_gram(A.split(64), 150), lambda V: A @ V, lambda E: A.T @ E,
                                 factor=factor)
        assert torch.allclose(s[135:140], torch.full((5,), 1e-11, **D), rtol=1e-3)
        assert s[140:].max() < 1e-14 and rtol_cut(s, 150, 1e-12).rank == 140
        assert gap_cut(s, 150, 400) == gap_cut(torch.linalg.svdvals(A), 150, 400) or \
            gap_cut(s, 150, 400).rank == gap_cut(torch.linalg.svdvals(A), 150, 400).rank == 135  # 1e-4 → 1e-11
    without = gram_singular_values(accumulate_gram([A], 150), lambda V: A @ V, lambda E: A.T @ E, refine=0)
    assert without[140:].max() > 100 * s[140:].max()  # unrefined, the null directions carry the Gram's error


@pytest.mark.parametrize("level,B", [("output", 128), ("loss", 64)])
def test_gram_and_svd_agree_on_an_mlp(level, B):
    """ReLU 16-32-8 with biases (p = 808): output level N = 1024 ≥ p (JᵀJ in blocks), loss level N = 64 < p (JJᵀ)."""
    arch, theta, X, Y = _point(zoo.get("mlp", dims="16,32,8", act="relu", bias=True), B)
    svd, gram = (jacobian_spectrum(arch, theta, X, Y, level, m) for m in ("svd", "gram"))
    assert (svd.method, gram.method) == ("svd", "gram") and svd.values.shape == gram.values.shape
    cs, cg = gap_cut(svd.values, 808, svd.rows), gap_cut(gram.values, 808, gram.rows)
    assert cs.rank == cg.rank and not cs.ambiguous and not cg.ambiguous
    r = cs.rank
    ratio = gram.values[r - 1] / svd.values[r - 1]  # the top are pivots |R_kk| (estimates), within a decade
    assert 0.1 < ratio < 10 and abs(cg.gap_decades - cs.gap_decades) < 1.5
    assert (r < len(svd.values)) == (level == "output")  # loss level: full row rank 64
    if level == "output":
        assert gram.values[r:].max() < 1e-13 * svd.values[0]  # the null part at float64 rounding, not √ε


def test_gram_census_on_coupled_samples_and_auto(monkeypatch):
    arch = bn_arch()
    assert [census(arch, [32], level="output", method=m).row(32).output_null_dim for m in ("svd", "gram")] == [8, 8]
    assert resolve_method("auto", 2000, 1500) == "gram" and resolve_method("auto", 100, 9610) == "svd"
    monkeypatch.setattr(spectrum_mod, "AUTO_GRAM_MIN_DIM", 1)
    r = census(zoo.get("mlp", dims="3,4,2", act="relu", bias=True), [64], points=2)
    assert r.row(64).output_methods == ["gram", "gram"] and r.row(64).output_null_dim is not None


def test_auto_redoes_an_ambiguous_gram_point_by_svd(monkeypatch):
    from .test_census_gap import random_gamma

    raw, _ = random_gamma(zoo.get("layernorm-mlp", dims="8,8,4", act="tanh", batch=32), 3.0)
    monkeypatch.setattr(spectrum_mod, "AUTO_GRAM_MIN_DIM", 1)
    row = census(raw, [32], level="output", points=3).rows[0]
    assert row.output_methods == ["gram>svd"] * 3 and row.output_null_dim is None
    assert census(raw, [32], level="output", points=3, method="gram").rows[0].output_methods == ["gram"] * 3


def test_gram_memory_guard_names_the_gram():
    with pytest.raises(SymdiscError, match="Gram"):
        census(zoo.get("mlp", dims="64,128,10"), [4096], level="output", method="gram", max_jacobian_gb=0.01)
    arch = dataclasses.replace(zoo.get("mlp", dims="3,4,2"))
    with pytest.raises(SymdiscError, match="Jacobian"):
        census(arch, [4096], level="output", method="svd", max_jacobian_gb=1e-6)


def test_output_jacobian_rows_are_sample_major():
    arch, theta, X, _ = _point(zoo.get("mlp", dims="3,4,2", act="tanh"), 3)
    J = output_jacobian(arch, theta, X)
    J1 = output_jacobian(arch, theta, X[1:2])
    assert torch.equal(J[2:4], J1)
