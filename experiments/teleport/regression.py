"""The 3-layer regression of E3, E4, E10, E11 (D §4.6.1; teleport.md §4.1).

The 5-6-7-8 LeakyReLU net on X ∈ ℝ^{5×4}, Y ∈ ℝ^{8×4}, θ, X, Y ~ U[0, 1] (the teleport-regression
preset), L = ½‖Y − f‖²_F; GD (lr 1e-4), momentum (1e-5) or AdaGrad (1e-1), one teleport after step 5
(GD, momentum: 8 ascent steps of lr 1e-7; AdaGrad: 2 of lr 1e-5), along all hidden layers'
data-dependent GL actions (exact: batch 4 ≤ widths 6, 7) or a learned artefact.  ``variant="symdisc"``
uses exp, Armijo backtracking and ‖c‖ ≤ 0.2 per step; ``variant="faithful"`` the papers' first-order
I + T plain ascent (which can teleport to gradients GD then diverges on, D §4.6.2).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from experiments.registry import ROOT
from experiments.teleport.training import train_flat
from symdisc import make_generator
from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.product import hidden_layers_gl
from symdisc.teleport.routine import TeleportConfig

# D §4.6.1; momentum (β = 0.9) is not stated: GD's effective step lr/(1 − β)
REGRESSION_LR = {"gd": 1e-4, "momentum": 1e-5, "adagrad": 1e-1}
REGRESSION_TELEPORT = {"gd": (8, 1e-7), "momentum": (8, 1e-7), "adagrad": (2, 1e-5)}  # (steps, lr), D §4.6.1
SYMDISC_MAX_STEP = 0.2
# variant "fields": the basis-invariant ascent (TeleportConfig.metric="fields"), (lr, max_step) per optimizer
# chosen on held-out seeds 100–104 with the *known* action (docs/experiments.md, e3_fields_tuning)
# (the highest ``score`` among ``admissible`` arms); momentum takes GD's, untuned
FIELDS_TELEPORT = {"gd": (1e-6, 0.5), "momentum": (1e-6, 0.5), "adagrad": (1e-5, 2.0)}
ARM_DEFAULTS = {"symmetry": "known", "variant": "symdisc", "state_policy": "transform", "objective": "grad_norm",
                "fields": "verified", "lr": None, "max_step": None, "correct": True}


def regression_problem(seed: int, dtype=torch.float64):
    """(arch, θ₀, X, Y, loss) of E3 for ``seed`` (teleport-regression preset: θ, X, Y ~ U[0, 1])."""
    from symdisc import zoo

    arch = zoo.get("teleport-regression").to(dtype=dtype)
    g = make_generator(seed, 3)
    theta0 = arch.sample_params(g)
    X, Y = arch.sample_data(4, g)
    return arch, theta0, X, Y, lambda th: 0.5 * (arch.forward(th, X) - Y).pow(2).sum()


def regression_symmetry(arch, spec: str, fields: str = "verified") -> Symmetry:
    """"known": all hidden layers' pinv data-dependent GL actions; otherwise an artefact directory
    (relative paths from the repository root), its verified fields or, with ``fields="all"``, every field
    (a SymdiscWarning names the unverified ones)."""
    if spec == "known":
        return hidden_layers_gl(arch, "pinv")
    from symdisc.discovery.artefact import load, select_fields

    return select_fields(load(ROOT / spec, arch=arch, fields="all"), fields)


def regression_config(optimizer: str, variant: str, objective: str = "grad_norm", lr: float | None = None,
                      max_step: float | None = None) -> TeleportConfig:
    """The teleport of one arm: the variant's (steps, lr, max_step), ``lr`` / ``max_step`` overriding."""
    steps, default_lr = REGRESSION_TELEPORT[optimizer]
    if objective == "adagrad":
        default_lr = 7.5e-3  # P G.1: the lr of the ‖∇L‖_A objective
    if variant == "faithful":
        return TeleportConfig(objective=objective, steps=steps, lr=lr or default_lr, parameterisation="first_order",
                              monotone=False, max_step=max_step)
    if variant == "symdisc":
        return TeleportConfig(objective=objective, steps=steps, lr=lr or default_lr,
                              max_step=max_step or SYMDISC_MAX_STEP)
    if variant == "fields":
        fields_lr, fields_max = FIELDS_TELEPORT[optimizer]
        return TeleportConfig(objective=objective, steps=steps, lr=lr or fields_lr, max_step=max_step or fields_max,
                              metric="fields")
    raise InputError(f"unknown variant {variant!r}; choose symdisc, faithful or fields")


