"""The flow of a vector field, θ(t) with dθ/dt = ξ(θ), by classical Runge–Kutta (RK4): used for the curves of
verification (fig. 6.6) and as the finite action of a null-constrained learned symmetry.

``retract`` (optional) maps each RK4 step's result back onto the manifold the exact flow stays on (the
projection method of geometric integration, Hairer–Lubich–Wanner IV.4): the integrator's error, and the error
of a field that is only piecewise smooth (a ReLU-family net's null space jumps where a pre-activation
changes sign), then never leaves that manifold."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Field = Callable[[torch.Tensor], torch.Tensor]  # θ ↦ ξ(θ)
Retraction = Callable[[torch.Tensor], torch.Tensor]  # θ ↦ the nearby point of the invariant manifold


def flow(field: Field, theta: torch.Tensor, t: torch.Tensor | float, steps: int,
         retract: Retraction | None = None) -> torch.Tensor:
    """θ(t) from θ(0) = θ in ``steps`` RK4 steps (global error O(steps⁻⁴)), each followed by ``retract``."""
    h, y = t / steps, theta
    for _ in range(steps):
        k1 = field(y)
        k2 = field(y + 0.5 * h * k1)
        k3 = field(y + 0.5 * h * k2)
        k4 = field(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if retract is not None:
            y = retract(y)
    return y


def path(field: Field, theta: torch.Tensor, ts: torch.Tensor, steps: int,
         retract: Retraction | None = None) -> torch.Tensor:
    """θ(t) at every t in ``ts`` (shape (len(ts), p)) along one trajectory each way from t = 0, with RK4 steps of
    at most max|t|/``steps``: the same step bound as ``flow(field, θ, ±max|t|, steps)`` at the ends, for the cost
    of one integration per direction instead of one per point."""
    t_max = float(ts.abs().max()) if ts.numel() else 0.0
    out = [None] * len(ts)
    for sign in (1.0, -1.0):
        order = sorted((i for i in range(len(ts)) if sign * float(ts[i]) > 0), key=lambda i: abs(float(ts[i])))
        y, t_now = theta, 0.0
        for i in order:
            gap = abs(float(ts[i])) - t_now
            n = max(1, math.ceil(steps * gap / t_max - 1e-9))
            y = flow(field, y, sign * gap, n, retract) if gap > 0 else y
            t_now = abs(float(ts[i]))
            out[i] = y
    for i in range(len(ts)):
        if out[i] is None:  # t = 0
            out[i] = theta
    return torch.stack(out)
