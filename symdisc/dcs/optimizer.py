"""DCS as a torch optimizer: the penalty's gradient, an α schedule, and balancing moves on a schedule.

    dcs = DCS(model, {"fc1.weight": "sparse"}, alpha=1e-3)
    opt = DCSOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), dcs,
                       alpha=lambda t: 1e-3 * min(1, t / 1000),      # optional warm-up of α
                       rebalance=Schedule.every(500))                # optional (dcs.md P16)
    for x, y in loader:                                               # the user's loop, unchanged:
        opt.zero_grad(); criterion(model(x), y).backward(); opt.step()   # no penalty term in the loss

``step`` adds ∇ α‖z_pen‖² = 2α z_pen to the penalised latents' gradients (or, with a closure, adds the
penalty to the closure's loss and gradients, so L-BFGS sees the whole objective) and then runs the inner
optimizer; the user's loss must therefore *not* include ``dcs.penalty()`` as well.  ``alpha`` is a number
or a function of the step count t (0 before the first step); the value used is written to ``dcs.alpha``.

On the ``rebalance`` schedule θ_latent moves along DCS's own rescaling orbit (``DCSRescaling``) to the
balanced point of every pair: T — hence the model — is unchanged and the penalty drops to the induced
regulariser.  A balanced scalar pair sits on DCS's own swap-fixed line w = ±u, where its sign is locked for
good (constraints.py), so balance late in training, once signs have settled.  The inner state moves with it
under ``state_policy`` (``transform``: first moments as
covectors, exactly v / diag J for this diagonal move).  Built on ``SymmetryOptimizer``: ``state_dict``
holds the step count and the event log, schedulers work on it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch

from symdisc.dcs.model import DCS, check_alpha
from symdisc.dcs.rescaling import DCSRescaling, DiagonalMove
from symdisc.errors import InputError
from symdisc.optim.base import SymmetryOptimizer
from symdisc.optim.move import StatePolicy
from symdisc.optim.schedule import Schedule

AlphaSpec = float | Callable[[int], float] | None


class DCSOptimizer(SymmetryOptimizer):
    """An inner torch.optim optimizer on a DCS-parametrized model, plus the penalty and balancing moves."""

    def __init__(self, optimizer: torch.optim.Optimizer, dcs: DCS, *, alpha: AlphaSpec = None,
                 rebalance: Schedule | Collection[int] | Callable[[int], bool] | None = None,
                 state_policy: StatePolicy = "transform", generator: torch.Generator | None = None):
        if not isinstance(dcs, DCS):
            raise InputError(f"DCSOptimizer takes a symdisc DCS handle, got {type(dcs).__name__}")
        if not dcs.blocks:
            raise InputError("this DCS handle has no constrained tensor (was it removed?)")
        self.dcs = dcs
        self.alpha_spec = dcs.alpha if alpha is None else alpha
        if not callable(self.alpha_spec):
            check_alpha(self.alpha_spec)
        super().__init__(optimizer, DCSRescaling(dcs), model=dcs.model, schedule=rebalance,
                         state_policy=state_policy, generator=generator)
        self._penalised = list(dcs.latent_parameters(penalised=True).values())

    def alpha_at(self, t: int) -> float:
        return check_alpha(self.alpha_spec(t) if callable(self.alpha_spec) else self.alpha_spec)

    def _add_penalty_grad(self, alpha: float) -> None:
        if alpha == 0:
            return
        with torch.no_grad():
            for z in self._penalised:
                if z.grad is None:
                    z.grad = torch.zeros_like(z)
            grads = [z.grad for z in self._penalised]
            torch._foreach_add_(grads, [z.detach() for z in self._penalised], alpha=2 * alpha)

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """α ← α(t); the penalty's gradient added; the inner step; then a balancing move if scheduled."""
        alpha = self.alpha_at(self.steps_done)
        self.dcs.set_alpha(alpha)
        if closure is None:
            self._add_penalty_grad(alpha)
            return super().step()

        def whole() -> torch.Tensor:
            loss = closure()
            self._add_penalty_grad(alpha)
            with torch.no_grad():
                return loss + alpha * self.dcs.raw_penalty()

        return super().step(whole)

    def on_schedule(self) -> None:
        self.rebalance()

    @torch.no_grad()
    def rebalance(self) -> dict:
        """Move every latent pair to its balanced point (T unchanged); returns and logs the event."""
        z = self.theta()
        c = self.symmetry.balancing_coefficients(z)
        before = float(self.dcs.raw_penalty())
        self.apply_move(DiagonalMove(self.symmetry.act(c, z), self.symmetry.scale_vector(c, z)))
        event = {"step": self.steps_done, "kind": "rebalance", "penalty_before": before,
                 "penalty_after": float(self.dcs.raw_penalty()), "max_log_scale": float(c.abs().max())}
        self.events.append(event)
        return event
