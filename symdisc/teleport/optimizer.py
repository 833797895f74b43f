"""Teleportation as a torch optimizer (D Alg. 1; teleport.md §1.5–1.6).

    opt = TeleportOptimizer(torch.optim.Adam(model.parameters(), 1e-3), symmetry, model=model,
                            criterion=torch.nn.functional.cross_entropy, batches=draw_batch,
                            schedule=[100])
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)   # opt is a torch.optim.Optimizer
    for x, y in loader:                                # the user's loop, unchanged
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step(); sched.step()

After every optimizer step t with ``schedule.due(t)`` (``symdisc.optim.Schedule``: steps, a period or
a predicate), ``teleport_batches`` batches are drawn with ``batches(generator)`` — the optimizer's
own generator, saved in ``state_dict`` so a resumed run draws the same batches — and θ is teleported
on each in turn (teleport.md §1.5).  The inner optimizer's state follows ``state_policy``
(``symdisc.optim.move``): ``transform`` maps first moments as covectors along the teleport
(P4; teleport.md §1.6 (i)), ``keep`` leaves the state (§1.6 (ii)), ``reset`` zeroes first moments
(§1.6 (iii)); second moments are kept.

The ``adagrad`` objective reads the AdaGrad accumulator (``sum``) of the inner optimizer.
Teleports never leave the parameters or the state half-updated: an error leaves both as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from symdisc.errors import InputError
from symdisc.optim.base import SymmetryOptimizer
from symdisc.optim.move import StatePolicy
from symdisc.optim.schedule import Schedule
from symdisc.symmetry.base import Symmetry
from symdisc.teleport.routine import TeleportConfig, TeleportResult, teleport

Batch = Any


class TeleportOptimizer(SymmetryOptimizer):
    """An inner torch.optim optimizer plus teleports along ``symmetry`` on a schedule."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        symmetry: Symmetry,
        *,
        model: nn.Module | None = None,
        params: torch.Tensor | Sequence[torch.Tensor] | None = None,
        loss_fn: Callable[[torch.Tensor, Batch], torch.Tensor] | None = None,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        batches: Callable[[torch.Generator], Batch] | None = None,
        inputs: Callable[[Batch], torch.Tensor] | None = None,
        schedule: Schedule | Collection[int] | Callable[[int], bool] | None = None,
        teleport_batches: int = 1,
        config: TeleportConfig = TeleportConfig(),
        state_policy: StatePolicy = "transform",
        generator: torch.Generator | None = None,
    ):
        """``loss_fn(θ, batch)`` (or ``model`` + ``criterion(outputs, targets)`` on batches (x, y)) is the loss
        kept by teleports; ``inputs(batch)`` the data a data-dependent symmetry acts with (default batch[0])."""
        if loss_fn is None and (model is None or criterion is None):
            raise InputError("pass loss_fn(θ, batch), or a model and a criterion(outputs, targets)")
        if teleport_batches < 1:
            raise InputError(f"teleport_batches must be ≥ 1, got {teleport_batches}")
        config.validate()
        super().__init__(optimizer, symmetry, model=model, params=params, schedule=schedule,
                         state_policy=state_policy, generator=generator)
        self.config, self.model, self.criterion = config, model, criterion
        self.loss_fn = loss_fn or self._module_loss
        self.batches, self.teleport_batches = batches, teleport_batches
        self.inputs = inputs or (lambda b: b[0] if isinstance(b, (tuple, list)) else b)

    def on_schedule(self) -> None:
        for _ in range(self.teleport_batches):
            self.teleport(self.draw_batch())

    def draw_batch(self) -> Batch:
        """One teleport batch from ``batches(generator)`` (None without ``batches``: a data-free loss)."""
        return self.batches(self.generator) if self.batches is not None else None

    def _module_loss(self, theta: torch.Tensor, batch: Batch) -> torch.Tensor:
        x, y = batch
        return self.criterion(functional_call(self.model, self.symmetry.layout.unflatten(theta), (x,)), y)

    def teleport(self, batch: Batch = None) -> TeleportResult:
        """Teleport θ now on ``batch`` (None for data-free losses); writes θ' and the transported state back."""
        t0 = time.perf_counter()
        theta = self.theta()
        X = self.inputs(batch) if (batch is not None and self.symmetry.data_dependent) else None
        accumulator = self.moment("sum") if self.config.objective == "adagrad" else None
        if self.config.objective == "adagrad" and accumulator is None:
            raise InputError("the adagrad objective needs the accumulator 'sum' of torch.optim.Adagrad, "
                             f"which {type(self.optimizer).__name__} does not keep")
        result = teleport(self.symmetry, theta, lambda th: self.loss_fn(th, batch), X, self.config,
                          generator=self.generator, accumulator=accumulator)
        self.apply_move(result)
        self.events.append({"step": self.steps_done, "seconds": time.perf_counter() - t0, **result.summary()})
        return result
