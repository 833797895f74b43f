import pytest
import torch

from symdisc import make_generator


@pytest.fixture
def gen():
    return make_generator(1234)


def draw(arch, batch, seed=0):
    """(θ, X, Y) in float64 from a seeded generator."""
    arch = arch.to(dtype=torch.float64)
    g = make_generator(seed)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(batch, g)
    return arch, theta, X, Y
