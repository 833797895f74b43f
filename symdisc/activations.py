"""Activations with the properties that decide their symmetries.

``homogeneous`` (degree α: σ(cz) = c^α σ(z) for c > 0) → positive rescaling;  ``odd``
(σ(−z) = −σ(z)) → sign flips;  ``radial`` (σ(z) = f(‖z‖) z on the whole hidden vector) → O(h);
``inverse`` present iff σ is a bijection of ℝ (needed by the σ-inverse teleport action);
``derivative`` σ' of a pointwise σ in closed form (the explicit data-dependent fields; a jvp otherwise).
Every pointwise σ admits hidden-unit permutations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from symdisc.errors import InputError

LEAKY_SLOPE = 0.1


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    pointwise: bool = True
    homogeneous_degree: float | None = None
    odd: bool = False
    radial: bool = False
    linear: bool = False
    inverse: Callable[[torch.Tensor], torch.Tensor] | None = None
    derivative: Callable[[torch.Tensor], torch.Tensor] | None = None


def _gelu_prime(z: torch.Tensor) -> torch.Tensor:
    """d/dz z Φ(z) = Φ(z) + z φ(z) (exact GELU)."""
    return 0.5 * (1 + torch.erf(z * 0.5**0.5)) + z * torch.exp(-0.5 * z * z) * (2 * torch.pi) ** -0.5


def _radial(z: torch.Tensor) -> torch.Tensor:
    """σ(z) = z / (1 + ‖z‖), the norm over the hidden axis (last)."""
    return z / (1.0 + torch.linalg.vector_norm(z, dim=-1, keepdim=True))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("linear", lambda z: z, homogeneous_degree=1.0, odd=True, linear=True, inverse=lambda y: y,
                   derivative=torch.ones_like),
        Activation("relu", F.relu, homogeneous_degree=1.0, derivative=lambda z: (z > 0).to(z.dtype)),
        Activation(
            "leakyrelu",
            lambda z: F.leaky_relu(z, LEAKY_SLOPE),
            homogeneous_degree=1.0,
            inverse=lambda y: torch.where(y > 0, y, y / LEAKY_SLOPE),
            derivative=lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE)),
        ),
        Activation("tanh", torch.tanh, odd=True, derivative=lambda z: 1 - torch.tanh(z) ** 2),
        Activation("sigmoid", torch.sigmoid, derivative=lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
        Activation("gelu", F.gelu, derivative=_gelu_prime),
        Activation("softplus", F.softplus, derivative=torch.sigmoid),
        Activation("radial", _radial, pointwise=False, radial=True, odd=True),
    ]
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InputError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None
