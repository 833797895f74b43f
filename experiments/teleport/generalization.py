"""Teleporting to change sharpness φ or curvature ψ, and what it does to generalization (P §4.4 + F.4;
D §5.3; teleport.md §2.5; experiment E9).

Each seed trains a three-layer LeakyReLU MLP (no biases) by SGD; at epoch ``teleport_epoch``
("close to convergence") the model is copied into five arms — no teleport, φ↓, φ↑, ψ↓, ψ↑ — and
each teleporting arm moves θ along the data-dependent GL actions of all hidden layers at once
(a ProductSymmetry; action 2 with pseudo-inverses by default, as in P) on ``teleport_batches``
batches in turn, with ``steps`` ascent (↑) or descent (↓) steps of fixed group lr on each batch
(P: 10 steps for φ, 1 for ψ, lr 5·10⁻², 5 batches of 2000).  Training then resumes; every arm of a
seed sees the same data order afterwards, so the arms differ only by the teleport.

With a teleport batch larger than the hidden widths the pinv action keeps the loss only
approximately (teleport.md §1.4.3): every step passes the loss guard (guard.py), which corrects
the drift back to the level set of the teleport batch or refuses the step; the statuses are
reported, with the loss change of the event on the teleport batches, the training set and the
validation set.  Results on synthetic data are substitutes for the paper's CIFAR-10.

The φ objective defaults to φ_delta = φ_raw − L (P eq. 13 minus the loss): on the guarded level set
both change by the same amount, but with an approximate action ∇_c φ_raw is dominated by the
loss drift ∇_c L that the guard then undoes, and φ_raw-driven teleports moved φ the wrong way
(docs/teleport_generalization.md).  ``sharpness_variant="raw"`` is the formula as printed.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict

import numpy as np
import torch

from experiments.teleport.correlation import losses, study_architecture, train_sgd
from symdisc import data as datasets
from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.progress import track
from symdisc.symmetry import hidden_layers_gl
from symdisc.symmetry.base import Symmetry
from symdisc.teleport import geometry
from symdisc.teleport.guard import LossGuard
from symdisc.teleport.objectives import ObjectiveSpec
from symdisc.teleport.routine import TeleportConfig, teleport

# arm: (objective, maximize); None = no teleport
ARMS = {"none": None, "phi_down": ("sharpness", False), "phi_up": ("sharpness", True),
        "psi_down": ("curvature", False), "psi_up": ("curvature", True)}
STREAM_INIT, STREAM_ORDER, STREAM_BATCHES, STREAM_TELEPORT = 0, 1, 2, 3
PAPER = {"setup": "CIFAR-10, 3072-32-10-10, SGD; teleport once at epoch 20 on 5 batches of 2000; 10 steps (φ) / 1 step "
                  "(ψ); group lr 5e-2; 5 runs",
         "phi": "teleporting to flatter points slightly improves the validation loss; to sharper points no effect "
                "(P §4.4; figures only)",
         "psi": "contradictory: P §4.4 says smaller curvature lowers validation loss; D §5.3 and the P introduction "
                "say larger curvature does (figures only)"}


def teleport_batches(split: datasets.Split, count: int, size: int, generator: torch.Generator):
    """``count`` batches of ``size`` distinct random training samples (resampled for each batch)."""
    n = split.X_train.shape[0]
    if size > n:
        raise InputError(f"teleport batch {size} exceeds the {n} training samples")
    out = []
    for _ in range(count):
        rows = torch.randperm(n, generator=generator)[:size].to(split.X_train.device)
        out.append((split.X_train[rows], split.y_train[rows]))
    return out


def teleport_event(arch: Architecture, symmetry: Symmetry, theta: torch.Tensor, batches, config: TeleportConfig,
                   generator: torch.Generator) -> tuple[torch.Tensor, list[dict]]:
    """Teleport θ on each batch in turn (float64); returns θ' and one record per batch."""
    theta = theta.to(torch.float64)
    records = []
    for X, Y in batches:
        X, Y = X.to(torch.float64), Y
        with warnings.catch_warnings():  # the inexactness is recorded below instead
            warnings.simplefilter("ignore")
            r = teleport(symmetry, theta, lambda th, X=X, Y=Y: arch.batch_loss(th, X, Y), X, config,
                         generator=generator)
        records.append({"loss_before": r.loss_before, "loss_after": r.loss_after, "loss_change": r.loss_change,
                        "objective_before": r.objective_before, "objective_after": r.objective_after,
                        "statuses": r.counts(), "exact": r.exactness.get("exact")})
        theta = r.theta
    return theta, records


