import pytest
import torch
from torch import nn

from symdisc import SymdiscError, make_generator, zoo
from symdisc.zoo import from_module, module_theta


@pytest.mark.parametrize(
    "name,p,out_shape",
    [
        ("linear-scalar", 2, (1, 1)),
        ("sigmoid-2layer", 12, (1, 1)),
        ("tanh-3layer", 10, (1, 1)),
        ("mlp-skip", 28, (64, 1)),
        ("tiny-transformer", 28, (8, 2, 2)),
        ("mlp", 12, (64, 1)),
    ],
)
def test_presets_shapes(name, p, out_shape):
    arch = zoo.get(name)
    g = make_generator(0)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(arch.default_batch_size, g)
    assert arch.num_params == p
    assert arch.forward(theta, X).shape == out_shape
    assert arch.per_sample_loss(theta, X, Y).shape == (arch.default_batch_size,)


@pytest.mark.parametrize("variant,p", [("plain", 28), ("wo", 32), ("ffn-bias", 32)])
def test_transformer_readings(variant, p):
    assert zoo.get("tiny-transformer", variant=variant).num_params == p


def test_mlp_options_and_errors():
    arch = zoo.get("mlp", dims="4,5,3", act="gelu", bias=True, loss="cross_entropy")
    assert arch.num_params == 4 * 5 + 5 + 5 * 3 + 3
    g = make_generator(0)
    X, Y = arch.sample_data(7, g)
    assert Y.dtype == torch.int64 and Y.max() < 3
    for kwargs, msg in [({"dims": "3,,x"}, "malformed"), ({"dims": "3"}, "malformed"), ({"act": "swish"}, "unknown"),
                        ({"loss": "hinge"}, "unknown loss"), ({"dims": "2,3,4,1", "skip": True}, "skip")]:
        with pytest.raises(SymdiscError, match=msg):
            zoo.get("mlp", **kwargs)
    with pytest.raises(SymdiscError, match="unknown architecture"):
        zoo.get("resnet")
    with pytest.raises(SymdiscError, match="takes no option"):
        zoo.get("tiny-transformer", dims="2,2")


def test_forward_matches_torch_modules():
    """The functional MLP equals the same network built from nn.Linear layers."""
    arch = zoo.get("mlp", dims="3,4,2", act="tanh", bias=True).to(dtype=torch.float64)
    g = make_generator(3)
    theta = arch.sample_params(g)
    X, _ = arch.sample_data(5, g)
    p = arch.layout.unflatten(theta)
    ref = torch.tanh(X @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
    assert torch.allclose(arch.forward(theta, X), ref, atol=1e-14)


def test_samples_repeat_with_seed():
    arch = zoo.get("tiny-transformer")
    a = arch.sample_params(make_generator(5)), arch.sample_data(8, make_generator(5))[0]
    b = arch.sample_params(make_generator(5)), arch.sample_data(8, make_generator(5))[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def sample_regression(batch, gen):
    return torch.randn(batch, 3, generator=gen), torch.randn(batch, 2, generator=gen)


def test_from_module_matches_module_and_leaves_it_alone():
    mod = TwoLayer()
    before = {k: v.clone() for k, v in mod.state_dict().items()}
    arch = from_module(mod, sample_regression, "mse")
    theta = module_theta(mod, arch.layout)
    X, _ = arch.sample_data(6, make_generator(0))
    assert torch.allclose(arch.forward(theta, X), mod(X), atol=1e-6)
    arch64 = arch.to(dtype=torch.float64)
    assert arch64.forward(theta.double(), X.double()).dtype == torch.float64
    assert all(torch.equal(before[k], v) for k, v in mod.state_dict().items())
    assert arch.layout.names == ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def test_from_module_bad_input():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 2)  # expects 5 features, gets 3

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(SymdiscError, match="forward/loss failed"):
        from_module(Broken(), sample_regression, "mse")
    with pytest.raises(SymdiscError, match="NaN"):
        from_module(TwoLayer(), lambda b, g: (torch.full((b, 3), float("nan")), torch.zeros(b, 2)), "mse")
    with pytest.raises(SymdiscError, match="nn.Module"):
        from_module(lambda x: x, sample_regression)
    with pytest.raises(SymdiscError, match="per-sample loss"):
        from_module(TwoLayer(), sample_regression, lambda out, y: (out - y).pow(2).sum())


def test_zoo_sampler_rejects_nan():
    arch = zoo.get("mlp")
    bad = arch.__class__(**{**arch.__dict__, "data_sampler": lambda b, g, d, dev: (torch.full((b, 3), float("nan")),
                                                                                  torch.zeros(b, 1))})
    with pytest.raises(SymdiscError, match="NaN"):
        bad.sample_data(4, make_generator(0))


def test_generator_streams_are_independent():
    """Nearby seeds must not give correlated draws (torch's MT19937 does for raw seeds j, 7920 + j):
    all three ReLU units of a 3-3-1 net are dead on one input with probability 1/8."""
    arch = zoo.get("mlp", act="relu", dims="3,3,1")
    dead = 0
    for j in range(64):
        W1 = arch.layout.unflatten(arch.sample_params(make_generator(0, 0, j)))["W1"]
        x = arch.sample_data(1, make_generator(0, 1, j, 1))[0][0]
        dead += bool((W1 @ x <= 0).all())
    assert dead < 20  # expected 8; correlated streams gave 5 of the first 5
    assert not torch.equal(make_generator(0, 1).get_state(), make_generator(0, 2).get_state())
