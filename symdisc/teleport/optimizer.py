"""Teleportation inside any torch.optim optimizer (D Alg. 1; teleport.md §1.5–1.6).

    opt = TeleportOptimizer(torch.optim.Adam(model.parameters(), 1e-3), symmetry, model=model,
                            criterion=torch.nn.functional.cross_entropy, batches=teleport_batches,
                            schedule=[100])
    for x, y in loader:                      # the user's loop, unchanged
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

After the optimizer step whose count is in ``schedule`` (a collection of step numbers or a
predicate), ``teleport_batches`` batches are drawn from ``batches()`` and θ is teleported on each
in turn (teleport.md §1.5).  Parameters are a module's (the symmetry's layout names) or a list of
tensors matching the layout, or one flat tensor.  The optimizer's state follows ``state_policy``:

* ``transform`` (default): first-moment buffers (momentum_buffer, exp_avg, grad_avg) are
  transported like gradients, m ↦ J^{-T} m (P4; teleport.md §1.6 (i));  second moments (AdaGrad
  ``sum``, Adam ``exp_avg_sq``, RMSProp ``square_avg``) and step counts are kept — they are
  per-coordinate magnitudes with no transformation law under a non-diagonal J;
* ``keep``: the state is left as it is (§1.6 (ii));
* ``reset``: first-moment buffers are set to 0 (§1.6 (iii)); second moments are kept.

The ``adagrad`` objective reads the AdaGrad accumulator (``sum``) of the wrapped optimizer.
Teleports never leave the parameters or the state half-updated: an error leaves both as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call

from symdisc.errors import InputError, NumericalError
from symdisc.symmetry.base import Symmetry
from symdisc.teleport.routine import TeleportConfig, TeleportResult, teleport

StatePolicy = Literal["transform", "keep", "reset"]
FIRST_MOMENTS = ("momentum_buffer", "exp_avg", "grad_avg")
Batch = Any


def _bind_params(symmetry: Symmetry, model: nn.Module | None, params) -> list[torch.Tensor]:
    """The tensors θ is made of, in layout order (checked against the symmetry's layout)."""
    layout = symmetry.layout
    if model is not None:
        named = dict(model.named_parameters())
        missing = [n for n in layout.names if n not in named]
        if missing:
            raise InputError(f"{symmetry.name} acts on parameters {', '.join(missing)} that the model does not "
                               f"have (model: {', '.join(named) or 'none'}): the symmetry belongs to another model")
        tensors = [named[n] for n in layout.names]
    else:
        tensors = [params] if isinstance(params, torch.Tensor) else list(params)
    if len(tensors) == 1 and tensors[0].dim() == 1 and tensors[0].numel() == layout.num_params:
        return tensors  # one flat θ
    shapes = [tuple(t.shape) for t in tensors]
    if shapes != list(layout.shapes):
        raise InputError(f"{symmetry.name} acts on a layout of shapes {list(layout.shapes)}, the parameters have "
                           f"{shapes}: the symmetry does not match this model")
    return tensors


class TeleportOptimizer:
    """A torch.optim optimizer plus a teleport schedule (``step``, ``zero_grad``, ``state_dict`` delegate)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        symmetry: Symmetry,
        *,
        model: nn.Module | None = None,
        params: torch.Tensor | Sequence[torch.Tensor] | None = None,
        loss_fn: Callable[[torch.Tensor, Batch], torch.Tensor] | None = None,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        batches: Callable[[], Batch] | None = None,
        inputs: Callable[[Batch], torch.Tensor] | None = None,
        schedule: Collection[int] | Callable[[int], bool] = (),
        teleport_batches: int = 1,
        config: TeleportConfig = TeleportConfig(),
        state_policy: StatePolicy = "transform",
        generator: torch.Generator | None = None,
    ):
        if state_policy not in ("transform", "keep", "reset"):
            raise InputError(f"unknown state policy {state_policy!r}; choose transform, keep or reset")
        if model is None and params is None:
            raise InputError("pass the model (nn.Module) or the parameter tensors θ is made of")
        if loss_fn is None and (model is None or criterion is None):
            raise InputError("pass loss_fn(θ, batch), or a model and a criterion(outputs, targets)")
        if teleport_batches < 1:
            raise InputError(f"teleport_batches must be ≥ 1, got {teleport_batches}")
        config.validate()
        self.optimizer, self.symmetry, self.config, self.state_policy = optimizer, symmetry, config, state_policy
        self.tensors = _bind_params(symmetry, model, params)
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if any(id(t) not in in_optimizer for t in self.tensors):
            raise InputError("some parameters the symmetry acts on are not in the optimizer's param_groups")
        self.model, self.criterion = model, criterion
        self.loss_fn = loss_fn or self._module_loss
        self.batches, self.teleport_batches = batches, teleport_batches
        self.inputs = inputs or (lambda b: b[0] if isinstance(b, (tuple, list)) else b)
        self.schedule = schedule if callable(schedule) else frozenset(int(s) for s in schedule)
        self.generator = generator or torch.Generator().manual_seed(0)
        self.steps_done = 0
        self.events: list[dict] = []

    # ---- torch.optim surface --------------------------------------------------------------------
    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One optimizer step; then, if the step count is scheduled, the teleports."""
        loss = self.optimizer.step(closure)
        self.steps_done += 1
        if self.due(self.steps_done):
            for _ in range(self.teleport_batches):
                self.teleport(self.draw_batch())
        return loss

    def draw_batch(self):
        return self.batches(self.generator) if self.batches is not None else None

    def due(self, step: int) -> bool:
        return bool(self.schedule(step)) if callable(self.schedule) else step in self.schedule

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "steps_done": self.steps_done, "events": self.events}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps_done, self.events = int(state["steps_done"]), list(state["events"])

    # ---- θ ⇄ tensors -----------------------------------------------------------------------------
    def theta(self) -> torch.Tensor:
        """The current θ (flat, layout order, detached)."""
        return torch.cat([t.detach().reshape(-1) for t in self.tensors])

    def _split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        sizes = [t.numel() for t in self.tensors]
        return [part.reshape(t.shape) for part, t in zip(torch.split(flat, sizes), self.tensors, strict=True)]

    def _module_loss(self, theta: torch.Tensor, batch: Batch) -> torch.Tensor:
        named = self.symmetry.layout.unflatten(theta)
        x, y = batch
        return self.criterion(functional_call(self.model, named, (x,)), y)

    # ---- the teleport -----------------------------------------------------------------------------
    def teleport(self, batch: Batch = None) -> TeleportResult:
        """Teleport θ now on ``batch`` (None for data-free losses); writes θ' and the state back."""
        t0 = time.perf_counter()
        theta = self.theta()
        X = self.inputs(batch) if (batch is not None and self.symmetry.data_dependent) else None
        accumulator = self._moment("sum") if self.config.objective == "adagrad" else None
        if self.config.objective == "adagrad" and accumulator is None:
            raise InputError("the adagrad objective needs the accumulator 'sum' of torch.optim.Adagrad, "
                               f"which {type(self.optimizer).__name__} does not keep")
        result = teleport(self.symmetry, theta, lambda th: self.loss_fn(th, batch), X, self.config,
                          generator=self.generator, accumulator=accumulator)
        new_state = self._transported_state(result)  # computed before anything is written
        with torch.no_grad():
            for t, part in zip(self.tensors, self._split(result.theta.to(theta)), strict=True):
                t.copy_(part)
            for key, parts in new_state.items():
                for t, part in zip(self.tensors, parts, strict=True):
                    self.optimizer.state[t][key].copy_(part)
        self.events.append({"step": self.steps_done, "seconds": time.perf_counter() - t0, **result.summary()})
        return result

    def _moment(self, key: str) -> torch.Tensor | None:
        states = [self.optimizer.state.get(t, {}) for t in self.tensors]
        if not all(key in s for s in states):
            return None
        return torch.cat([s[key].detach().reshape(-1) for s in states])

    def _transported_state(self, result: TeleportResult) -> dict[str, list[torch.Tensor]]:
        if self.state_policy == "keep":
            return {}
        out = {}
        for key in FIRST_MOMENTS:
            m = self._moment(key)
            if m is None:
                continue
            new = result.transport_covector(m.to(result.theta)) if self.state_policy == "transform" else \
                torch.zeros_like(m)
            if not torch.isfinite(new).all():
                raise NumericalError(f"transporting the optimizer's {key} gave non-finite values; state unchanged")
            out[key] = self._split(new.to(m))
        return out