def _mean_sd(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def summarise(runs: list[dict], arms: list[str]) -> dict:
    """Per arm over seeds: final / best validation loss, the paired difference to the no-teleport arm,
    the loss changes at the teleport and the guard's statuses."""
    out = {}
    for arm in arms:
        finals = [r["arms"][arm]["val_loss"][-1] for r in runs]
        entry = {"final_val_loss": _mean_sd(finals),
                 "best_val_loss": _mean_sd([min(r["arms"][arm]["val_loss"]) for r in runs]),
                 "final_train_loss": _mean_sd([r["arms"][arm]["final_train_loss"] for r in runs])}
        if "none" in arms and arm != "none":
            diffs = [f - r["arms"]["none"]["val_loss"][-1] for f, r in zip(finals, runs, strict=True)]
            entry["final_val_loss_minus_none"] = {**_mean_sd(diffs), "seeds_lower": int(sum(d < 0 for d in diffs))}
        events = [r["arms"][arm]["teleport"] for r in runs if r["arms"][arm]["teleport"] is not None]
        if events:
            statuses = Counter()
            for e in events:
                for b in e["batches"]:
                    statuses.update(b["statuses"])
            entry["teleport"] = {
                "batch_loss_change_max_abs": max(abs(b["loss_change"]) for e in events for b in e["batches"]),
                "train_loss_change": _mean_sd([e["train_loss_after"] - e["train_loss_before"] for e in events]),
                "val_loss_change": _mean_sd([e["val_loss_after"] - e["val_loss_before"] for e in events]),
                "objective_change": _mean_sd([sum(b["objective_after"] - b["objective_before"] for b in e["batches"])
                                              for e in events]),
                "statuses": dict(statuses), "seconds": _mean_sd([e["seconds"] for e in events])}
        out[arm] = entry
    return out


def _losses(arch: Architecture, thetas: torch.Tensor, split: datasets.Split) -> tuple[list[float], list[float]]:
    """(training losses, validation losses) of each model."""
    return (losses(arch, thetas, split.X_train, split.y_train).tolist(),
            losses(arch, thetas, split.X_test, split.y_test).tolist())


def _run_seed(arch: Architecture, symmetry: Symmetry, split: datasets.Split, configs: dict, arms: list[str],
              stream: tuple[int, int], epochs: int, teleport_epoch: int, lr: float, batch_size: int,
              n_teleport_batches: int, teleport_batch_size: int) -> dict:
    """One seed: train to ``teleport_epoch``, branch into the arms (teleporting in float64), train on
    with one shared data order; validation loss after every epoch."""
    order = make_generator(*stream, STREAM_ORDER)
    theta = arch.sample_params(make_generator(*stream, STREAM_INIT))[None]
    shared: list[float] = []
    theta = train_sgd(arch, theta, split, teleport_epoch, lr, order, batch_size,
                      on_epoch=lambda e, th: shared.append(_losses(arch, th, split)[1][0]))
    batches = teleport_batches(split, n_teleport_batches, teleport_batch_size, make_generator(*stream, STREAM_BATCHES))
    train_before, val_before = (v[0] for v in _losses(arch, theta, split))
    arch64 = arch.to(dtype=torch.float64)
    starts, events = [], {}
    for arm in arms:
        events[arm] = None
        if ARMS[arm] is None:
            starts.append(theta[0])
            continue
        t0 = time.perf_counter()
        new, records = teleport_event(arch64, symmetry, theta[0], batches, configs[arm],
                                      make_generator(*stream, STREAM_TELEPORT))
        new = new.to(theta.dtype)
        train_after, val_after = (v[0] for v in _losses(arch, new[None], split))
        events[arm] = {"batches": records, "seconds": time.perf_counter() - t0, "train_loss_before": train_before,
                       "train_loss_after": train_after, "val_loss_before": val_before, "val_loss_after": val_after}
        starts.append(new)
    curves: list[list[float]] = [[] for _ in arms]

    def record(epoch, th):
        for curve, v in zip(curves, _losses(arch, th, split)[1], strict=True):
            curve.append(v)

    final = train_sgd(arch, torch.stack(starts), split, epochs - teleport_epoch, lr, order, batch_size,
                      on_epoch=record)
    final_train = _losses(arch, final, split)[0]
    return {"seed": stream[1], "arms": {arm: {"val_loss": shared + curves[i], "final_train_loss": final_train[i],
                                              "teleport": events[arm]} for i, arm in enumerate(arms)}}


def run_teleport_generalization(dataset: str = "synthetic", seeds: int | Iterable[int] = 5, epochs: int = 40,
                                teleport_epoch: int = 20, device: str = "cpu", progress: bool = False, *,
                                seed: int = 0, arms=tuple(ARMS), n_samples: int = 12000, n_features: int = 64,
                                dims: str = "64,32,10,10", lr: float = 0.02, batch_size: int = 20,
                                n_teleport_batches: int = 5, teleport_batch_size: int = 2000, group_lr: float = 5e-2,
                                phi_steps: int = 10, psi_steps: int = 1,
                                sharpness_directions: int = geometry.PAPER_DIRECTIONS,
                                sharpness_variant: str = "delta", action_form: str = "pinv", monotone: bool = False,
                                dtype=torch.float32) -> dict:
    """E9 on ``synthetic`` (the CIFAR-10 substitute) or ``digits``; returns per-seed curves and a summary.

    ``seeds``: a count n (the seeds 0..n−1) or the seeds s themselves; seed s draws from the streams
    ``make_generator(seed, s, ...)`` only."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise InputError(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    if not 0 < teleport_epoch < epochs:
        raise InputError(f"teleport_epoch must lie in (0, {epochs}), got {teleport_epoch}")
    if dataset == "synthetic":
        split = datasets.synthetic(n_samples=n_samples, n_features=n_features)
    elif dataset == "digits":
        split = datasets.digits()
    else:
        raise InputError(f"unknown data set {dataset!r}; choose synthetic or digits")
    split = split.to(dtype=dtype, device=device)
    arch = study_architecture(dims, dtype, device)
    symmetry = hidden_layers_gl(arch.to(dtype=torch.float64), action_form)
    arms = list(arms)
    configs = {arm: TeleportConfig(objective=ARMS[arm][0], maximize=ARMS[arm][1],
                                   steps=phi_steps if ARMS[arm][0] == "sharpness" else psi_steps, lr=group_lr,
                                   monotone=monotone,
                                   spec=ObjectiveSpec(sharpness_directions=sharpness_directions,
                                                      sharpness_variant=sharpness_variant))
               for arm in arms if ARMS[arm] is not None}
    seeds = list(range(seeds) if isinstance(seeds, int) else seeds)
    runs = []
    t_start = time.perf_counter()
    for s in track(seeds, "seeds", total=len(seeds), enabled=progress):
        runs.append(_run_seed(arch, symmetry, split, configs, arms, (seed, s), epochs, teleport_epoch, lr,
                              batch_size, n_teleport_batches, teleport_batch_size))
    return {
        "dataset": split.name, "substitute_for": "CIFAR-10" if dataset == "synthetic" else "MNIST",
        "note": f"substitute: {split.name} in place of the paper's CIFAR-10; the paper reports figures only",
        "config": {"seeds": seeds, "seed": seed, "epochs": epochs, "teleport_epoch": teleport_epoch, "dims": dims,
                   "lr": lr, "batch_size": batch_size, "optimizer": "SGD", "dtype": str(dtype).removeprefix("torch."),
                   "device": str(device), "train_samples": int(split.X_train.shape[0]),
                   "val_samples": int(split.X_test.shape[0]), "teleport_batches": n_teleport_batches,
                   "teleport_batch_size": teleport_batch_size, "group_lr": group_lr, "phi_steps": phi_steps,
                   "psi_steps": psi_steps, "sharpness_directions": sharpness_directions,
                   "sharpness_variant": sharpness_variant, "symmetry": symmetry.name, "action_form": action_form,
                   "monotone": monotone, "guard": asdict(LossGuard()),
                   "teleport_dtype": "float64"},
        "arms": arms, "summary": summarise(runs, arms), "runs": runs, "paper": PAPER,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
