"""symdisc.linalg.expm: the one matrix exponential of the group actions, accurate where torch's single-matrix
matrix_exp is not (its degree-8 Taylor step, pytorch/pytorch#196592), and transparent to torch.func."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.func import jacrev, jvp, vmap

from symdisc import make_generator
from symdisc.linalg import expm

TOL = {torch.float64: 1e-15, torch.float32: 3e-7}


def _matrices(dtype):
    """Rotations (spectral radius = norm: the worst case) and random 5×5 matrices, 1-norms 1e-5 … 1."""
    gen = make_generator(0, 31)
    for norm in np.logspace(-5, 0, 41):
        yield torch.tensor([[0.0, -norm], [norm, 0.0]], dtype=torch.float64).to(dtype)
        A = torch.randn(5, 5, generator=gen, dtype=torch.float64)
        yield (A * norm / torch.linalg.matrix_norm(A, 1)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_expm_matches_scipy_in_every_band(dtype):
    worst = 0.0
    for A in _matrices(dtype):
        ref = torch.from_numpy(scipy.linalg.expm(A.double().numpy()))
        worst = max(worst, float((expm(A).double() - ref).norm() / ref.norm()))
    assert worst <= TOL[dtype]


def test_expm_under_vmap_and_derivatives():
    M = 0.03 * torch.randn(4, 4, generator=make_generator(1, 31), dtype=torch.float64)  # in the degree-8 band
    assert torch.allclose(vmap(expm)(torch.stack([M, -M])), torch.stack([expm(M), expm(-M)]), atol=1e-15)
    E = torch.randn(4, 4, generator=make_generator(2, 31), dtype=torch.float64)
    fd = (expm(M + 1e-6 * E) - expm(M - 1e-6 * E)) / 2e-6
    assert torch.allclose(jvp(expm, (M,), (E,))[1], fd, atol=1e-9)
    assert torch.allclose(torch.einsum("abij,ij->ab", jacrev(expm)(M), E), fd, atol=1e-9)
