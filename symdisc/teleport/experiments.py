"""Teleportation experiments on test functions and the 3-layer regression (teleport.md §4.1 E1–E4, E10, E11).

Every run trains a flat θ with a torch.optim optimizer wrapped in ``TeleportOptimizer`` — the same
few lines a user writes — and returns a JSON-ready dict.  ``symdisc teleport NAME`` and the scripts
in ``experiments/`` call these runners.

* ``booth`` (E2, P5): one teleport at (5, −5): ‖∇L‖²/L before and after (bound 36), the loss change;
  then the paper's run, GD lr 0.08 for 10 steps with the teleport before step 5, against plain GD.
* ``rosenbrock`` (E1): GD lr 1e-3 for 1000 steps from (−1, −1), teleport every 100 steps (10 steps,
  lr 0.1): final distance to (1, 1) with and without.
* ``ellipse``: like Booth on x₁² + a x₂² (bound 4·max(1, a)).
* ``regression`` (E3): the 5-6-7-8 LeakyReLU net on X ∈ ℝ^{5×4}, Y ∈ ℝ^{8×4}, θ, X, Y ~ U[0, 1],
  L = ½‖Y − f‖²_F, 300 steps of GD (lr 1e-4) or AdaGrad (lr 1e-1), one teleport after step 5 (GD: 8
  ascent steps of lr 1e-7; AdaGrad: 2 of lr 1e-5), along all hidden layers' data-dependent GL
  actions (exact: batch 4 ≤ widths 6, 7) or a learned artefact; steps to reach fixed losses with and
  without teleport, per seed, and their ratio.  ``variant="symdisc"`` (default) uses exp, Armijo
  backtracking and ‖c‖ ≤ 0.2 per step; ``variant="faithful"`` the papers' first-order I + T plain
  ascent (which can teleport to gradients GD then diverges on, D §4.6.2).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch.func import grad

from symdisc.architecture import make_generator
from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.product import hidden_layers_gl
from symdisc.teleport.optimizer import TeleportOptimizer
from symdisc.teleport.routine import TeleportConfig, teleport
from symdisc.teleport.testfunctions import TestFunction, booth, ellipse, rosenbrock

OPTIMIZERS: dict[str, Callable[[list[torch.Tensor], float], torch.optim.Optimizer]] = {
    "gd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
    "adagrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr, eps=1e-10),
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
}
# D §4.6.1; momentum (β = 0.9) is not stated: GD's effective step lr/(1 − β)
REGRESSION_LR = {"gd": 1e-4, "momentum": 1e-5, "adagrad": 1e-1}
REGRESSION_TELEPORT = {"gd": (8, 1e-7), "momentum": (8, 1e-7), "adagrad": (2, 1e-5)}  # (steps, lr), D §4.6.1
REGRESSION_TARGETS = (10.0, 5.0, 2.0)
SYMDISC_MAX_STEP = 0.2


@dataclass(frozen=True)
class RunOptions:
    """What the CLI passes: optimizer, symmetry ("known" or an artefact directory), seeds, variant, scale."""

    optimizer: str | None = None
    symmetry: str = "known"
    seeds: int = 5
    variant: str = "symdisc"
    state_policy: str = "transform"
    objective: str = "grad_norm"
    smoke: bool = False
    device: str = "cpu"


def train_flat(theta0: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor], optimizer: str, lr: float,
               steps: int, symmetry: Symmetry | None = None, schedule=(), config: TeleportConfig | None = None,
               X: torch.Tensor | None = None, state_policy: str = "transform") -> dict:
    """Train θ (a flat leaf tensor) for ``steps`` optimizer steps, teleporting on the schedule.

    Returns losses[t] = L(θ_t) and grad_norm_sq[t] (t = 0..steps), the teleport events and seconds."""
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    theta = theta0.detach().clone().requires_grad_(True)
    inner = OPTIMIZERS[optimizer]([theta], lr)
    opt = inner
    if symmetry is not None:
        opt = TeleportOptimizer(inner, symmetry, params=[theta], loss_fn=lambda th, _: loss(th),
                                batches=lambda g: X, inputs=lambda batch: batch, schedule=schedule,
                                config=config or TeleportConfig(), state_policy=state_policy)
    losses, grad_sq = [], []
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        value = loss(theta)
        value.backward()
        losses.append(float(value.detach()))
        grad_sq.append(float(theta.grad.pow(2).sum()))
        if not math.isfinite(losses[-1]):
            break
        opt.step()
    final = float(loss(theta.detach()))
    losses.append(final)
    grad_sq.append(float(grad(loss)(theta.detach()).pow(2).sum()) if math.isfinite(final) else math.nan)
    events = opt.events if symmetry is not None else []
    return {"losses": losses, "grad_norm_sq": grad_sq, "teleports": events, "seconds": time.perf_counter() - t0,
            "theta": theta.detach()}


def _ratio_report(tf: TestFunction, steps: int, lr: float) -> dict:
    x = tf.x0()
    r = teleport(tf.symmetry, x, tf.loss, config=TeleportConfig(steps=steps, lr=lr))
    return {"start": list(tf.start), "loss_before": r.loss_before, "loss_after": r.loss_after,
            "loss_change": r.loss_change, "grad_norm_sq_before": r.objective_before,
            "grad_norm_sq_after": r.objective_after,
            "grad_norm_sq_over_loss_before": r.objective_before / r.loss_before,
            "grad_norm_sq_over_loss_after": r.objective_after / r.loss_after, "log": r.log}


def _compare(tf: TestFunction, optimizer: str, lr: float, steps: int, schedule, config: TeleportConfig) -> dict:
    runs = {}
    for tele in (False, True):
        out = train_flat(tf.x0(), tf.loss, optimizer, lr, steps, tf.symmetry if tele else None, schedule, config)
        dist = float((out.pop("theta") - torch.tensor(tf.minimiser, dtype=torch.float64)).norm())
        runs["teleport" if tele else "plain"] = {**out, "distance_to_minimiser": dist}
    return runs


def run_booth(opts: RunOptions) -> dict:
    """E2 and P5 on Booth (teleport.md §4.1)."""
    tf = booth()
    out = {"experiment": "booth", "source": tf.source, "bound": 36.0, **_ratio_report(tf, 10, 1e-3)}
    out["training"] = {"optimizer": opts.optimizer or "gd", "lr": 0.08, "steps": 10, "teleport_before_step": 5,
                       **_compare(tf, opts.optimizer or "gd", 0.08, 10, {5}, TeleportConfig(steps=10, lr=1e-3))}
    return out


def run_ellipse(opts: RunOptions, a: float = 9.0) -> dict:
    tf = ellipse(a)
    out = {"experiment": "ellipse", "a": a, "source": tf.source, "bound": 4 * max(1.0, a),
           **_ratio_report(tf, 50, 1e-2)}
    out["training"] = {"optimizer": opts.optimizer or "gd", "lr": 0.02, "steps": 20, "teleport_before_step": 5,
                       **_compare(tf, opts.optimizer or "gd", 0.02, 20, {5}, TeleportConfig(steps=50, lr=1e-2))}
    return out


def run_rosenbrock(opts: RunOptions) -> dict:
    """E1: GD lr 1e-3, 1000 steps, teleport every 100 steps (10 ascent steps, lr 0.1)."""
    tf = rosenbrock()
    steps = 200 if opts.smoke else 1000
    runs = _compare(tf, opts.optimizer or "gd", 1e-3, steps, lambda s: s % 100 == 0,
                    TeleportConfig(steps=10, lr=1e-1))
    return {"experiment": "rosenbrock", "source": tf.source, "optimizer": opts.optimizer or "gd", "lr": 1e-3,
            "steps": steps, "teleport_every": 100, "minimiser": list(tf.minimiser),
            "distance_plain": runs["plain"]["distance_to_minimiser"],
            "distance_teleport": runs["teleport"]["distance_to_minimiser"], "runs": runs}


# ---- E3: the 3-layer regression ----------------------------------------------------------------------------

def regression_problem(seed: int, dtype=torch.float64):
    """(arch, θ₀, X, Y, loss) of E3 for ``seed`` (teleport-regression preset: θ, X, Y ~ U[0, 1])."""
    from symdisc import zoo

    arch = zoo.get("teleport-regression").to(dtype=dtype)
    g = make_generator(seed, 3)
    theta0 = arch.sample_params(g)
    X, Y = arch.sample_data(4, g)
    return arch, theta0, X, Y, lambda th: 0.5 * (arch.forward(th, X) - Y).pow(2).sum()


def regression_symmetry(arch, spec: str) -> Symmetry:
    """"known": all hidden layers' pinv data-dependent GL actions; otherwise an artefact directory."""
    if spec == "known":
        return hidden_layers_gl(arch, "pinv")
    from symdisc.discovery.artefact import load

    return load(spec, arch=arch)


