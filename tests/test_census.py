"""Symmetry census: exact counts against known symmetries and the dissertation's values."""

import dataclasses

import pytest
import torch

from symdisc import SymdiscError, census, make_generator, zoo
from symdisc.jacobians import loss_jacobian, output_jacobian
from symdisc.linalg import null_dimension

from .cases import bn_arch, lora_arch, sampler


@pytest.mark.parametrize("act,expected", [("linear", 9), ("relu", 3), ("tanh", 0), ("sigmoid", 0)])
def test_two_layer_3_3_1_at_batch_64(act, expected):
    r = census(zoo.get("mlp", act=act, dims="3,3,1"), [64])
    assert r.row(64).output_null_dim == expected
    assert r.row(64).loss_null_dim == expected  # one output per sample: same null space
    assert r.known_orbit_dim == expected
    assert r.dtype == "float64" and r.num_params == 12


def test_tiny_transformer_null_space_is_exactly_the_known_orbit():
    r = census(zoo.get("tiny-transformer"), [8])
    assert r.num_params == 28 and r.known_orbit_dim == 16
    assert r.row(8).output_null_dim == r.known_orbit_dim
    assert r.row(8).loss_null_dim == 20  # 4 loss-only directions (discovery.md §4)
    for variant, dim in [("wo", 20), ("ffn-bias", 18)]:
        rv = census(zoo.get("tiny-transformer", variant=variant), [8], level="output")
        assert rv.row(8).output_null_dim == rv.known_orbit_dim == dim


def test_data_dependent_dimensions_appear_at_small_batches():
    """tanh 2-2-2-1 and sigmoid 3-3-1 (discovery.md §4 table): no functional symmetry, but the null
    space at batch 1 is large and shrinks with the batch."""
    tanh = census(zoo.get("tanh-3layer"), [1, 2, 4, 8, 64], level="output")
    assert [r.output_null_dim for r in tanh.rows] == [9, 8, 6, 2, 0]
    sig = census(zoo.get("sigmoid-2layer"), [1, 3, 8, 16], level="output")
    assert [r.output_null_dim for r in sig.rows] == [11, 9, 4, 0]
    assert tanh.known_orbit_dim == sig.known_orbit_dim == 0


COMPLETE = [
    dict(dims="3,4,2", act="linear"), dict(dims="3,4,2", act="linear", bias=True),
    dict(dims="2,3,4,2", act="linear", bias=True), dict(dims="1,5,1", act="linear"),
    dict(dims="3,4,2", act="relu"), dict(dims="3,4,2", act="relu", bias=True), dict(dims="2,6,3", act="relu"),
    dict(dims="2,4,4,1", act="leakyrelu"), dict(dims="3,5,2,4", act="leakyrelu"),
]


@pytest.mark.parametrize("kw", COMPLETE, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_known_symmetries_complete_for_linear_and_homogeneous(kw):
    """rank of the known fields = census null dimension (median over points, batch ≫ p)."""
    r = census(zoo.get("mlp", **kw), [256], level="output", points=3)
    assert r.row(256).output_null_dim == r.known_orbit_dim


def test_lora_adds_r_squared():
    """A module defined only here: a frozen base weight plus LoRA U V adds GL_r, r² dimensions."""
    base = zoo.from_module(torch.nn.Sequential(torch.nn.Linear(4, 5, bias=False), torch.nn.Tanh(),
                                               torch.nn.Linear(5, 3, bias=False)), sampler(4, 3), "mse")
    assert census(base, [64], level="output").row(64).output_null_dim == 0
    for r in (1, 2, 3):
        result = census(lora_arch(r), [64])
        assert result.row(64).output_null_dim == r * r == result.known_orbit_dim


def test_batchnorm_module_not_samplewise():
    r = census(bn_arch(), [32], level="output")
    assert r.row(32).output_null_dim == r.known_orbit_dim == 8  # 4 row scales + 4 bias translations


def test_softmax_translation_is_loss_level_only():
    r = census(zoo.get("mlp", dims="4,5,3", act="relu", bias=True, loss="cross_entropy"), [128])
    assert r.known_orbit_dim == r.row(128).output_null_dim == 5
    assert r.known_loss_orbit_dim == r.row(128).loss_null_dim == 5 + 6  # W ↦ W + 1vᵀ (5) and b ↦ b + c1


def test_jacobian_paths_agree():
    """vmap-over-samples and whole-batch Jacobians are the same matrix."""
    arch = zoo.get("mlp", dims="3,4,2", act="tanh", bias=True).to(dtype=torch.float64)
    joint = dataclasses.replace(arch, samplewise=False)
    g = make_generator(0)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(5, g)
    assert torch.allclose(output_jacobian(arch, theta, X), output_jacobian(joint, theta, X), atol=1e-13)
    assert torch.allclose(loss_jacobian(arch, theta, X, Y), loss_jacobian(joint, theta, X, Y), atol=1e-13)
    assert output_jacobian(arch, theta, X).shape == (10, arch.num_params)


def test_null_dimension_and_gap():
    J = torch.diag(torch.tensor([3.0, 1.0, 1e-14, 0.0], dtype=torch.float64))
    dim, gap = null_dimension(J)
    assert dim == 2 and 13 < gap < 15
    assert null_dimension(torch.zeros(3, 4, dtype=torch.float64)) == (4, None)
    assert null_dimension(torch.eye(4, dtype=torch.float64)) == (0, None)


def test_repeatable_and_bad_input():
    arch = zoo.get("tanh-3layer")
    a, b = census(arch, [1, 2], seed=3), census(arch, [1, 2], seed=3)
    assert [r.output_null_dims for r in a.rows] == [r.output_null_dims for r in b.rows]
    with pytest.raises(SymdiscError, match="level"):
        census(arch, [1], level="hessian")
    with pytest.raises(SymdiscError, match="batch sizes"):
        census(arch, [0])
    with pytest.raises(SymdiscError, match="GiB"):
        census(zoo.get("mlp", dims="64,128,10"), [4096], max_jacobian_gb=0.01)
