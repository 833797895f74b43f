"""Loss drift along a curve through θ (dissertation fig. 6.6): the orbit γ(t) = a_X(exp(t h), θ), or the
RK4 flow of the field ξ_h, with t scaled so that ‖ξ_h(θ)‖·t_max = curve_rel·‖θ‖."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import vmap

from symdisc.architecture import Architecture
from symdisc.flow import Field, path
from symdisc.verification.config import VerifyConfig

Curve = Callable[[torch.Tensor], torch.Tensor]  # ts ↦ γ(ts), (len(ts), p)


def drift(arch: Architecture, theta, X, Y, field: Field, curve: Curve, kind: str, cfg: VerifyConfig) -> float:
    """max_t |L(γ(t)) − L(θ)| over ``cfg.curve_points`` t ∈ [−t_max, t_max]; ``kind`` "orbit" follows ``curve``,
    "flow" integrates ``field`` (one RK4 trajectory each way, ``symdisc.flow.path``)."""
    t_max = cfg.curve_rel * theta.norm() / field(theta).norm().clamp_min(1e-300)
    ts = torch.linspace(-1, 1, cfg.curve_points, dtype=theta.dtype, device=theta.device) * t_max
    points = curve(ts) if kind == "orbit" else path(field, theta, ts, cfg.flow_steps)
    L0 = arch.batch_loss(theta, X, Y)
    return (vmap(lambda q: arch.batch_loss(q, X, Y))(points) - L0).abs().max().item()