def regression_config(optimizer: str, variant: str, objective: str = "grad_norm") -> TeleportConfig:
    steps, lr = REGRESSION_TELEPORT[optimizer]
    if objective == "adagrad":
        lr = 7.5e-3  # P G.1: the lr of the ‖∇L‖_A objective
    if variant == "faithful":
        return TeleportConfig(objective=objective, steps=steps, lr=lr, parameterisation="first_order",
                              monotone=False)
    if variant == "symdisc":
        return TeleportConfig(objective=objective, steps=steps, lr=lr, max_step=SYMDISC_MAX_STEP)
    raise InputError(f"unknown variant {variant!r}; choose symdisc or faithful")


def steps_to_reach(losses: list[float], target: float) -> int | None:
    return next((t for t, v in enumerate(losses) if v < target), None)


def run_regression(opts: RunOptions) -> dict:
    """E3 (and E10 / E11 through the optimizer, state policy and objective options)."""
    optimizers = [opts.optimizer] if opts.optimizer else ["gd", "adagrad"]
    steps = 60 if opts.smoke else 300
    seeds = range(min(opts.seeds, 2) if opts.smoke else opts.seeds)
    results = {}
    for name in optimizers:
        if name not in REGRESSION_LR:
            raise InputError(f"the regression runs {', '.join(REGRESSION_LR)}; got {name!r}")
        config = regression_config(name, opts.variant, opts.objective)
        per_seed = []
        for seed in seeds:
            arch, theta0, X, Y, loss = regression_problem(seed)
            sym = regression_symmetry(arch, opts.symmetry)
            plain = train_flat(theta0, loss, name, REGRESSION_LR[name], steps)
            tele = train_flat(theta0, loss, name, REGRESSION_LR[name], steps, sym, {5}, config, X, opts.state_policy)
            per_seed.append({
                "seed": seed,
                "losses_plain": plain["losses"], "losses_teleport": tele["losses"],
                "grad_norm_sq_plain": plain["grad_norm_sq"], "grad_norm_sq_teleport": tele["grad_norm_sq"],
                "teleport": tele["teleports"], "seconds_plain": plain["seconds"], "seconds_teleport": tele["seconds"],
                "steps_to": {str(t): [steps_to_reach(plain["losses"], t), steps_to_reach(tele["losses"], t)]
                             for t in REGRESSION_TARGETS},
            })
        results[name] = {"lr": REGRESSION_LR[name], "teleport_config": config.to_dict(), "seeds": per_seed,
                         "summary": _summarise(per_seed)}
    return {"experiment": "regression", "source": "D §4.6.1 (E3)", "variant": opts.variant,
            "symmetry": opts.symmetry, "state_policy": opts.state_policy, "objective": opts.objective,
            "steps": steps, "teleport_after_step": 5, "targets": list(REGRESSION_TARGETS), "optimizers": results}


