"""A network seen as a chain of linear layers, the shape lifting needs (dissertation Cor. 6.4.3).

    H_0 = pre(X),   Z_j = W_j H_{j−1} + b_j,   H_j = ops_j(Z_j) [+ H_{j−1} if residual_j]   (j < L),   f = Z_L

``Chain`` names each layer's weight W_j (torch layout (d_j, d_{j−1})) and bias in the architecture's θ,
the ops between layers (activation, normalisation across units, residual link) and ``lower(θ, X, j)`` = H_j,
the target's own forward of its layers 1..j.  Built from an MLP-family zoo preset (``chain_of``) or from an
``nn.Sequential`` of Linear layers, element-wise activations and normalisations (``sequential_target``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from symdisc import zoo
from symdisc.activations import LEAKY_SLOPE, get_activation
from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.zoo.mlp import MLPStructure, build_mlp

Lower = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]  # (θ, X, j) ↦ H_j


@dataclass(frozen=True)
class Hidden:
    """What follows linear layer j < L: ``ops`` in order (activation names; a normalisation's class name),
    whether each acts on one unit's row alone (``rowwise``), and whether H_{j−1} is added back (``residual``)."""

    ops: tuple[str, ...]
    rowwise: bool
    norm: str | None = None  # a normalisation across the layer's units (LayerNorm, softmax, …)
    residual: bool = False

    @property
    def acts(self) -> tuple[str, ...]:
        """The ops other than normalisations: what the block must share with the source."""
        return tuple(op for op in self.ops if op != self.norm)


@dataclass(frozen=True)
class Chain:
    """``arch`` as linear layers 1..L: ``weights``/``biases`` (θ names), ``dims`` d_0..d_L, ``hidden[j−1]`` the ops
    after layer j, ``lower`` the forward of the first layers, ``pre`` what precedes layer 1 ("" or e.g.
    "LayerNorm")."""

    arch: Architecture
    weights: tuple[str, ...]
    biases: tuple[str | None, ...]
    dims: tuple[int, ...]
    hidden: tuple[Hidden, ...]
    lower: Lower
    pre: str = ""

    @property
    def depth(self) -> int:
        return len(self.weights)


def chain_of(arch: Architecture | Chain) -> Chain:
    """The chain of an MLP-family zoo preset (built by ``build_mlp``: mlp, mlp-skip, linear-scalar, …)."""
    if isinstance(arch, Chain):
        return arch
    spec = arch.spec or {}
    name = spec.get("preset")
    if name is None or name not in zoo.names() or zoo.preset(name).builder is not build_mlp:
        raise InputError(f"lifting takes MLP-family zoo presets ({', '.join(mlp_presets())}) or an nn.Sequential "
                         f"(symdisc.lifting.sequential_target); {arch.name} is neither")
    act = get_activation(spec["act"])
    s = MLPStructure(tuple(spec["dims"]), act, bool(spec["bias"]), bool(spec.get("skip", False)))
    if s.layout != arch.layout:
        raise InputError(f"{arch.name}: its layout does not match its spec {spec}")
    L = s.depth
    hidden = tuple(Hidden((act.name,), act.pointwise, None, s.residual[j]) for j in range(1, L))
    return Chain(arch, tuple(f"W{j}" for j in range(1, L + 1)),
                 tuple(f"b{j}" if s.bias else None for j in range(1, L + 1)), s.dims, hidden,
                 lambda theta, X, j: s.hidden(theta, X, j))


def mlp_presets() -> list[str]:
    return [n for n in zoo.names() if zoo.preset(n).builder is build_mlp]


# element-wise modules and the symdisc activation each computes (LeakyReLU: symdisc's slope only)
_ELEMENTWISE = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Softplus: "softplus", nn.GELU: "gelu"}
_NORMS = (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.Softmax, nn.LocalResponseNorm)


def _op(m: nn.Module) -> tuple[str, bool, bool]:
    """(name, row-wise, is a normalisation across units) of one module between Linear layers."""
    if isinstance(m, nn.LeakyReLU):
        return ("leakyrelu" if m.negative_slope == LEAKY_SLOPE else f"leakyrelu({m.negative_slope})"), True, False
    for cls, name in _ELEMENTWISE.items():
        if type(m) is cls and (cls is not nn.Softplus or (m.beta, m.threshold) == (1.0, 20.0)) \
                and (cls is not nn.GELU or m.approximate == "none"):
            return name, True, False
    if isinstance(m, _NORMS):
        return type(m).__name__, False, True
    raise InputError(f"lifting reads nn.Sequential targets of Linear layers, element-wise activations (Tanh, ReLU, "
                     f"Sigmoid, LeakyReLU, GELU, Softplus, Identity) and normalisations; got {type(m).__name__}")


def sequential_target(module: nn.Sequential, sample_batch, loss="mse", name: str | None = None) -> Chain:
    """The chain of an ``nn.Sequential`` (its architecture through ``zoo.from_module``).  A normalisation or any op
    before the first Linear is part of H_0; between Linear layers the ops are recorded per hidden layer."""
    if not isinstance(module, nn.Sequential):
        raise InputError(f"sequential_target takes an nn.Sequential, got {type(module).__name__}")
    arch = zoo.from_module(module, sample_batch, loss, name=name or "sequential")
    base = copy.deepcopy(module)
    linear = [i for i, m in enumerate(base) if isinstance(m, nn.Linear)]
    if not linear:
        raise InputError("the nn.Sequential has no Linear layer")
    keys = list(base._modules)
    pre = [_op(m)[0] for m in base[:linear[0]] if not isinstance(m, nn.Identity)]
    hidden = []
    for a, b in zip(linear[:-1], linear[1:], strict=True):
        ops = [_op(m) for m in base[a + 1:b] if not isinstance(m, nn.Identity)] or [("linear", True, False)]
        norm = next((n for n, _, is_norm in ops if is_norm), None)
        hidden.append(Hidden(tuple(n for n, _, _ in ops), all(r for _, r, _ in ops), norm))
    prefixes = [base[:i] for i in linear]  # H_j is the input of layer j + 1: the modules before it

    def lower(theta: torch.Tensor, X: torch.Tensor, j: int) -> torch.Tensor:
        sub = prefixes[j]
        if len(sub) == 0:
            return X
        params = arch.layout.unflatten(theta)
        state = {n: params[n] if n in params else t.detach().to(theta) for n, t in sub.named_parameters()}
        state.update({n: b.to(theta) if b.is_floating_point() else b for n, b in sub.named_buffers()})
        return functional_call(sub, state, (X,))

    mods = [base[i] for i in linear]
    dims = (mods[0].in_features, *(m.out_features for m in mods))
    if any(b.in_features != a.out_features for a, b in zip(mods[:-1], mods[1:], strict=True)):
        raise InputError(f"the Linear layers' widths do not chain: {[(m.in_features, m.out_features) for m in mods]}")
    return Chain(arch, tuple(f"{keys[i]}.weight" for i in linear),
                 tuple(f"{keys[i]}.bias" if base[i].bias is not None else None for i in linear), dims,
                 tuple(hidden), lower, "+".join(pre))
