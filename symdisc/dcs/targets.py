"""DCS on an architecture (the ``symdisc dcs`` CLI's SPEC): which blocks get which constraint, and a training run.

An ``Architecture`` is functional (θ flat, ``forward_named``); ``ArchitectureModule`` holds its θ as one
``nn.Parameter`` per layout tensor so that ``DCS`` (torch parametrize) and any torch optimizer apply to it.

``plan(arch, constraint, …)`` decides per block (layout tensor):

* ``sparse`` / ``group`` / ``lowrank``: that constraint on every block it fits (``blocks`` narrows the set;
  ``group`` and ``lowrank`` need a matrix; by default biases are left free);
* ``auto``: the coverage map of the symmetry (``known`` or an artefact) decides (dcs.md §9 design 2): a block
  covered by a verified mirror that already gives sparsity gets weight decay only (the native constraint);
  an uncovered block gets DCS ``sparse``.

``train(arch, plan, …)`` fits the plan on a fixed training batch (full batch, Adam or SGD through
``DCSOptimizer``; covered blocks get weight decay α‖θ_B‖² instead) and reports the held-out loss of the
DCS model and of the materialized plain model (they must agree), per-block sparsity, timing and the
materialized θ (``theta``: layout name → tensor).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from symdisc.architecture import Architecture, make_generator
from symdisc.checkpoint import RunCheckpoint
from symdisc.dcs.model import CONSTRAINTS, DCS, ZERO_TOL, check_alpha
from symdisc.dcs.optimizer import DCSOptimizer
from symdisc.errors import InputError, NumericalError
from symdisc.progress import track

CHOICES = (*CONSTRAINTS, "auto")
OPTIMIZERS = ("adam", "sgd")


def attr_name(name: str) -> str:
    """A layout name as a module attribute (dots are not allowed there)."""
    return name.replace(".", "__")


class ArchitectureModule(nn.Module):
    """θ of ``arch`` as parameters named like its layout (``.`` → ``__``); ``forward(X)`` = f(θ, X)."""

    def __init__(self, arch: Architecture, theta: torch.Tensor):
        super().__init__()
        self.arch = arch
        for name, value in arch.layout.unflatten(theta).items():
            setattr(self, attr_name(name), nn.Parameter(value.detach().clone()))

    def named_theta(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, attr_name(name)) for name in self.arch.layout.names}

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.arch.forward_named(self.named_theta(), X)

    def loss(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.arch.loss(self(X), Y).mean()


@dataclass
class Plan:
    """Per layout tensor: ``"sparse" | "group" | "lowrank"`` (DCS), ``"decay"`` (weight decay only) or ``"free"``."""

    decisions: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)
    coverage: dict | None = None

    def dcs_blocks(self) -> dict[str, str]:
        return {n: d for n, d in self.decisions.items() if d in CONSTRAINTS}

    def to_dict(self) -> dict:
        return {"decisions": self.decisions, "reasons": self.reasons, "coverage": self.coverage}


def plan(arch: Architecture, constraint: str, blocks: list[str] | None = None, symmetry=None) -> Plan:
    """The per-block decisions (module docstring); ``symmetry`` (a list of Symmetry) is used by ``auto``."""
    if constraint not in CHOICES:
        raise InputError(f"unknown constraint {constraint!r}; choose {', '.join(CHOICES)}")
    shapes = dict(zip(arch.layout.names, arch.layout.shapes, strict=True))
    if blocks is not None:
        unknown = [b for b in blocks if b not in shapes]
        if unknown:
            raise InputError(f"{arch.name} has no parameter {', '.join(unknown)} (parameters: {', '.join(shapes)})")
    chosen = blocks if blocks is not None else [n for n, s in shapes.items() if len(s) >= 2]
    if not chosen:
        raise InputError(f"{arch.name} has no weight matrix to constrain: name the tensors to constrain")
    decisions = {n: "free" for n in shapes}
    reasons = {n: "not selected" for n in shapes}
    if constraint != "auto":
        for n in chosen:
            if constraint != "sparse" and len(shapes[n]) < 2:
                raise InputError(f"{n} has shape {list(shapes[n])}: a {constraint} constraint needs a matrix")
            decisions[n], reasons[n] = constraint, "selected"
        return Plan(decisions, reasons)
    from symdisc.dcs.coverage import coverage_map

    cov = coverage_map(arch, list(symmetry or []))
    uncovered = set(cov.uncovered("sparse"))
    for n in chosen:
        if n in uncovered:
            decisions[n], reasons[n] = "sparse", "no verified mirror gives sparsity here: DCS adds one"
        else:
            kinds = cov.blocks[n].get("mirror_kinds", [])
            decisions[n], reasons[n] = "decay", f"native mirror ({', '.join(kinds)}): weight decay suffices"
    return Plan(decisions, reasons, cov.to_dict())


def _optimizer(kind: str, params, lr: float) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise InputError(f"unknown optimizer {kind!r}; choose {', '.join(OPTIMIZERS)}")


def train(arch: Architecture, the_plan: Plan, alpha: float, *, steps: int = 2000, lr: float = 1e-2,
          optimizer: str = "adam", n_train: int = 256, n_test: int = 256, seed: int = 0, tol: float = ZERO_TOL,
          progress: bool = True, checkpoint: str | Path | None = None, checkpoint_every: int = 200,
          resume: bool = False) -> dict:
    """Fit the plan on ``n_train`` samples drawn once; report the held-out loss before/after materializing.

    With ``checkpoint`` (a file) the model (DCS factors included), the optimizer and the step count are saved there
    every ``checkpoint_every`` steps; ``resume`` continues from it to the uninterrupted run's result."""
    alpha = check_alpha(alpha)
    if steps < 1 or lr <= 0 or not math.isfinite(lr):
        raise InputError(f"need steps ≥ 1 and a finite lr > 0, got steps {steps}, lr {lr}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose {', '.join(OPTIMIZERS)}")
    X, Y = arch.sample_data(n_train, make_generator(seed, 1))
    Xt, Yt = arch.sample_data(n_test, make_generator(seed, 2))
    net = ArchitectureModule(arch, arch.sample_params(make_generator(seed, 0)))
    dcs_blocks = {attr_name(n): d for n, d in the_plan.dcs_blocks().items()}
    decay = [getattr(net, attr_name(n)) for n, d in the_plan.decisions.items() if d == "decay"]
    dcs = DCS(net, dcs_blocks, alpha) if dcs_blocks else None
    inner = _optimizer(optimizer, net.parameters(), lr)
    opt = DCSOptimizer(inner, dcs) if dcs is not None else inner
    with torch.no_grad():
        start = float(net.loss(X, Y))
    # the plan's decisions, all the training depends on; not the coverage map's diagnostics, whose last bits once
    # varied from call to call (torch's default CPU lstsq driver: docs/reliability.md, determinism)
    ck = None if checkpoint is None else RunCheckpoint(checkpoint, checkpoint_every, {
        "architecture": arch.describe(), "decisions": the_plan.decisions, "alpha": alpha, "steps": steps, "lr": lr,
        "optimizer": optimizer, "n_train": n_train, "n_test": n_test, "seed": seed}, resume)
    done, spent = 0, 0.0
    if ck is not None and ck.resumed is not None:
        now, state = ck.resumed
        done, spent = now["step"], now["seconds"]
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    t0 = time.perf_counter()
    for step in track(range(done + 1, steps + 1), "DCS training", total=steps - done, enabled=progress):
        opt.zero_grad()
        loss = net.loss(X, Y) + alpha * sum(p.pow(2).sum() for p in decay)
        if not torch.isfinite(loss):
            raise NumericalError(f"the training loss became {float(loss)} at step {step}: lower the learning rate "
                                 "or α" + (f"; the last checkpoint is {ck.path}" if ck and ck.path.exists() else ""))
        loss.backward()
        opt.step()
        if ck is not None and ck.due(step) and step < steps:
            ck.save({"step": step, "seconds": spent + time.perf_counter() - t0},
                    {"model": net.state_dict(), "opt": opt.state_dict()})
    seconds = spent + time.perf_counter() - t0
    with torch.no_grad():
        fit, test = float(net.loss(X, Y)), float(net.loss(Xt, Yt))
        out = net(Xt)
        blocks = {}
        if dcs is not None:
            mat = dcs.materialize(tol)
            plain_out = mat.model(Xt)
            plain_test = float(arch.loss(plain_out, Yt).mean())
            blocks = {n.replace("__", "."): r for n, r in mat.report.items()}
            theta = {n: getattr(mat.model, attr_name(n)).detach() for n in arch.layout.names}
        else:
            plain_out, plain_test = out, test
            theta = {n: t.detach() for n, t in net.named_theta().items()}
        for n, d in the_plan.decisions.items():
            value = getattr(net, attr_name(n)).detach()
            blocks.setdefault(n, {"kind": d, "entries": value.numel(),
                                  "zero_fraction": float((value.abs() < tol).double().mean())})
            blocks[n]["decision"] = d
    total = sum(b["entries"] for b in blocks.values())
    zeros = sum(b["zero_fraction"] * b["entries"] for b in blocks.values())
    return {"alpha": alpha, "steps": steps, "lr": lr, "optimizer": optimizer, "n_train": n_train, "n_test": n_test,
            "seed": seed, "tol": tol, "loss_start": start, "loss_train": fit, "loss_test": test,
            "materialized_loss_test": plain_test, "max_output_difference": float((plain_out - out).abs().max()),
            "zero_fraction": zeros / total, "seconds": seconds, "blocks": blocks, "theta": theta}
