"""E6 (D §4.6.3, fig. 4.8): when, how often and on how many mini-batches to teleport.

The setting of E5 (D §4.6.1) on scikit-learn's digits (the MNIST substitute): the 64-64-64-10
LeakyReLU MLP, SGD at lr 2e-3 with mini-batches of 20, teleports of 10 ascent steps at lr 1e-3 on
‖∇L‖² with the exact pinv GL action of every hidden layer (teleport batch 20 ≤ width 64).  The
dissertation gives its schedules only in figure legends (teleport.md §1.5, AMBIGUOUS); symdisc's:

* ``when``    — 4 mini-batches at one epoch e ∈ {0 (before training), 1, 2, 5, 10};
* ``spacing`` — 4 teleports of one mini-batch each, at epochs 1, 1 + d, 1 + 2d, 1 + 3d, d ∈ {1, …, 5};
* ``batches`` — m ∈ {1, 2, 4, 8, 16} mini-batches after epoch 1.

Every arm of a seed starts from the same θ₀ and sees the same training batches (``train_one``), so
arms are compared per seed: Δ log10 L = log10 L_arm − log10 L_none at chosen epochs, mean ± std
over seeds (negative: teleporting helped).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, replace

import torch

from experiments.teleport.digits import OptimizerSpec, TeleportPlan, mlp, summarize, train_one
from symdisc import data as datasets
from symdisc.errors import InputError
from symdisc.progress import track
from symdisc.symmetry.product import hidden_layers_gl
from symdisc.teleport.routine import TeleportConfig

DIMS = "64,64,64,10"
SGD = OptimizerSpec("SGD", 2e-3)
BASE = TeleportPlan(epochs=(1,), batches=4, batch_size=20, config=TeleportConfig(steps=10, lr=1e-3, monotone=False),
                    state_policy="keep")
FAMILIES = ("when", "spacing", "batches")


def schedules(base: TeleportPlan = BASE) -> dict[str, dict[str, TeleportPlan]]:
    """The three families of E6 as {family: {label: plan}}."""
    return {
        "when": {f"epoch {e}": replace(base, epochs=(e,)) for e in (0, 1, 2, 5, 10)},
        "spacing": {f"every {d}": replace(base, epochs=tuple(1 + i * d for i in range(4)), batches=1)
                    for d in (1, 2, 3, 4, 5)},
        "batches": {f"{m} batch{'es' if m > 1 else ''}": replace(base, batches=m) for m in (1, 2, 4, 8, 16)},
    }


def paired_log_gap(runs: list[dict], arm: str, key: str, epochs: Iterable[int]) -> dict:
    """Per epoch: mean and std over seeds of log10 L_arm − log10 L_none (same seed), over the ``n`` seeds where
    neither run diverged (a diverged run is left out at every epoch; ``diverged`` counts them)."""
    base = {r["seed"]: r for r in runs if r["arm"] == "none"}
    pairs = [(r, base[r["seed"]]) for r in runs if r["arm"] == arm]
    kept = [(r, b) for r, b in pairs if r["diverged_at"] is None and b["diverged_at"] is None]
    out = {}
    for e in epochs:
        gaps = [g for r, b in kept if (g := log_gap(r["curves"][key], b["curves"][key], e)) is not None]
        out[str(e)] = {"mean": statistics.fmean(gaps) if gaps else None,
                       "std": statistics.stdev(gaps) if len(gaps) > 1 else None, "n": len(gaps),
                       "diverged": len(pairs) - len(kept)}
    return out


def log_gaps(runs: list[dict], report_epochs: Iterable[int], epochs: int) -> dict:
    """{arm: {train_loss | test_loss: paired_log_gap at the report epochs (those ≤ epochs, else the last)}}."""
    report = [e for e in report_epochs if e <= epochs] or [epochs]
    return {arm: {key: paired_log_gap(runs, arm, key, report) for key in ("train_loss", "test_loss")}
            for arm in dict.fromkeys(r["arm"] for r in runs) if arm != "none"}


def log_gap(curve: list, base: list, e: int) -> float | None:
    """log10 curve[e] − log10 base[e], or None where either is missing, non-finite or ≤ 0."""
    if e >= len(curve) or e >= len(base):
        return None
    a, b = curve[e], base[e]
    ok = all(x is not None and math.isfinite(x) and x > 0 for x in (a, b))
    return math.log10(a) - math.log10(b) if ok else None


def run_schedules(families: Iterable[str] = FAMILIES, seeds: Iterable[int] = range(5), epochs: int = 30,
                  device: str | torch.device = "cpu", progress: bool = True, smoke: bool = False,
                  report_epochs: Iterable[int] = (2, 5, 10, 20, 30), teleport_steps: int = 10,
                  per_family: int | None = None) -> dict:
    """Train SGD on digits without teleport and with every schedule of ``families`` (the first ``per_family``
    of each; None: all), teleports of ``teleport_steps`` ascent steps; runs, summary, setup.

    ``smoke``: 2 epochs, 3 ascent steps, the first two schedules of each family (CI)."""
    families, seeds = list(families), list(seeds)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise InputError(f"unknown E6 famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                           f"choose from {', '.join(FAMILIES)}")
    if smoke:
        epochs, teleport_steps, per_family = min(epochs, 2), 3, 2
    base = replace(BASE, config=replace(BASE.config, steps=teleport_steps))
    plans = {f: dict(list(p.items())[:per_family]) for f, p in schedules(base).items() if f in families}
    arch = mlp(DIMS, torch.float64, device)
    split = datasets.digits(dtype=torch.float64).to(device=device)
    symmetry = hidden_layers_gl(arch, "pinv")
    jobs = [(seed, None, "none", None) for seed in seeds]
    jobs += [(seed, fam, label, plan) for fam, ps in plans.items() for label, plan in ps.items() for seed in seeds]
    runs = []
    for seed, fam, label, plan in track(jobs, "E6 schedule runs", enabled=progress):
        rec = train_one(arch, split, SGD, seed, epochs, 20, symmetry, plan or base,
                        None if plan is None else "grad_norm")
        arm = label if fam is None else f"{fam}: {label}"
        runs.append({"optimizer": "sgd", "seed": seed, "family": fam, "arm": arm,
                     "schedule": None if plan is None else {"epochs": list(plan.epochs), "batches": plan.batches},
                     **rec})
    gaps = log_gaps(runs, report_epochs, epochs)
    setup = {
        "experiment": "E6 (substitute: scikit-learn digits for MNIST, 64-64-64-10 for 784-512-512-10)",
        "architecture": arch.describe()["spec"], "num_params": arch.num_params, "optimizer": asdict(SGD),
        "batch_size": 20, "epochs": epochs, "seeds": seeds, "smoke": smoke,
        "teleport": base.describe(), "families": {f: {label: {"epochs": list(p.epochs), "batches": p.batches}
                                                      for label, p in ps.items()} for f, ps in plans.items()},
        "symmetry": symmetry.describe(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "data": {"name": split.name, "train": split.X_train.shape[0], "test": split.X_test.shape[0]},
    }
    return {"setup": setup, "summary": summarize(runs)["sgd"], "paired_log10_gap": gaps, "runs": runs}
