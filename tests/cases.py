"""Architectures with their known symmetries, shared by the symmetry and census tests."""

import torch
from torch import nn

from symdisc import zoo
from symdisc.symmetry import batchnorm_scale, bias_translation, lora_gl

# (id, builder kwargs) for zoo MLPs and transformers covering every known-symmetry family.
ZOO_CASES = [
    ("linear-bias", "mlp", dict(dims="3,4,2", act="linear", bias=True)),
    ("linear-deep", "mlp", dict(dims="2,3,4,2", act="linear")),
    ("relu-bias", "mlp", dict(dims="3,4,2", act="relu", bias=True)),
    ("leaky-deep", "mlp", dict(dims="2,5,3,2", act="leakyrelu", bias=True)),
    ("tanh-bias", "mlp", dict(dims="2,3,3,1", act="tanh", bias=True)),
    ("sigmoid", "mlp", dict(dims="3,3,1", act="sigmoid", bias=True)),
    ("radial", "mlp", dict(dims="3,4,2", act="radial")),
    ("relu-ce", "mlp", dict(dims="4,5,3", act="relu", bias=True, loss="cross_entropy")),
    ("relu-skip", "mlp", dict(dims="2,4,4,1", act="relu", bias=True, skip=True)),
    ("linear-skip", "mlp", dict(dims="2,4,4,1", act="linear", skip=True)),
    ("tanh-skip", "mlp-skip", dict()),
    ("transformer", "tiny-transformer", dict()),
    ("transformer-wo", "tiny-transformer", dict(variant="wo")),
    ("transformer-b1", "tiny-transformer", dict(variant="ffn-bias")),
]


class LoRANet(nn.Module):
    """tanh(x (W0 + U V)ᵀ) W2ᵀ with W0 frozen: LoRA adds GL_r on (U, V)."""

    def __init__(self, n=4, h=5, m=3, r=2):
        super().__init__()
        self.W0 = nn.Parameter(torch.randn(h, n), requires_grad=False)
        self.U = nn.Parameter(torch.randn(h, r))
        self.V = nn.Parameter(torch.randn(r, n))
        self.out = nn.Linear(h, m, bias=False)

    def forward(self, x):
        return self.out(torch.tanh(x @ (self.W0 + self.U @ self.V).T))


class BatchNormNet(nn.Module):
    """tanh(BN(W1 x + b1)) → linear; BN over the batch with batch statistics and ε (0: exact)."""

    def __init__(self, n=3, h=4, m=2, eps=0.0):
        super().__init__()
        self.fc1, self.fc2, self.eps = nn.Linear(n, h), nn.Linear(h, m), eps

    def forward(self, x):
        z = self.fc1(x)
        z = (z - z.mean(0)) / (z.var(0, unbiased=False) + self.eps).sqrt()
        return self.fc2(torch.tanh(z))


def sampler(n, m):
    return lambda b, g: (torch.randn(b, n, generator=g), torch.randn(b, m, generator=g))


def lora_arch(r=2):
    return zoo.from_module(LoRANet(r=r), sampler(4, 3), "mse", symmetries=lambda a: [lora_gl(a.layout, "U", "V")])


def bn_arch():
    return zoo.from_module(
        BatchNormNet(), sampler(3, 2), "mse", samplewise=False,
        symmetries=lambda a: [batchnorm_scale(a.layout, "fc1.weight", "fc1.bias"),
                              bias_translation(a.layout, "fc1.bias")],
    )


def all_architectures():
    """(id, Architecture) for every case, zoo and user modules."""
    out = [(cid, zoo.get(name, **kw)) for cid, name, kw in ZOO_CASES]
    return out + [("lora", lora_arch()), ("batchnorm", bn_arch())]
