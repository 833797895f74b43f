"""The base of every optimizer that uses a Symmetry (teleportation now; Ridge Rider and DCS next).

    opt = SomeSymmetryOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), symmetry, model=model, ...)
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)     # any scheduler: opt IS a torch.optim.Optimizer
    for x, y in loader:
        opt.zero_grad(); loss(model(x), y).backward(); opt.step(); sched.step()

A ``SymmetryOptimizer`` is a ``torch.optim.Optimizer`` that wraps an inner one (the update rule) and
shares its ``param_groups`` and ``state`` (the same objects): a scheduler that changes
``opt.param_groups[i]["lr"]`` changes the inner optimizer's, ``zero_grad(set_to_none=True)`` and step
hooks work, and checkpoints hold the inner state.  The base owns what every family needs:

* the binding of the symmetry's layout to the parameters (``binding``: θ ⇄ tensors);
* a schedule (``Schedule``): after every optimizer step t with ``schedule.due(t)``, ``on_schedule()``;
* ``apply_move(move)``: write θ' and transport the inner optimizer's state along a ``GroupMove``
  under ``state_policy`` — computed first, written only if everything is finite, so a failure
  leaves parameters and state as they were;
* a random generator for everything the family draws, and ``state_dict`` / ``load_state_dict`` that
  include it, the step count and the event log, so a resumed run repeats its events bitwise.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch
from torch import nn

from symdisc.errors import InputError
from symdisc.optim.binding import ParamBinding
from symdisc.optim.move import FIRST_MOMENTS, GroupMove, StatePolicy, check_policy
from symdisc.optim.resumable import Resumable
from symdisc.optim.schedule import Schedule
from symdisc.symmetry.base import Symmetry

STATE_KEY = "symdisc"  # where a SymmetryOptimizer keeps its own state inside the inner optimizer's state_dict


class SymmetryOptimizer(Resumable, torch.optim.Optimizer):
    """An inner torch.optim optimizer plus a symmetry-using action on a schedule (subclasses: ``on_schedule``)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        symmetry: Symmetry,
        *,
        model: nn.Module | None = None,
        params: torch.Tensor | Sequence[torch.Tensor] | None = None,
        schedule: Schedule | Collection[int] | Callable[[int], bool] | None = None,
        state_policy: StatePolicy = "transform",
        generator: torch.Generator | None = None,
    ):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"wrap a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, SymmetryOptimizer):
            raise InputError("wrap the update rule (e.g. torch.optim.SGD), not another symmetry optimizer")
        if not isinstance(symmetry, Symmetry):
            raise InputError(f"expected a symdisc Symmetry, got {type(symmetry).__name__}")
        self.optimizer, self.symmetry = optimizer, symmetry
        self.state_policy = check_policy(state_policy)
        self.binding = ParamBinding(symmetry.layout, model, params, owner=symmetry.name)
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if any(id(t) not in in_optimizer for t in self.binding.tensors):
            raise InputError("some parameters the symmetry acts on are not in the optimizer's param_groups")
        super().__init__(optimizer.param_groups, optimizer.defaults)
        self._share()
        self._ready = True
        self.schedule = Schedule.of(schedule)
        self.init_resumable(generator)

    def _share(self) -> None:
        """The wrapper's param_groups and state are the inner optimizer's objects."""
        self.param_groups = self.optimizer.param_groups
        self.state = self.optimizer.state
        self.defaults = self.optimizer.defaults

    # ---- torch.optim surface --------------------------------------------------------------------
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One step of the inner optimizer; then, if the schedule says so, the family's action."""
        loss = self.optimizer.step(closure)
        self.steps_done += 1
        if self.schedule.due(self.steps_done):
            self.on_schedule()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict) -> None:
        if not getattr(self, "_ready", False):  # torch.optim.Optimizer.__init__ registering the shared groups
            return super().add_param_group(param_group)
        self.optimizer.add_param_group(param_group)
        self._share()

    def state_dict(self) -> dict:
        """The inner optimizer's state_dict plus ``"symdisc"``: steps, events, generator and family state."""
        out = self.optimizer.state_dict()
        out[STATE_KEY] = {**self.resumable_state(), **self.extra_state()}
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        own = state_dict.pop(STATE_KEY, None)
        if own is None:
            raise InputError("this state_dict was not saved by a symmetry optimizer (no 'symdisc' entry); "
                             "load it into the inner optimizer instead")
        self.optimizer.load_state_dict(state_dict)
        self._share()
        self.load_resumable(own)
        self.load_extra_state(own)

    def extra_state(self) -> dict:
        """A family's own resumable state (plain values and tensors)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Inverse of ``extra_state``."""

    # ---- what families build on -----------------------------------------------------------------
    def on_schedule(self) -> None:
        """The family's action after a scheduled step (teleport, ridge switch, constraint update, …)."""
        raise NotImplementedError

    def theta(self) -> torch.Tensor:
        """The current θ (flat, layout order, detached)."""
        return self.binding.theta()

    def moment(self, key: str) -> torch.Tensor | None:
        """The inner optimizer's per-parameter buffer ``key`` as a flat vector (None when it keeps none)."""
        return self.binding.gather(self.optimizer.state, key)

    def apply_move(self, move: GroupMove) -> None:
        """θ ← move.theta, and the inner state transported along the move under ``state_policy``."""
        buffers = {key: m for key in FIRST_MOMENTS if (m := self.moment(key)) is not None}
        new_state = move.transport_state(buffers, self.state_policy)  # raises before anything is written
        theta = self.binding.theta()
        self.binding.assign(move.theta.to(theta))
        for key, flat in new_state.items():
            self.binding.scatter(self.optimizer.state, key, flat)
