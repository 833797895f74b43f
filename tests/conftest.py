import pytest
import torch

from symdisc import make_generator


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors and many small products (HVPs, LOBPCG, tiny models): on the shared 2-core CI machine torch's
    intra-op threads only add contention (5–10× slower under load).  Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
