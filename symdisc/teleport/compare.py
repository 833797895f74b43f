"""Train an architecture with and without teleports, from the same θ₀ on the same batches (``symdisc teleport``).

The data are ``train_size`` samples drawn once from the architecture's sampler (a user module's
``sample_batch``).  Both arms start from θ₀ = ``arch.sample_params`` and see the same mini-batch
order (streams of ``seed``); the teleport arm wraps the same optimizer in a ``TeleportOptimizer``
that, after the scheduled steps, teleports on ``teleport_batches`` random training batches drawn with
its own generator.  Every ``eval_every`` steps the full training loss L and ‖∇L‖² are recorded, so
the arms are compared on the objective the teleport acts on, not on noisy mini-batch losses.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.func import grad

from symdisc.architecture import Architecture, make_generator
from symdisc.checkpoint import RunCheckpoint
from symdisc.errors import InputError, NumericalError
from symdisc.optim.move import StatePolicy
from symdisc.optim.schedule import Schedule
from symdisc.progress import track
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.known import continuous_symmetries
from symdisc.symmetry.product import ProductSymmetry, hidden_layers_gl
from symdisc.teleport.optimizer import TeleportOptimizer
from symdisc.teleport.routine import TeleportConfig

OPTIMIZERS = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "adam": ("Adam", {}),
    "adagrad": ("Adagrad", {}),
    "rmsprop": ("RMSprop", {}),
}
THETA_STREAM, DATA_STREAM, ORDER_STREAM, TELEPORT_STREAM = 0, 1, 2, 3


@dataclass(frozen=True)
class TrainSpec:
    """The training run both arms share, and the teleports of the teleport arm."""

    optimizer: str = "sgd"
    lr: float = 0.05
    steps: int = 200
    batch_size: int = 32
    train_size: int = 512
    schedule: Schedule = field(default_factory=lambda: Schedule.at([5]))
    teleport_batches: int = 1
    teleport_batch_size: int | None = None  # default: batch_size (a learned data-dependent action: its own)
    config: TeleportConfig = field(default_factory=lambda: TeleportConfig(steps=10, lr=1e-2, max_step=0.2))
    state_policy: StatePolicy = "transform"
    eval_every: int = 1
    seed: int = 0

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; choose {', '.join(OPTIMIZERS)}")
        for name in ("steps", "batch_size", "train_size", "teleport_batches", "eval_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"the learning rate must be finite and > 0, got {self.lr}")
        if self.batch_size > self.train_size:
            raise InputError(f"batch size {self.batch_size} exceeds the {self.train_size} training samples")
        self.config.validate()

    def describe(self) -> dict:
        out = asdict(self)
        out["schedule"] = self.schedule.describe()
        out["config"] = self.config.to_dict()
        return out


def known_symmetry(arch: Architecture, kind: str = "known") -> Symmetry:
    """The known continuous symmetry teleports move along: ``known`` — all data-free ones that keep the outputs
    (exact for every θ and batch), as one product, falling back to the data-dependent GL actions of the hidden
    layers when there are none; ``known-data`` — the papers' data-dependent GL of every hidden layer (D eq. 4.16),
    exact on batches no wider than the layers."""
    if kind == "known-data":
        return hidden_layers_gl(arch, "pinv")
    if kind != "known":
        raise InputError(f"unknown symmetry kind {kind!r}; choose known or known-data (or load an artefact)")
    exact = continuous_symmetries(arch)
    if exact:
        return exact[0] if len(exact) == 1 else ProductSymmetry(exact, name=f"known symmetries of {arch.name}")
    try:
        return hidden_layers_gl(arch, "pinv")
    except InputError:
        raise InputError(f"{arch.name} has no known continuous symmetry (none declared or detected: `symdisc known` "
                         "says why): pass them (zoo.from_module(..., symmetries=...)) or teleport along a learned "
                         "artefact") from None


def compare_training(arch: Architecture, symmetry: Symmetry, spec: TrainSpec, progress: bool = False,
                     checkpoint: str | Path | None = None, checkpoint_every: int = 50, resume: bool = False) -> dict:
    """Both arms' curves, the teleport events and a summary (JSON-ready; fields in docs/cli.md).

    With ``checkpoint`` (a file), the run's state — θ, the optimizer's (teleports' random state and events
    included), the batch order, the curves — is saved there every ``checkpoint_every`` steps and at the end of
    each arm; ``resume`` continues from it and ends with the result of the uninterrupted run.  The file is left
    for the caller to remove once the result is stored."""
    spec.validate()
    if symmetry.layout.hash() != arch.layout.hash():
        raise InputError(f"{symmetry.name} acts on another parameter layout than {arch.name}'s")
    if symmetry.discrete:
        raise InputError(f"{symmetry.name} is discrete: teleport training needs a continuous symmetry")
    tele_batch = spec.teleport_batch_size or _data_batch(symmetry) or spec.batch_size
    if tele_batch > spec.train_size:
        raise InputError(f"teleport batch {tele_batch} exceeds the {spec.train_size} training samples")
    ck = None if checkpoint is None else RunCheckpoint(
        checkpoint, checkpoint_every, {"architecture": arch.describe(), "symmetry": symmetry.describe(),
                                       "spec": spec.describe()}, resume)
    saved, state = ck.resumed if ck is not None and ck.resumed is not None else ({"done": {}, "current": None}, {})
    current = saved["current"]  # the arm in progress at the checkpoint, or None (at an arm's end)
    theta0 = arch.sample_params(make_generator(spec.seed, THETA_STREAM))
    X, Y = arch.sample_data(spec.train_size, make_generator(spec.seed, DATA_STREAM))
    arms = dict(saved["done"])
    for arm in track(("plain", "teleport"), "train (plain, teleport)", enabled=progress):
        if arm in arms:
            continue
        resumed = (current, state) if current is not None and current["arm"] == arm else None
        arms[arm] = _train(arch, symmetry if arm == "teleport" else None, spec, theta0, X, Y, tele_batch,
                           arm, ck, dict(arms), resumed)
        if ck is not None:
            ck.save({"done": arms, "current": None}, {})
    return {"architecture": arch.describe(), "symmetry": symmetry.describe(), "spec": spec.describe(),
            "teleport_batch_size": tele_batch, "plain": arms["plain"], "teleport": arms["teleport"],
            "summary": _summary(arms)}


def _data_batch(symmetry: Symmetry) -> int | None:
    shape = symmetry.data_shape
    return shape[0] if symmetry.data_dependent and shape else None


def _train(arch, symmetry, spec: TrainSpec, theta0, X, Y, tele_batch, arm: str = "plain",
           ck: RunCheckpoint | None = None, done: dict | None = None, resumed: tuple[dict, dict] | None = None) -> dict:
    """One arm; with ``ck``, checkpointed every ``ck.every`` steps beside the finished arms ``done``."""
    theta = theta0.detach().clone().requires_grad_(True)
    cls, options = OPTIMIZERS[spec.optimizer]
    opt = getattr(torch.optim, cls)([theta], lr=spec.lr, **options)
    if symmetry is not None:
        def batches(generator):
            idx = torch.randperm(spec.train_size, generator=generator)[:tele_batch].to(X.device)
            return X[idx], Y[idx]

        opt = TeleportOptimizer(opt, symmetry, params=theta, loss_fn=lambda th, b: arch.batch_loss(th, *b),
                                batches=batches, schedule=spec.schedule, teleport_batches=spec.teleport_batches,
                                config=spec.config, state_policy=spec.state_policy,
                                generator=make_generator(spec.seed, TELEPORT_STREAM))
    full = lambda th: arch.batch_loss(th, X, Y)
    order, n = make_generator(spec.seed, ORDER_STREAM), spec.train_size
    curve = {"step": [], "loss": [], "grad_norm_sq": []}
    failures, diverged_at, perm, start, spent = [], None, torch.empty(0, dtype=torch.long), 0, 0.0

    def record(step):
        th = theta.detach()
        curve["step"].append(step)
        curve["loss"].append(float(full(th)))
        curve["grad_norm_sq"].append(float(grad(full)(th).pow(2).sum()))

    if resumed is not None:
        now, state = resumed
        start, curve, failures, spent = now["step"], now["curve"], now["failures"], now["seconds"]
        with torch.no_grad():
            theta.copy_(state["theta"].to(theta))
        opt.load_state_dict(state["opt"])
        order.set_state(state["order"])
        perm = state["perm"]
    else:
        record(0)
    t0 = time.perf_counter()
    for step in range(start + 1, spec.steps + 1):
        if perm.numel() < spec.batch_size:
            perm = torch.randperm(n, generator=order)
        idx, perm = perm[: spec.batch_size], perm[spec.batch_size:]
        opt.zero_grad(set_to_none=True)
        loss = arch.batch_loss(theta, X[idx.to(X.device)], Y[idx.to(X.device)])
        if not torch.isfinite(loss):
            diverged_at = step
            break
        loss.backward()
        try:
            opt.step()
        except NumericalError as e:  # a failed teleport leaves θ and the state as they were
            failures.append({"step": step, "error": str(e)})
        if step % spec.eval_every == 0 or step == spec.steps:
            record(step)
        if ck is not None and ck.due(step) and step < spec.steps:
            ck.save({"done": done, "current": {"arm": arm, "step": step, "curve": curve, "failures": failures,
                                               "seconds": spent + time.perf_counter() - t0}},
                    {"theta": theta.detach(), "opt": opt.state_dict(), "order": order.get_state(), "perm": perm})
    out = {**curve, "final_loss": curve["loss"][-1], "diverged_at": diverged_at,
           "seconds": spent + time.perf_counter() - t0}
    if symmetry is not None:
        out["teleports"] = opt.events
        out["teleport_failures"] = failures
    return out


def _summary(arms: dict) -> dict:
    plain, tele = arms["plain"], arms["teleport"]
    events = tele["teleports"]
    gain = [e["objective_after"] / e["objective_before"] for e in events if e["objective_before"] > 0]
    return {"final_loss_plain": plain["final_loss"], "final_loss_teleport": tele["final_loss"],
            "final_loss_ratio": tele["final_loss"] / plain["final_loss"] if plain["final_loss"] else None,
            "teleports": len(events), "teleport_failures": len(tele["teleport_failures"]),
            "max_abs_loss_change": max((abs(e["loss_change"]) for e in events), default=0.0),
            "median_objective_gain": sorted(gain)[len(gain) // 2] if gain else None,
            "seconds_plain": plain["seconds"], "seconds_teleport": tele["seconds"]}
