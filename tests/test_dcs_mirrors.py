"""Mirror extraction and the symmetry-coverage map (dcs.md §9, designs 1 and 2; symdisc/dcs/mirrors.py, coverage.py).

Every claim is checked against an independent computation where one exists: accepted mirrors are re-verified on
fresh draws of the loss, rejected flips are re-measured from their masks, coverage fractions are recomputed from
the tangents.
"""

import json
import warnings

import pytest
import torch

from symdisc import InputError, make_generator
from symdisc.dcs.coverage import Coverage, constraints_of, coverage_map
from symdisc.dcs.mirrors import Mirror, MirrorReport, accepted_mirrors, extract_all, extract_mirrors
from symdisc.discovery.artefact import load
from symdisc.symmetry.base import Symmetry
from symdisc.zoo import registry

pytestmark = pytest.mark.usefixtures("one_thread")


def mlp(act: str, dims=(3, 3, 1)):
    return registry.get("mlp", dims=list(dims), act=act)


def known(arch, prefix: str) -> Symmetry:
    return next(s for s in arch.known_symmetries() if s.name.startswith(prefix))


def neuron_masks() -> set[frozenset]:
    """Hidden unit a of the 3-3-1 MLP: row a of W1 (θ[3a:3a+3]) and column a of W2 (θ[9 + a])."""
    return {frozenset([3 * a, 3 * a + 1, 3 * a + 2, 9 + a]) for a in range(3)}


def masks(mirrors) -> set[frozenset]:
    out = set()
    for m in mirrors:
        mk = m.mask()
        assert mk is not None, f"{m.kind} mirror is not a coordinate mask"
        out.add(frozenset(torch.nonzero(mk).flatten().tolist()))
    return out


def loss_change(arch, R: torch.Tensor, seed: int = 99, n: int = 16) -> float:
    """max |L(Rθ) − L(θ)|/(1 + |L|) on fresh draws (independent of the extraction's own)."""
    a = arch.to(dtype=torch.float64)
    theta, X, Y = a.sample_draws(n, a.default_batch_size, make_generator(seed))
    worst = 0.0
    for t, x, y in zip(theta, X, Y, strict=True):
        L = a.batch_loss(t, x, y)
        worst = max(worst, float((a.batch_loss(R @ t, x, y) - L).abs() / (1 + L.abs())))
    return worst


def mask_reflection(idx, p: int) -> torch.Tensor:
    d = torch.ones(p, dtype=torch.float64)
    d[list(idx)] = -1
    return torch.diag(d)


@pytest.fixture(scope="module")
def linear_gl() -> MirrorReport:
    arch = mlp("linear")
    return extract_mirrors(known(arch, "GL(h1)"), arch)


