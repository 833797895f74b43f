"""Teleportation inside standard optimizers on digits (E12 of teleport.md §4.1; P §5.1, G.2; D §5.4.2).

The substitute setup (scikit-learn's digits in place of MNIST; never the papers' numbers):
3-layer 64-16-10-10 LeakyReLU(0.1) MLP without biases, cross-entropy, mini-batches of 20, one of
SGD, momentum, AdaGrad, RMSProp, Adam.  After the last step of the first epoch θ is teleported on 8
random mini-batches of 200 training samples in turn, 10 ascent steps of lr 5e-2 each, along all
hidden layers at once: the product of the pinv data-dependent GL actions (D eq. 4.16) of the two
hidden layers, or any other Symmetry on the same layout (a learned one).  A batch of 200 is wider
than the hidden width 16, so the action is only approximate there; the loss guard corrects each
step back to the batch's level set or refuses it, and the record says which.

Every (optimizer, seed) is trained in each arm — ``none`` (no teleport), ``grad_norm`` (maximise
‖∇L‖², P eq. 3) and, for AdaGrad, ``adagrad`` (maximise ∇Lᵀ A ∇L with AdaGrad's own accumulator,
P eq. 99) — from the same θ₀ and with the same order of training batches, so the arms coincide
up to the teleport.  The training loop is an ordinary torch loop over a flat θ; the teleport is
scheduled by :class:`TeleportOptimizer`.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch.func import grad

from symdisc import data as datasets
from symdisc import zoo
from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError, SymdiscError
from symdisc.optim.move import StatePolicy
from symdisc.progress import track
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.product import hidden_layers_gl
from symdisc.teleport.optimizer import TeleportOptimizer
from symdisc.teleport.routine import TeleportConfig


@dataclass(frozen=True)
class OptimizerSpec:
    """A torch.optim class name, its lr and options."""

    cls: str
    lr: float
    options: dict = field(default_factory=dict)

    def build(self, params) -> torch.optim.Optimizer:
        return getattr(torch.optim, self.cls)(params, lr=self.lr, **self.options)


# P §5.1 / G.2: AdaGrad 1e-4; momentum, RMSProp, Adam 5e-2.  SGD and the momentum coefficient are
# not given there: SGD takes the momentum run's lr, momentum 0.9 (docs/teleport_digits.md).
PAPER_OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("SGD", 5e-2),
    "momentum": OptimizerSpec("SGD", 5e-2, {"momentum": 0.9}),
    "adagrad": OptimizerSpec("Adagrad", 1e-4),
    "rmsprop": OptimizerSpec("RMSprop", 5e-2),
    "adam": OptimizerSpec("Adam", 5e-2),
}


@dataclass(frozen=True)
class TeleportPlan:
    """When and how to teleport: after the last step of each epoch in ``epochs`` (1 = the first; 0: before
    the first step), on ``batches`` random training mini-batches of ``batch_size``, each with ``config``.

    The default is the papers' plain ascent (``monotone=False``: every step at lr 5e-2, kept if the
    guard accepts or corrects it).  With the routine's monotone (Armijo) rule the approximate
    action's steps are mostly refused: the guard's correction back to the level set gives up most
    of the predicted gain in ‖∇L‖² (docs/teleport_digits.md)."""

    epochs: tuple[int, ...] = (1,)
    batches: int = 8
    batch_size: int = 200
    config: TeleportConfig = field(default_factory=lambda: TeleportConfig(steps=10, lr=5e-2, monotone=False))
    state_policy: StatePolicy = "transform"

    def describe(self) -> dict:
        out = asdict(self)
        out["config"] = {**self.config.to_dict(), "guard": asdict(self.config.guard)}
        return out
# Momentum (0.9), RMSProp and Adam at the paper's 5e-2 diverge on digits (NaN, or a training loss above
# the initial one, in 3–4 of 5 seeds): 2e-2, the largest of LR_GRID that does not (docs/teleport_digits.md).
E12_OPTIMIZERS: dict[str, OptimizerSpec] = {
    **PAPER_OPTIMIZERS, **{n: replace(PAPER_OPTIMIZERS[n], lr=2e-2) for n in ("momentum", "rmsprop", "adam")}}


def mlp(dims: str = "64,16,10,10", dtype=torch.float64, device="cpu") -> Architecture:
    """The E12 network: LeakyReLU(0.1) MLP without biases, cross-entropy."""
    return zoo.get("mlp", dims=dims, act="leakyrelu", loss="cross_entropy").to(dtype=dtype, device=device)


def _sha(theta: torch.Tensor) -> str:
    return hashlib.sha256(theta.detach().cpu().double().numpy().tobytes()).hexdigest()[:16]


def _evaluate(arch: Architecture, theta: torch.Tensor, split: datasets.Split) -> dict:
    """Full-set mean cross-entropy and accuracy (train and test), and ‖∇L_train‖²."""
    th = theta.detach()
    out = {}
    for part, X, y in (("train", split.X_train, split.y_train), ("test", split.X_test, split.y_test)):
        logits = arch.forward(th, X)
        out[f"{part}_loss"] = float(arch.loss(logits, y).mean())
        out[f"{part}_acc"] = float((logits.argmax(-1) == y).double().mean())
    out["train_grad_norm_sq"] = float(grad(lambda t: arch.batch_loss(t, split.X_train, split.y_train))(th).pow(2).sum())
    return out


def _random_batches(split: datasets.Split, size: int, generator: torch.Generator):
    """A callable drawing one random training mini-batch of ``size`` (without replacement) per call."""
    n = split.X_train.shape[0]
    if size > n:
        raise InputError(f"teleport batch of {size} exceeds the {n} training samples")

    def draw(_optimizer_generator=None):
        idx = torch.randperm(n, generator=generator)[:size].to(split.X_train.device)
        return split.X_train[idx], split.y_train[idx]

    return draw


def train_one(arch: Architecture, split: datasets.Split, spec: OptimizerSpec, seed: int, epochs: int,
              batch_size: int, symmetry: Symmetry | None, plan: TeleportPlan, objective: str | None) -> dict:
    """One training run; ``objective`` None trains without teleport.  θ₀ and the batch order depend
    on ``seed`` only, so every arm of a seed starts alike and sees the same batches."""
    theta = arch.sample_params(make_generator(seed, 0)).requires_grad_(True)
    theta0_sha = _sha(theta)
    order = make_generator(seed, 1)
    loss_fn = lambda th, batch: arch.batch_loss(th, *batch)
    base = spec.build([theta])
    steps_per_epoch = math.ceil(split.X_train.shape[0] / batch_size)
    if objective is None:
        opt = base
    else:
        draw = _random_batches(split, plan.batch_size, make_generator(seed, 2))  # own stream; the optimizer's unused
        opt = TeleportOptimizer(base, symmetry, params=theta, loss_fn=loss_fn, batches=draw,
                                schedule=[e * steps_per_epoch for e in plan.epochs],
                                teleport_batches=plan.batches, config=replace(plan.config, objective=objective),
                                state_policy=plan.state_policy, generator=make_generator(seed, 3))
    epoch_seconds, diverged, errors = [], None, []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="teleport along .* is not exact")
        curves = {k: [v] for k, v in _evaluate(arch, theta, split).items()}  # at θ₀ in every arm
        if objective is not None and 0 in plan.epochs:  # epoch 0: teleport before the first step
            for _ in range(plan.batches):
                opt.teleport(opt.draw_batch())
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            for batch in split.batches(batch_size, order):  # the user's loop, unchanged by teleportation
                opt.zero_grad()
                loss_fn(theta, batch).backward()
                try:
                    opt.step()
                except SymdiscError as err:  # a failed teleport leaves θ and the state as they were
                    errors.append({"epoch": epoch, "error": str(err)})
            epoch_seconds.append(time.perf_counter() - t0)
            for k, v in _evaluate(arch, theta, split).items():
                curves[k].append(v)
            if not math.isfinite(curves["train_loss"][-1]):
                diverged = epoch
                break
    events = getattr(opt, "events", [])
    return {"theta0_sha": theta0_sha, "curves": curves, "epoch_seconds": epoch_seconds, "diverged_at": diverged,
            "steps_per_epoch": steps_per_epoch, "teleport": _teleport_record(events), "teleport_errors": errors}


def _teleport_record(events: list[dict]) -> dict | None:
    """Per-event totals: seconds, batch-loss changes, guard statuses, objective before/after."""
    if not events:
        return None
    by_step: dict[int, list[dict]] = {}
    for e in events:
        by_step.setdefault(e["step"], []).append(e)
    out = []
    for step, es in by_step.items():
        statuses = {s: sum(e["steps"][s] for e in es) for s in ("accepted", "corrected", "refused")}
        out.append({
            "step": step, "batches": len(es), "seconds": sum(e["seconds"] for e in es),
            "seconds_per_batch": [e["seconds"] for e in es], "statuses": statuses,
            "batch_loss_change": [e["loss_change"] for e in es],
            "max_abs_batch_loss_change": max(abs(e["loss_change"]) for e in es),
            "batch_loss_before": [e["loss_before"] for e in es],
            "objective_ratio": [e["objective_after"] / e["objective_before"] for e in es],
            "exact": [e["exactness"]["exact"] for e in es],
        })
    return {"events": out, "seconds_total": sum(e["seconds"] for e in out)}


def _mean_std(values: list[list[float]]) -> dict:
    """Per-epoch mean and sample std over the runs with a finite value there (a diverged run stops
    counting from its divergence on; ``n`` says how many counted)."""
    width = max(len(v) for v in values)
    t = torch.tensor([v + [math.nan] * (width - len(v)) for v in values], dtype=torch.float64)
    t = torch.where(torch.isfinite(t), t, torch.nan)
    n = (~t.isnan()).sum(0)
    mean = t.nanmean(0)
    var = (t - mean).pow(2).nansum(0) / (n - 1).clamp_min(1)
    return {"mean": mean.tolist(), "std": var.sqrt().tolist(), "n": n.tolist()}


def summarize(runs: list[dict]) -> dict:
    """Mean ± std over seeds of every curve per (optimizer, arm); teleport cost as a fraction of an epoch."""
    out: dict = {}
    for opt_name in dict.fromkeys(r["optimizer"] for r in runs):
        out[opt_name] = {}
        plain_epoch = statistics.median(s for r in runs if r["optimizer"] == opt_name and r["arm"] == "none"
                                        for s in r["epoch_seconds"]) if any(
            r["optimizer"] == opt_name and r["arm"] == "none" for r in runs) else None
        for arm in dict.fromkeys(r["arm"] for r in runs if r["optimizer"] == opt_name):
            rs = [r for r in runs if r["optimizer"] == opt_name and r["arm"] == arm]
            entry = {k: _mean_std([r["curves"][k] for r in rs]) for k in rs[0]["curves"]}
            entry["seeds"] = len(rs)
            entry["diverged"] = sum(r["diverged_at"] is not None for r in rs)
            tele = [e for r in rs if r["teleport"] for e in r["teleport"]["events"]]
            if tele:
                secs = [e["seconds"] for e in tele]
                counts = {s: sum(e["statuses"][s] for e in tele) for s in ("accepted", "corrected", "refused")}
                entry["teleport"] = {
                    "event_seconds_median": statistics.median(secs),
                    "plain_epoch_seconds_median": plain_epoch,
                    "fraction_of_epoch": statistics.median(secs) / plain_epoch if plain_epoch else None,
                    "guard_statuses": counts,
                    "max_abs_batch_loss_change": max(e["max_abs_batch_loss_change"] for e in tele),
                    "objective_ratio_median": statistics.median(x for e in tele for x in e["objective_ratio"]),
                }
            out[opt_name][arm] = entry
    return out


def _arms(spec: OptimizerSpec, plan: TeleportPlan | None, adagrad_arm: bool) -> list[str | None]:
    if plan is None:
        return [None]
    extra = adagrad_arm and spec.cls == "Adagrad" and plan.config.objective != "adagrad"
    return [None, plan.config.objective] + (["adagrad"] if extra else [])


def run_digits(
    optimizers: Sequence[str] | dict[str, OptimizerSpec] = tuple(PAPER_OPTIMIZERS),
    seeds: Iterable[int] = range(5),
    epochs: int = 60,
    teleport: TeleportPlan | None = TeleportPlan(),
    symmetry: Symmetry | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    smoke: bool = False,
    dims: str = "64,16,10,10",
    batch_size: int = 20,
    dtype: torch.dtype = torch.float64,
    adagrad_arm: bool = True,
) -> dict:
    """Train every (optimizer, seed) with and without teleport (E12); returns runs, summary and setup.

    ``optimizers``: names of :data:`PAPER_OPTIMIZERS` or {name: OptimizerSpec}.  ``symmetry``: any
    continuous Symmetry on the MLP's layout (default: the pinv GL actions of all hidden layers).
    ``adagrad_arm``: AdaGrad also gets an arm teleported with its own metric ‖∇L‖_A (E11-style).
    ``smoke``: at most 2 epochs, 2 teleport batches of 3 ascent steps, for CI.  ``teleport=None``:
    the baseline arm only.
    """
    if not isinstance(optimizers, dict):
        unknown = [n for n in optimizers if n not in PAPER_OPTIMIZERS]
        if unknown:
            raise InputError(f"unknown optimizer(s) {', '.join(unknown)}; choose from {', '.join(PAPER_OPTIMIZERS)}")
    specs = dict(optimizers) if isinstance(optimizers, dict) else {n: PAPER_OPTIMIZERS[n] for n in optimizers}
    if smoke:
        epochs = min(epochs, 2)
        teleport = teleport and replace(teleport, batches=min(teleport.batches, 2),
                                        config=replace(teleport.config, steps=min(teleport.config.steps, 3)))
    seeds = list(seeds)
    arch = mlp(dims, dtype, device)
    split = datasets.digits(dtype=dtype).to(device=device)
    if split.num_features != arch.layout.shape("W1")[1]:
        raise InputError(f"dims {dims} must start with the 64 digit features")
    symmetry = symmetry if symmetry is not None else hidden_layers_gl(arch, "pinv")
    if symmetry.layout != arch.layout:
        raise InputError(f"{symmetry.name} acts on another parameter layout than the {dims} MLP")
    if teleport is not None and teleport.config.objective == "adagrad" and any(s.cls != "Adagrad"
                                                                               for s in specs.values()):
        raise InputError("the adagrad teleport objective needs torch.optim.Adagrad")
    jobs = [(n, s, arm) for n in specs for s in seeds for arm in _arms(specs[n], teleport, adagrad_arm)]
    runs = []
    for name, seed, objective in track(jobs, "digits teleport runs", enabled=progress):
        rec = train_one(arch, split, specs[name], seed, epochs, batch_size, symmetry, teleport, objective)
        runs.append({"optimizer": name, "seed": seed, "arm": objective or "none", **rec})
    setup = {
        "experiment": "E12 (substitute: scikit-learn digits for MNIST, 64-16-10-10 for 784-16-10-10)",
        "architecture": arch.describe()["spec"], "num_params": arch.num_params, "dtype": str(dtype).split(".")[-1],
        "device": str(device), "data": {"name": split.name, "train": split.X_train.shape[0],
                                        "test": split.X_test.shape[0]},
        "batch_size": batch_size, "epochs": epochs, "seeds": seeds,
        "optimizers": {n: asdict(s) for n, s in specs.items()},
        "teleport": None if teleport is None else teleport.describe(),
        "symmetry": symmetry.describe(), "smoke": smoke, "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return {"setup": setup, "summary": summarize(runs), "runs": runs}