def arm_config(optimizer: str, arm: dict) -> TeleportConfig:
    """The teleport configuration of a completed arm spec (``arm_specs``) for ``optimizer``; ``correct=False``
    makes the loss guard refuse drifting steps (Armijo then halves them) instead of projecting them back."""
    config = regression_config(optimizer, arm["variant"], arm["objective"], arm["lr"], arm["max_step"])
    return config if arm["correct"] else replace(config, guard=replace(config.guard, correct=False))


def arm_specs(arms: dict[str, dict]) -> dict[str, dict]:
    """Each arm's {symmetry, variant, state_policy, objective}, missing keys from ``ARM_DEFAULTS``."""
    if not arms:
        raise InputError("the regression needs at least one teleport arm")
    for name, spec in arms.items():
        unknown = set(spec) - set(ARM_DEFAULTS)
        if unknown:
            raise InputError(f"arm {name!r}: unknown keys {sorted(unknown)}; an arm takes {', '.join(ARM_DEFAULTS)}")
    return {name: {**ARM_DEFAULTS, **spec} for name, spec in arms.items()}


def steps_to_reach(losses: list[float], target: float) -> int | None:
    return next((t for t, v in enumerate(losses) if v < target), None)


def regression_seed(seed: int, optimizer: str, arms: dict[str, dict], steps: int, after: int,
                    targets: list[float]) -> dict:
    """One seed, one optimizer: the plain run and one teleporting run per arm from the same θ₀, with the
    steps each needs to reach every target loss."""
    if optimizer not in REGRESSION_LR:
        raise InputError(f"the regression runs {', '.join(REGRESSION_LR)}; got {optimizer!r}")
    arch, theta0, X, Y, loss = regression_problem(seed)
    lr = REGRESSION_LR[optimizer]
    plain = train_flat(theta0, loss, optimizer, lr, steps)
    out = {"plain": {k: plain[k] for k in ("losses", "grad_norm_sq", "seconds")}, "arms": {}}
    for name, arm in arm_specs(arms).items():
        config = arm_config(optimizer, arm)
        symmetry = regression_symmetry(arch, arm["symmetry"], arm["fields"])
        tele = train_flat(theta0, loss, optimizer, lr, steps, symmetry, {after}, config, X, arm["state_policy"])
        out["arms"][name] = {**{k: tele[k] for k in ("losses", "grad_norm_sq", "teleports", "seconds")},
                             "steps_to": {str(t): [steps_to_reach(plain["losses"], t),
                                                   steps_to_reach(tele["losses"], t)] for t in targets}}
    return out


def speedups(pairs: list[tuple[dict, dict]], targets: list[float]) -> dict:
    """Over (plain, arm) runs of the seeds, per target: the median of steps(plain)/steps(teleport) (> 1:
    teleport faster) among seeds where both reached it, and how many reached it; the teleports' largest
    loss change and the diverged runs; ``score`` (the mean of the medians) and ``admissible`` (no teleport run
    diverged or missed a target its plain run reached), the rule that chose FIELDS_TELEPORT."""
    out = {}
    for t in map(str, targets):
        reach = [arm["steps_to"][t] for _, arm in pairs]
        both = [p / q for p, q in reach if p is not None and q is not None and q > 0]
        out[t] = {"speedup_median": float(torch.tensor(both).median()) if both else None,
                  "reached_plain": sum(p is not None for p, _ in reach),
                  "reached_teleport": sum(q is not None for _, q in reach), "seeds": len(reach)}
    medians = [out[t]["speedup_median"] for t in map(str, targets)]
    out["score"] = sum(medians) / len(medians) if None not in medians else None
    # admissible: no teleport run diverged and each reached every target its plain run reached
    out["admissible"] = all(q is not None for _, arm in pairs for p, q in arm["steps_to"].values() if p is not None) \
        and not any(not _finite_end(arm["losses"]) for _, arm in pairs)
    events = [e for _, arm in pairs for e in arm["teleports"]]
    out["max_abs_loss_change"] = max((abs(e["loss_change"]) for e in events), default=0.0)
    out["diverged_teleport"] = sum(not _finite_end(arm["losses"]) for _, arm in pairs)
    out["diverged_plain"] = sum(not _finite_end(plain["losses"]) for plain, _ in pairs)
    return out


def _finite_end(losses: list) -> bool:
    return losses[-1] is not None and math.isfinite(losses[-1])
