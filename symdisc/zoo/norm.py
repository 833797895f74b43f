"""LayerNorm followed by an MLP, in the style of a transformer's pre-norm head: LN(d_0) → Linear → act → … .

    f(θ, x) = W_L σ(… σ(W_1 LN_{γ,β}(x) + b_1) …) + b_L,   LN_{γ,β}(x) = γ ⊙ (x − x̄)/s(x) + β

Its census at batch ≥ 16 exceeds the known linear symmetries by fields nonlinear in θ: the normalised
vector sums to zero, so W_1 ↦ W_1 + a (1/γ)ᵀ with b_1 ↦ b_1 − a ⟨1/γ, β⟩ keeps f for every a ∈ ℝ^{d_1}
(a direction that depends on 1/γ, not linearly on θ), beside the β-shifts absorbed by b_1 and the
γ-rescalings absorbed by W_1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.zoo.mlp import parse_dims
from symdisc.zoo.module import from_module

_ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "linear": nn.Identity}


def build_layernorm_mlp(name: str = "layernorm-mlp", dims: str | Sequence[int] = (4, 3), act: str = "relu",
                        batch: int = 64) -> Architecture:
    """LayerNorm(d_0) then Linear layers of widths ``dims`` (biases on) with ``act`` between them; Gaussian
    X, Y, parameters from PyTorch's default initialisation under the architecture's seed."""
    dims_t = parse_dims(dims)
    if act not in _ACTS:
        raise InputError(f"unknown activation {act!r} for layernorm-mlp; choose {', '.join(_ACTS)}")
    layers: list[nn.Module] = [nn.LayerNorm(dims_t[0])]
    for j, (a, b) in enumerate(zip(dims_t[:-1], dims_t[1:], strict=True)):
        layers += ([_ACTS[act]()] if j else []) + [nn.Linear(a, b)]
    module = nn.Sequential(*layers)

    def sample(B: int, gen: torch.Generator):
        return (torch.randn(B, dims_t[0], generator=gen, dtype=torch.float64),
                torch.randn(B, dims_t[-1], generator=gen, dtype=torch.float64))

    arch = from_module(module, sample, "mse", name=name, default_batch_size=batch)
    return replace(arch, spec={"preset": name, "dims": list(dims_t), "act": act, "batch": batch},
                   source=(build_layernorm_mlp.__doc__ or "").strip())
