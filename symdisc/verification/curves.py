"""Loss drift along a curve through θ (dissertation fig. 6.6): the orbit γ(t) = a_X(exp(t h), θ), or the
RK4 flow of the field ξ_h, with t scaled so that ‖ξ_h(θ)‖·t_max = curve_rel·‖θ‖."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import vmap

from symdisc.architecture import Architecture
from symdisc.verification.config import VerifyConfig

Field = Callable[[torch.Tensor], torch.Tensor]  # θ ↦ ξ(θ)
Curve = Callable[[torch.Tensor], torch.Tensor]  # t ↦ γ(t)


def flow(field: Field, theta: torch.Tensor, t: torch.Tensor, steps: int) -> torch.Tensor:
    """RK4 integration of θ' = ξ(θ) from 0 to t."""
    h, y = t / steps, theta
    for _ in range(steps):
        k1 = field(y)
        k2 = field(y + 0.5 * h * k1)
        k3 = field(y + 0.5 * h * k2)
        k4 = field(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def drift(arch: Architecture, theta, X, Y, field: Field, curve: Curve, kind: str, cfg: VerifyConfig) -> float:
    """max_t |L(γ(t)) − L(θ)| over ``cfg.curve_points`` t ∈ [−t_max, t_max]; ``kind`` "orbit" follows ``curve``,
    "flow" integrates ``field``."""
    t_max = cfg.curve_rel * theta.norm() / field(theta).norm().clamp_min(1e-300)
    ts = torch.linspace(-1, 1, cfg.curve_points, dtype=theta.dtype) * t_max
    if kind == "orbit":
        points = vmap(curve)(ts)
    else:
        points = vmap(lambda t: flow(field, theta, t, cfg.flow_steps))(ts)
    L0 = arch.batch_loss(theta, X, Y)
    return (vmap(lambda q: arch.batch_loss(q, X, Y))(points) - L0).abs().max().item()
