"""The loss guard of a teleport: every accepted step keeps the batch loss L within a tolerance.

A step whose loss drifts by more than ``atol + rtol·|L₀|`` (an approximate or learned symmetry, a
data-dependent action on a batch larger than the width) is either corrected back to the level
set L = L₀ by Newton steps along the gradient,  θ ← θ − (L(θ) − L₀) ∇L / ‖∇L‖²,  or refused.
The status of every step (accepted / corrected / refused) goes into the teleport log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from symdisc.teleport.objectives import LossFn, value_and_grad

SKIP_WHEN_OFF = True  # an infinite tolerance accepts without evaluating L (False: it evaluates; benchmarks)


@dataclass(frozen=True)
class LossGuard:
    rtol: float = 1e-6
    atol: float = 1e-12
    correct: bool = True
    newton_steps: int = 5

    def tolerance(self, loss0: float) -> float:
        return self.atol + self.rtol * abs(loss0)

    def project(self, loss_fn: LossFn, theta: torch.Tensor, loss0: float) -> torch.Tensor:
        """Newton steps towards the level set {L = L₀} along ∇L (stops once within tolerance)."""
        for _ in range(self.newton_steps):
            value, g = value_and_grad(loss_fn, theta)
            gap = float(value) - loss0
            if abs(gap) <= self.tolerance(loss0) or not torch.isfinite(g).all():
                break
            theta = theta - gap * g / g.pow(2).sum().clamp_min(1e-300)
        return theta.detach()

    def check(self, loss_fn: LossFn, theta: torch.Tensor, loss0: float) -> tuple[torch.Tensor, str, float | None]:
        """(θ to use, status, drift |L(θ) − L₀| after any correction); status ∈ accepted|corrected|refused.  A guard
        with infinite tolerance (off) accepts every step without evaluating L: drift None (not measured)."""
        if SKIP_WHEN_OFF and math.isinf(self.tolerance(loss0)):
            return theta, "accepted", None
        drift = abs(float(loss_fn(theta)) - loss0)
        if drift <= self.tolerance(loss0):
            return theta, "accepted", drift
        if self.correct:
            fixed = self.project(loss_fn, theta, loss0)
            fixed_drift = abs(float(loss_fn(fixed)) - loss0)
            if fixed_drift <= self.tolerance(loss0):
                return fixed, "corrected", fixed_drift
        return theta, "refused", drift