def _summarise(per_seed: list[dict]) -> dict:
    """Per target: the median over seeds of steps(plain)/steps(teleport) (speed-up > 1 = teleport faster) among
    seeds where both reached it, and how many reached it; the teleports' loss changes and guard statuses."""
    out = {}
    for t in map(str, REGRESSION_TARGETS):
        pairs = [s["steps_to"][t] for s in per_seed]
        both = [p / q for p, q in pairs if p is not None and q is not None and q > 0]
        out[t] = {"speedup_median": float(torch.tensor(both).median()) if both else None,
                  "reached_plain": sum(p is not None for p, _ in pairs),
                  "reached_teleport": sum(q is not None for _, q in pairs), "seeds": len(pairs)}
    events = [e for s in per_seed for e in s["teleport"]]
    out["max_abs_loss_change"] = max((abs(e["loss_change"]) for e in events), default=0.0)
    out["diverged_teleport"] = sum(not math.isfinite(s["losses_teleport"][-1]) for s in per_seed)
    out["diverged_plain"] = sum(not math.isfinite(s["losses_plain"][-1]) for s in per_seed)
    return out


def run_digits_cli(opts: RunOptions) -> dict:
    """E12 on digits (substitute for MNIST): ``symdisc.teleport.digits.run_digits`` with E12's optimizers."""
    from symdisc.teleport.digits import E12_OPTIMIZERS, mlp, run_digits

    names = [opts.optimizer] if opts.optimizer else list(E12_OPTIMIZERS)
    unknown = [n for n in names if n not in E12_OPTIMIZERS]
    if unknown:
        raise InputError(f"digits runs {', '.join(E12_OPTIMIZERS)}; got {unknown[0]!r}")
    symmetry = None
    if opts.symmetry != "known":
        from symdisc.discovery.artefact import load

        symmetry = load(opts.symmetry, arch=mlp())
    result = run_digits({n: E12_OPTIMIZERS[n] for n in names}, seeds=range(1 if opts.smoke else opts.seeds),
                        epochs=100, symmetry=symmetry, device=opts.device, smoke=opts.smoke)
    return {"experiment": "digits", "source": "P §5.1, G.2 (E12) on scikit-learn digits, a substitute for MNIST",
            **result}


