"""Property-based checks over random MLP shapes: every known field lies in the output Jacobian's
null space, and the census never counts fewer directions than the known orbit."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from symdisc import census, make_generator, zoo
from symdisc.jacobians import output_jacobian
from symdisc.symmetry import continuous_symmetries, orbit_dimension, stacked_tangents

mlps = st.fixed_dictionaries({
    "dims": st.lists(st.integers(1, 5), min_size=3, max_size=5).map(tuple),
    "act": st.sampled_from(["linear", "relu", "leakyrelu", "tanh", "sigmoid", "gelu", "radial"]),
    "bias": st.booleans(),
})


@settings(max_examples=30, deadline=None)
@given(kw=mlps, seed=st.integers(0, 2**16))
def test_known_fields_in_output_null_space(kw, seed):
    arch = zoo.get("mlp", **kw).to(dtype=torch.float64)
    theta = arch.sample_params(make_generator(seed))
    X, _ = arch.sample_data(16, make_generator(seed, 1))
    xi = stacked_tangents(continuous_symmetries(arch), theta)
    J = output_jacobian(arch, theta, X)
    if xi.shape[1]:
        assert (J @ xi).abs().max() <= 1e-10 * max(1.0, J.norm() * xi.norm())
    r = census(arch, [16], level="output", points=1, seed=seed)
    # the point's count at its cut (the row's median is None when the gap cut finds the point ambiguous)
    assert r.row(16).output_null_dims[0] >= orbit_dimension(xi) == r.known_orbit_dim


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_census_on_cuda_matches_cpu():
    arch = zoo.get("tiny-transformer")
    cpu, gpu = census(arch, [1, 8]), census(arch, [1, 8], device="cuda")
    assert gpu.device.startswith("cuda")
    assert [r.output_null_dims for r in cpu.rows] == [r.output_null_dims for r in gpu.rows]