@pytest.fixture(scope="module")
def learned_gl() -> MirrorReport:
    arch = mlp("linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sym = load("zoo/gl3-linear-3-3-1", arch=arch, fields="all")
    return extract_mirrors(sym, arch)


# ---------------------------------------------------------------------------------------------------------------
# design 1


def test_linear_mlp_gl_gives_neuron_flips_and_rotations(linear_gl):
    arch = mlp("linear")
    assert len(linear_gl.linearisation) == 9
    assert all(r["linear"] and r["residual"] < 1e-12 and r["held_out_residual"] < 1e-12
               for r in linear_gl.linearisation)
    flips = linear_gl.of_kind("rescaling")
    assert masks(flips) == neuron_masks() and len(flips) == 3
    rotations = linear_gl.of_kind("rotation")
    pairs = {a | b for a in neuron_masks() for b in neuron_masks() if a != b}
    assert masks(rotations) == pairs and len(rotations) == 3  # rotation by π in the (a, b) plane of so(3)
    for m in linear_gl.accepted:
        assert m.exact and m.max_loss_change < 1e-12 and m.corollary1 < 1e-12
        R = m.reflection()
        assert torch.allclose(R, R.T) and torch.allclose(R @ R, torch.eye(12, dtype=torch.float64))
        assert loss_change(arch, R) < 1e-12
    # a non-mirror of the same shape (flip a row of W1 only) is not invariant: the check above can fail
    assert loss_change(arch, mask_reflection([0, 1, 2], 12)) > 1e-3


def test_tanh_mirrors_come_from_the_discrete_sign_flips():
    arch = mlp("tanh")
    reports = {r.symmetry: r for r in extract_all(arch)}
    assert set(reports) == {"permute(h1)", "sign-flip(h1)", "data-dependent-GL[pinv](W2,W1)"}
    flips = reports["sign-flip(h1)"].of_kind("discrete")
    assert masks(flips) == neuron_masks()
    assert all(m.exact and loss_change(arch, m.reflection()) < 1e-12 for m in flips)
    swaps = reports["permute(h1)"].of_kind("permutation")
    assert len(swaps) == 3 and all(m.structure == "swap" for m in swaps)
    # no continuous generator survives, so no continuous candidate exists at all (dcs.md test 1.3)
    for rep in reports.values():
        kinds = {m.kind for m in rep.accepted} | {r["kind"] for r in rep.rejected}
        assert not kinds & {"rotation", "rescaling"}, rep.symmetry


def test_relu_rescaling_flips_rejected_swaps_accepted():
    arch = mlp("relu")
    rep = extract_mirrors(known(arch, "rescale(h1)"), arch)
    assert rep.of_kind("rescaling") == []
    flips = [r for r in rep.rejected if r["kind"] == "rescaling"]
    assert {frozenset(r["mask"]) for r in flips} == neuron_masks()
    for r in flips:
        assert r["max_loss_change"] > 0.05 and "loss changes" in r["reason"]
        assert loss_change(arch, mask_reflection(r["mask"], 12)) > 0.05  # re-measured independently
    swaps = rep.of_kind("permutation")
    assert len(swaps) == 3 and all(m.structure == "swap" and m.exact for m in swaps)
    assert all(loss_change(arch, m.reflection()) < 1e-12 for m in swaps)
    discrete = extract_mirrors(known(arch, "permute(h1)"), arch).of_kind("permutation")
    same = accepted_mirrors([rep, MirrorReport(discrete, [], [])])
    assert len([m for m in same if m.kind == "permutation"]) == 3  # the (c) swaps are the registry's transpositions


def test_learned_gl3_artefact_gives_the_same_mirrors(learned_gl, linear_gl):
    """Flips: identical masks.  Rotations: identical sets of projections P (to 1e-12), hence the same span
    Σ im P; both are snapped (exact) and verified at 1e-8 on the loss."""
    lin = learned_gl.linearisation
    assert len(lin) == 9 and all(r["linear"] for r in lin)
    assert all(0 < r["residual"] < 1e-3 for r in lin)  # the learned fields are approximate, yet linear
    assert masks(learned_gl.of_kind("rescaling")) == masks(linear_gl.of_kind("rescaling")) == neuron_masks()
    Pl = [m.projection() for m in learned_gl.of_kind("rotation")]
    Pk = [m.projection() for m in linear_gl.of_kind("rotation")]
    assert len(Pl) == len(Pk) == 3
    for A, B in ((Pl, Pk), (Pk, Pl)):
        assert all(min(float((P - Q).abs().max()) for Q in B) < 1e-12 for P in A)
    span = lambda Ps: torch.linalg.matrix_rank(torch.cat(Ps, 1))
    assert span(Pl) == span(Pk) == span(Pl + Pk)
    arch = mlp("linear")
    for m in learned_gl.accepted:
        assert m.exact and m.max_loss_change < 1e-12 and loss_change(arch, m.reflection()) < 1e-12
    assert all(m.snap_distance < 0.05 for m in learned_gl.of_kind("rotation"))
    diag = learned_gl.subalgebras["diagonal"]
    assert diag["dim"] == 3 and diag["gap_decades"] > 1 and diag["cross_coupling_rel"] < 0.05


class Perturbed(Symmetry):
    """A linear action plus ε·Σc_k·tanh(θ): fields ξ_k = H_k θ + ε tanh(θ) (dcs.md test 1.5)."""

    def __init__(self, base: Symmetry, eps: float):
        super().__init__(base.layout)
        self.base, self.eps, self.num_generators = base, eps, base.num_generators
        self.name = f"{base.name} + {eps}·tanh"

    def act(self, coeffs, theta, X=None):
        return self.base.act(coeffs, theta) + self.eps * coeffs.sum() * torch.tanh(theta)


def test_slightly_nonlinear_action_rejected_at_linearisation():
    arch = mlp("linear")
    base = known(arch, "GL(h1)")
    rep = extract_mirrors(Perturbed(base, 0.1), arch, draws=8, max_products=0)
    assert rep.accepted == [] and len(rep.linearisation) == 9
    assert all(not r["linear"] and r["reason"].startswith("non-linear") for r in rep.linearisation)
    assert all(r["kind"] == "generator" for r in rep.rejected)
    control = extract_mirrors(Perturbed(base, 0.0), arch, draws=8, max_products=0)
    assert masks(control.of_kind("rescaling")) == neuron_masks()


def test_data_dependent_symmetry_skipped_with_reason():
    arch = mlp("tanh")
    rep = extract_mirrors(known(arch, "data-dependent-GL"), arch, draws=8)
    assert rep.accepted == []
    assert len(rep.linearisation) == 9 and all(r["data_variation"] > 1e-2 for r in rep.linearisation)
    assert all(r["reason"].startswith("data-dependent") for r in rep.rejected) and len(rep.rejected) == 9


def test_products_are_bounded_and_reports_serialise(linear_gl):
    assert 0 < len(linear_gl.of_kind("product")) <= 8
    arch = mlp("linear")
    rep = extract_mirrors(known(arch, "sign-flip"), arch, draws=8, max_products=0)
    assert rep.of_kind("product") == [] and len(rep.accepted) == 3
    text = json.dumps(linear_gl.to_dict())
    assert "rescaling" in text and "_P" not in text
    m = linear_gl.of_kind("rescaling")[0]
    d = m.to_dict()
    assert d["mask"] == sorted(torch.nonzero(m.mask()).flatten().tolist()) and d["structure"] == "mask"
    swap = linear_gl.of_kind("permutation")[0]
    assert swap.mask() is None and swap.structure == "swap" and isinstance(swap, Mirror)


# ---------------------------------------------------------------------------------------------------------------
# design 2


def test_tiny_transformer_coverage_leaves_wv_uncovered():
    arch = registry.get("tiny-transformer")
    syms = arch.known_symmetries()
    cov = coverage_map(arch, syms)
    assert isinstance(cov, Coverage)
    b = cov.blocks
    assert b["W_Q"]["native"]["lowrank"] and b["W_K"]["native"]["lowrank"]
    assert "rotation" in b["W_Q"]["mirror_kinds"] and "rotation" in b["W_K"]["mirror_kinds"]
    for name in ("W_1", "W_2"):
        assert all(b[name]["native"].values())
    assert b["W_V"]["mirror_kinds"] == [] and not any(b["W_V"]["native"].values())
    for c in ("sparse", "group", "lowrank", "homogeneous"):
        assert cov.uncovered(c) == ["W_V"]
    assert cov.decide("sparse")["W_V"]["action"] == "dcs" and cov.decide("lowrank")["W_Q"]["action"] == "weight-decay"
    assert cov.decide("homogeneous")["W_V"]["action"] == "none"
    # fractions from the tangents: recompute rank(Π_B Ξ(θ))/|B| at the same θ
    theta = arch.to(dtype=torch.float64).sample_params(make_generator(0, 0))
    Xi = torch.cat([s.tangents(theta) for s in syms if not s.discrete], 1)
    for name in arch.layout.names:
        sl = arch.layout.slice(name)
        assert b[name]["fraction"] == torch.linalg.matrix_rank(Xi[sl]).item() / (sl.stop - sl.start)
    assert b["W_V"]["fraction"] == 0.0 and b["W_Q"]["fraction"] > 0 and b["W_1"]["fraction"] > 0
    # fractions come from the tangents, coverage from verified mirrors only
    ffn = [s for s in syms if s.name.startswith("ffn")]
    bare = coverage_map(arch, ffn, mirrors=[])
    assert bare.blocks["W_Q"]["fraction"] == 0.0 and bare.blocks["W_1"]["fraction"] == 1.0
    assert "W_1" in bare.uncovered("lowrank")
    json.dumps(cov.to_dict())
    assert {c for m in cov.mirrors for c in constraints_of(m)} == {"sparse", "group", "lowrank", "homogeneous"}


def test_relu_rescaling_covers_nothing_but_homogeneity():
    arch = mlp("relu")
    cov = coverage_map(arch, [known(arch, "rescale(h1)")], draws=8)
    assert cov.blocks["W1"]["fraction"] > 0  # the rescaling moves W1 …
    assert set(cov.uncovered("sparse")) == {"W1", "W2"}  # … but gives no flip (§4.1 caveat)
    assert cov.uncovered("homogeneous") == []


def test_bad_input_raises_one_line():
    arch = mlp("linear")
    other = mlp("relu", dims=(3, 4, 1))
    for call in (lambda: extract_mirrors(known(other, "rescale"), arch),
                 lambda: coverage_map(arch, [known(other, "rescale")]),
                 lambda: coverage_map(arch, [], mirrors=[]).uncovered("dense"),
                 lambda: coverage_map(arch, [], mirrors=[], theta=torch.zeros(5)),
                 lambda: extract_mirrors(known(arch, "GL"), arch, lin_draws=4)):
        with pytest.raises(InputError) as e:
            call()
        assert "\n" not in str(e.value) and str(e.value)


def test_a_skipped_rotation_search_is_no_claim_not_no_mirror():
    """Above max_active the antisymmetric search is skipped: coverage says "unknown" for low rank there, not DCS."""
    arch = registry.get("tiny-transformer")
    cov = coverage_map(arch, arch.known_symmetries(), max_active=2)
    assert cov.blocks["W_Q"]["rotation_search_skipped"] == ["attention-GL(d_k)"]
    assert cov.blocks["W_V"]["rotation_search_skipped"] == []
    decision = cov.decide("lowrank")
    assert decision["W_Q"]["action"] == "unknown" and "skipped" in decision["W_Q"]["why"]
    assert decision["W_V"]["action"] == "dcs"


def test_svd_falls_back_to_the_gram_when_lapack_fails(monkeypatch):
    from symdisc.dcs import mirrors

    M = torch.randn(3, 7, 4, generator=make_generator(0, 0), dtype=torch.float64)
    U0, s0, Vh0 = torch.linalg.svd(M, full_matrices=False)

    def fail(*args, **kwargs):
        raise torch.linalg.LinAlgError("did not converge")

    monkeypatch.setattr(torch.linalg, "svd", fail)
    U, s, Vh = mirrors._svd(M)
    torch.testing.assert_close(s, s0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(U @ torch.diag_embed(s) @ Vh, M, rtol=0, atol=1e-10)
