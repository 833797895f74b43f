"""The matrix-free spectral start (whitened operator + LOBPCG) against the dense p²×p² reference."""

import numpy as np
import pytest
import torch

from symdisc import InputError, make_generator, zoo
from symdisc.discovery.spectral import WhitenedForm, _unit_jacobians, spectral_generators

pytestmark = pytest.mark.usefixtures("one_thread")


def _arch(**opts):
    return zoo.get("mlp", **opts).to(dtype=torch.float64)


@pytest.mark.parametrize("batch", [4, 64])  # rows kept as Ĵ (B ≤ p) or as D'_s = ĴᵀĴ/B (B > p)
def test_operator_equals_dense_quadratic_form(batch):
    """Q vec(h) with Q = mean (Ĵ ⊗ θ)(Ĵ ⊗ θ)ᵀ formed (p = 12) equals the operator: Q(h) = Q̃(h C^{1/2}) C^{1/2}."""
    arch = _arch(dims="3,3,1", act="linear")
    p = arch.num_params
    theta, X, Y = arch.sample_draws(32, batch, make_generator(0))
    J = _unit_jacobians(arch, theta, X, Y, "loss")
    form = WhitenedForm(J, theta)
    feats = torch.einsum("sia,sb->siab", J, theta).reshape(-1, p * p)
    Q = feats.T @ feats / feats.shape[0]
    H = torch.randn(5, p, p, dtype=torch.float64, generator=make_generator(1))
    Chalf = torch.linalg.inv(form.W)  # W = C^{-1/2}
    QH = form.apply(H @ Chalf) @ Chalf
    assert (QH.reshape(5, -1) - H.reshape(5, -1) @ Q).abs().max() <= 1e-10 * Q.abs().max()
    # whitening: C^{-1/2} C C^{-1/2} = I, so P = I ⊗ C becomes the identity
    C = theta.T @ theta / theta.shape[0]
    assert torch.allclose(form.W @ C @ form.W, torch.eye(p, dtype=torch.float64), atol=1e-8)
    G = torch.randn(p * p, 3, dtype=torch.float64, generator=make_generator(2))  # matmat: columns vec(g)
    assert torch.allclose(form.matmat(G), form.apply(G.T.reshape(3, p, p)).reshape(3, -1).T)


def _field_cos2(H1, H2, arch, draws=6):
    """Mean cos² of the principal angles between span{h_k θ} of both, at held-out θ (one θ at a time;
    the k fields may be pointwise dependent, so each span is its numerical range)."""
    def basis(H, th):
        U, s, _ = torch.linalg.svd(torch.einsum("kab,b->ak", H, th), full_matrices=False)
        return U[:, : int((s > 1e-4 * s[0]).sum())]

    out = []
    for th in arch.sample_draws(draws, 1, make_generator(99))[0]:
        B1, B2 = basis(H1, th), basis(H2, th)
        assert B1.shape == B2.shape
        out.append(torch.linalg.svdvals(B1.T @ B2).pow(2).mean())
    return float(torch.stack(out).mean())


@pytest.mark.parametrize("name, opts, k, draws, batch", [
    ("mlp", dict(dims="3,3,1", act="linear"), 9, 64, 64),  # GL(3): 9 fields at each θ (18 null generators)
    ("mlp", dict(dims="3,3,1", act="relu"), 3, 64, 64),  # 3 rescalings
    ("tiny-transformer", {}, 20, 196, 8),  # p = 28, not sample-wise; a 20-dimensional null space
])
def test_operator_path_agrees_with_dense(name, opts, k, draws, batch):
    arch = zoo.get(name, **opts).to(dtype=torch.float64)
    data = arch.sample_draws(draws, batch, make_generator(0))
    Hd, vd = spectral_generators(arch, k, *data, method="dense")
    Ho, vo = spectral_generators(arch, k, *data, method="operator", generator=make_generator(5))
    assert Ho.shape == Hd.shape == (k, arch.num_params, arch.num_params) and Ho.dtype == torch.float64
    assert torch.allclose(Ho.flatten(1).norm(dim=1), torch.ones(k, dtype=torch.float64))
    assert np.all(np.diff(vo) >= 0) and len(vo) == min(arch.num_params**2, 2 * k + 8)
    m = max(k, int((vd <= max(vd[k - 1], 1e-6 * vd[-1])).sum()))  # the eigenpairs the selection uses
    assert m <= len(vo)
    err = np.abs(vo[:m] - vd[:m])
    assert np.all((err <= 1e-9) | (err <= 1e-6 * np.abs(vd[:m]))), err
    assert _field_cos2(Hd, Ho, arch) >= 0.99


