"""Training a flat θ with a torch.optim optimizer, optionally wrapped in ``TeleportOptimizer`` — the few
lines a user writes — recording the loss and ‖∇L‖² at every step (E1–E4, E10, E11)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch.func import grad

from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry
from symdisc.teleport.optimizer import TeleportOptimizer
from symdisc.teleport.routine import TeleportConfig

OPTIMIZERS: dict[str, Callable[[list[torch.Tensor], float], torch.optim.Optimizer]] = {
    "gd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
    "adagrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr, eps=1e-10),
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
}


def train_flat(theta0: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor], optimizer: str, lr: float,
               steps: int, symmetry: Symmetry | None = None, schedule=(), config: TeleportConfig | None = None,
               X: torch.Tensor | None = None, state_policy: str = "transform") -> dict:
    """Train θ (a flat leaf tensor) for ``steps`` optimizer steps, teleporting on the schedule.

    Returns losses[t] = L(θ_t) and grad_norm_sq[t] (t = 0..steps), the teleport events, seconds and θ."""
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    theta = theta0.detach().clone().requires_grad_(True)
    inner = OPTIMIZERS[optimizer]([theta], lr)
    opt = inner
    if symmetry is not None:
        opt = TeleportOptimizer(inner, symmetry, params=[theta], loss_fn=lambda th, _: loss(th),
                                batches=lambda g: X, inputs=lambda batch: batch, schedule=schedule,
                                config=config or TeleportConfig(), state_policy=state_policy)
    losses, grad_sq = [], []
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        value = loss(theta)
        value.backward()
        losses.append(float(value.detach()))
        grad_sq.append(float(theta.grad.pow(2).sum()))
        if not math.isfinite(losses[-1]):
            break
        opt.step()
    final = float(loss(theta.detach()))
    losses.append(final)
    grad_sq.append(float(grad(loss)(theta.detach()).pow(2).sum()) if math.isfinite(final) else math.nan)
    events = opt.events if symmetry is not None else []
    return {"losses": losses, "grad_norm_sq": grad_sq, "teleports": events, "seconds": time.perf_counter() - t0,
            "theta": theta.detach()}