def run_meta_cli(opts: RunOptions) -> dict:
    """E13, learning to teleport (``symdisc.teleport.meta``): the documented full preset, or smoke."""
    from symdisc.teleport.meta import preset, run_meta

    result = run_meta(preset("smoke" if opts.smoke else "full"), seed=0, device=opts.device, progress=True)
    return {**result, "experiment": "meta", "source": "P §5.2, D §5.5 (E13)"}


def run_schedules_cli(opts: RunOptions) -> dict:
    """E6, teleport schedules on digits (``symdisc.teleport.schedules``): SGD only, 30 epochs."""
    from symdisc.teleport.schedules import run_schedules

    if opts.optimizer not in (None, "sgd"):
        raise InputError(f"schedules (E6) trains with SGD only (D §4.6.3); got --optimizer {opts.optimizer}")
    result = run_schedules(seeds=range(1 if opts.smoke else opts.seeds), device=opts.device, smoke=opts.smoke)
    return {"experiment": "schedules", "source": "D §4.6.3 (E6) on scikit-learn digits, a substitute for MNIST",
            **result}


RUNNERS: dict[str, Callable[[RunOptions], dict]] = {
    "booth": run_booth, "ellipse": run_ellipse, "rosenbrock": run_rosenbrock, "regression": run_regression,
    "digits": run_digits_cli, "schedules": run_schedules_cli, "meta": run_meta_cli,
}


def with_defaults(opts: RunOptions, **kw) -> RunOptions:
    return replace(opts, **{k: v for k, v in kw.items() if v is not None})