def test_operator_path_is_reproducible_and_dispatches():
    arch = _arch(dims="3,3,1", act="relu")
    data = arch.sample_draws(64, 64, make_generator(0))
    H1, v1 = spectral_generators(arch, 3, *data, method="operator", generator=make_generator(7))
    H2, v2 = spectral_generators(arch, 3, *data, method="operator", generator=make_generator(7))
    assert torch.equal(H1, H2) and np.array_equal(v1, v2)
    _, va = spectral_generators(arch, 3, *data)  # auto: dense at p ≤ MAX_P → all p² eigenvalues
    assert len(va) == arch.num_params**2
    with pytest.raises(InputError, match="operator"):
        spectral_generators(_arch(dims="8,8,8"), 2, *data, method="dense")
    with pytest.raises(InputError, match="spectral method"):
        spectral_generators(arch, 3, *data, method="lanczos")


def test_operator_path_at_p128_finds_invariant_fields():
    """8-8-8 ReLU MLP (p = 128, p² = 16384; the dense path would need a 16384² matrix): the returned
    linear fields are invariant on fresh draws (the rescalings: an 8-dimensional null space)."""
    arch = _arch(dims="8,8,8", act="relu")
    p, k = arch.num_params, 4
    H, vals = spectral_generators(arch, k, *arch.sample_draws(2 * p, p, make_generator(0)), generator=make_generator(1))
    assert H.shape == (k, p, p) and len(vals) == 2 * k + 8
    assert vals[k - 1] <= 1e-10 * vals[-1]
    theta, X, Y = arch.sample_draws(16, 64, make_generator(2))
    J = _unit_jacobians(arch, theta, X, Y, "loss")  # (S, B, p)
    F = torch.einsum("kab,sb->ska", H, theta)  # fields h_k θ_s
    ratio = torch.einsum("sia,ska->sik", J, F).abs() / F.norm(dim=-1)[:, None, :]
    assert ratio.median() <= 1e-6


def test_trainer_starts_from_the_operator_path_above_the_dense_limit():
    """p = 70 > MAX_P: the trainer's spectral start runs the matrix-free path (its draws: B = max(batch, p)),
    records it, and the starting generators' fields are the ReLU net's rescalings (invariant on fresh draws);
    low-rank generators start at random and say so."""
    from symdisc.discovery.config import preset_config
    from symdisc.discovery.spectral import MAX_P, start_draws
    from symdisc.discovery.trainer import Trainer

    arch = _arch(dims="5,7,5", act="relu")
    p = arch.num_params
    assert MAX_P < p
    trainer = Trainer(arch, preset_config("unconstrained", arch.name, k=3, steps=10))
    rec = trainer.spectral
    assert rec["used"] and rec["method"] == "operator" and rec["converged"]
    assert (rec["draws"], rec["batch"]) == start_draws(p, trainer.batch) and rec["batch"] >= p
    H = trainer.symmetry.gens.H.detach().T.reshape(3, p, p).to(torch.float64)
    theta, X, Y = arch.sample_draws(8, 32, make_generator(5))
    J = _unit_jacobians(arch, theta, X, Y, "loss")
    F = torch.einsum("kab,sb->ska", H, theta)
    assert (torch.einsum("sia,ska->sik", J, F).abs() / F.norm(dim=-1)[:, None, :]).median() <= 1e-6
    low = Trainer(arch, preset_config("unconstrained", arch.name, k=3, steps=10, generator_kind="lowrank", rank=2))
    assert low.spectral == {"used": False, "reason": "low-rank generators start at random"}
