"""Learning to teleport: an L2L meta-optimizer that also outputs a group element (P §5.2, Alg. 1;
D §5.5; teleport.md §3, experiment E13).

On L(W1, W2) = ½‖Y − W2 σ(W1 X)‖_F² (W1, W2, X, Y ∈ ℝ^{20×20}, σ = LeakyReLU(0.1)) four learners
run trajectories w_0 → w_T from random initialisations:

* ``gd``           w_{t+1} = w_t − η ∇_t  (η: the largest non-divergent lr on the training problems);
* ``update``       w_{t+1} = w_t + f_t,        [f_t; h1] = m1(∇_t, h1)   (Andrychowicz et al., g_t = I);
* ``lr_tele``      w_{t+1} = g_t·(w_t − η_t ∇_t), [T_t, η_t; h2] = m2(∇_t, h2);
* ``update_tele``  w_{t+1} = g_t·(w_t + f_t),  f_t from m1 and T_t from m2 (the paper's method).

g_t = exp(T_t) acts through the Symmetry interface only (``act(c, θ, X)``, c = the gl(20)
coefficients of T_t; ``first_order`` uses θ + ξ_T(θ) instead).  m1, m2 are two-layer LSTMs over the
whole (preprocessed) gradient vector; their parameters φ are trained with Adam on the truncated
meta-loss Σ_{window} L(w_{t+1}) (or its log), unrolled ``unroll`` steps.  ∇_t enters the LSTMs as
a constant (L2L's first-order meta-gradient) unless ``second_order``.  Every decision the papers
leave open is a field of :class:`MetaConfig` and is written down in docs/teleport_meta.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch
from torch import nn
from torch.func import grad, vmap

from symdisc import zoo
from symdisc.architecture import make_generator
from symdisc.errors import InputError, NumericalError
from symdisc.progress import track
from symdisc.teleport.routine import move

Kind = Literal["gd", "update", "lr_tele", "update_tele"]
KINDS: tuple[Kind, ...] = ("gd", "update", "lr_tele", "update_tele")
LABELS = {"gd": "GD", "update": "LSTM(update)", "lr_tele": "LSTM(lr,tele)", "update_tele": "LSTM(update,tele)"}
LR_GRID = tuple(m * 10.0**e for e in range(-6, 0) for m in range(1, 10))

# The paper's setup (P §5.2), for the record: never run here (far beyond 2 CPU cores).
PAPER = {"hidden": 300, "layers": 2, "steps": 100, "unroll": 10, "meta_lr_update": 1e-4, "meta_lr_tele": 1e-3,
         "trajectories": {"update_tele": 700, "update": 600, "lr_tele": 30}, "test_trajectories": 5, "gd_lr": 3e-4}


@dataclass(frozen=True)
class MetaConfig:
    """E13 configuration; defaults are the documented choices (docs/teleport_meta.md)."""

    dims: str = "20,20,20"
    samples: int = 20                      # batch n = width: X square, the exact group-action case
    init: Literal["uniform", "gaussian"] = "uniform"   # W, X, Y ~ U[0,1] (reference code) | fan-in θ, N(0,1) X, Y
    loss: Literal["half_squared", "squared", "norm"] = "half_squared"   # ½‖·‖_F² | ‖·‖_F² | ‖·‖_F (as printed)
    steps: int = 100
    unroll: int = 10
    hidden: int = 300
    layers: int = 2
    preprocess: bool = True                # Andrychowicz et al.'s (log|∇|/p, sign ∇) per coordinate
    preprocess_p: float = 10.0
    out_scale: float = 0.1                 # f_t = out_scale · Linear(h)
    form: Literal["sigma_inverse", "pinv"] = "sigma_inverse"   # action 1 (exact group action here) | action 2
    parameterisation: Literal["exp", "first_order"] = "exp"
    t_norm: Literal["ball", "sphere"] = "ball"   # ‖T‖_F ≤ τ (m2 picks the size) | = τ (reference code)
    t_scale: float = 0.01                  # τ
    lr_range: float = 10.0                 # LSTM(lr,tele): η_t ∈ [η/r, η·r], η_t = η at initialisation
    meta_loss: Literal["log", "sum"] = "log"
    second_order: bool = False
    meta_lr_update: float = 1e-4           # Adam on φ1 (m1)
    meta_lr_tele: float = 1e-3             # Adam on φ2 (m2)
    trajectories: tuple[tuple[str, int], ...] = (("update", 600), ("lr_tele", 30), ("update_tele", 700))
    batch: int = 1                         # training trajectories run side by side per meta-update
    test_trajectories: int = 5
    gd_lr: float | None = None             # None: the largest non-divergent lr on LR_GRID (paper: 3e-4)
    lr_search_problems: int = 32
    train_dtype: Literal["float32", "float64"] = "float32"

    def validate(self) -> None:
        if self.steps < 1 or self.unroll < 1 or self.hidden < 1 or self.batch < 1 or self.test_trajectories < 1:
            raise InputError("steps, unroll, hidden, batch and test_trajectories must be ≥ 1")
        unknown = set(dict(self.trajectories)) - set(KINDS[1:])
        if unknown:
            raise InputError(f"trajectories name unknown learners {sorted(unknown)}; choose from {KINDS[1:]}")
        if self.t_scale <= 0 or self.lr_range < 1:
            raise InputError("t_scale must be > 0 and lr_range ≥ 1")
        choices = {"init": ("uniform", "gaussian"), "loss": ("half_squared", "squared", "norm"),
                   "form": ("sigma_inverse", "pinv"), "parameterisation": ("exp", "first_order"),
                   "t_norm": ("ball", "sphere"), "meta_loss": ("log", "sum"), "train_dtype": ("float32", "float64")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["trajectories"] = dict(self.trajectories)
        return out


PRESETS = {
    "paper": MetaConfig(),
    # ≤ 30 min on 2 CPU cores (see docs/teleport_meta.md for the difference from the paper).
    "full": MetaConfig(hidden=64, batch=8, trajectories=(("update", 400), ("lr_tele", 240), ("update_tele", 400)),
                       meta_lr_update=1e-3, meta_lr_tele=1e-3),
    "smoke": MetaConfig(hidden=8, steps=10, unroll=5, trajectories=(("update", 2), ("lr_tele", 2), ("update_tele", 2)),
                        test_trajectories=2, lr_search_problems=4, meta_lr_update=1e-3),
}


class Task:
    """The E13 problem: loss L(θ; X, Y), its gradient and the group action, batched over problems."""

    def __init__(self, config: MetaConfig, dtype: torch.dtype, device: str | torch.device = "cpu"):
        self.config, self.dtype, self.device = config, dtype, torch.device(device)
        data = "uniform" if config.init == "uniform" else "gaussian"
        self.arch = zoo.get("mlp", dims=config.dims, act="leakyrelu", data=data).to(dtype=dtype, device=device)
        self.dims = self.arch.spec["dims"]
        if len(self.dims) != 3:
            raise InputError(f"E13 is a two-layer network: dims must have 3 widths, got {config.dims!r}")
        forms = [s for s in self.arch.known_symmetries()
                 if s.data_dependent and s.describe().get("form") == config.form]
        if not forms:
            raise InputError(f"the zoo offers no data-dependent GL action of form {config.form!r}")
        self.symmetry = forms[0]
        self.num_params, self.num_generators = self.arch.num_params, self.symmetry.num_generators
        self.entries = config.samples * self.dims[-1]  # batch_loss is a mean over these

    def loss(self, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        sq = self.entries * self.arch.batch_loss(theta, X, Y)  # ‖Y − W2 σ(W1 X)‖_F²
        return {"half_squared": 0.5 * sq, "squared": sq, "norm": sq.sqrt()}[self.config.loss]

    def losses(self, theta, X, Y) -> torch.Tensor:
        return vmap(self.loss)(theta, X, Y)

    def grads(self, theta, X, Y) -> torch.Tensor:
        return vmap(grad(self.loss))(theta, X, Y)

    def teleport(self, c: torch.Tensor, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """g·θ per problem, g = exp(Σ c_k h_k) (or the first-order θ + ξ_c(θ))."""
        return vmap(lambda ci, th, x: move(self.symmetry, self.config.parameterisation, ci, th, x))(c, theta, X)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n problems (θ_0, X, Y) from the zoo's samplers (X rows = samples: X_paper = Xᵀ)."""
        return self.arch.sample_draws(n, self.config.samples, generator)


def preprocess(g: torch.Tensor, p: float) -> torch.Tensor:
    """Andrychowicz et al. (2016) App. A: (log|g|/p, sign g) if |g| ≥ e^{−p}, else (−1, e^p g)."""
    big = g.abs() >= math.exp(-p)
    mag = torch.where(big, g.abs().clamp_min(math.exp(-p)).log() / p, -torch.ones_like(g))
    return torch.cat([mag, torch.where(big, g.sign(), math.exp(p) * g)], dim=-1)


class MetaLSTM(nn.Module):
    """Two-layer LSTM over the whole gradient vector (one state per problem) with linear heads;
    the heads in ``zero`` start at 0 (g_t = I, η_t = η at initialisation)."""

    def __init__(self, n_in: int, hidden: int, layers: int, heads: dict[str, int], zero: tuple[str, ...] = ()):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, layers)
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in heads.items()})
        for name in zero:
            nn.init.zeros_(self.heads[name].weight)
            nn.init.zeros_(self.heads[name].bias)

    def forward(self, x: torch.Tensor, state):
        out, state = self.lstm(x[None], state)
        return {name: head(out[0]) for name, head in self.heads.items()}, state


def _seeded(seed: int | None, stream: int, build):
    """build() with torch's global RNG seeded from (seed, stream) and restored afterwards."""
    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(make_generator(seed, 3, stream).initial_seed())
        return build()


class Learner(nn.Module):
    """One of the four update rules; ``step`` advances a batch of problems by one step."""

    def __init__(self, kind: Kind, task: Task, eta: float, seed: int | None = None):
        """``seed`` fixes m1's and m2's initialisation separately, so that LSTM(update) and
        LSTM(update,tele) start from the same m1 (and, with g_0 = I, from the same optimizer)."""
        super().__init__()
        cfg, p, k = task.config, task.num_params, task.num_generators
        self.kind, self.task, self.eta = kind, task, eta
        n_in = 2 * p if cfg.preprocess else p
        heads = {"tele": k, **({"lr": 1} if kind == "lr_tele" else {})}
        zero = tuple(h for h in heads if h == "lr" or cfg.t_norm == "ball")
        self.m1 = _seeded(seed, 1, lambda: MetaLSTM(n_in, cfg.hidden, cfg.layers, {"f": p})) \
            if kind in ("update", "update_tele") else None
        self.m2 = _seeded(seed, 2, lambda: MetaLSTM(n_in, cfg.hidden, cfg.layers, heads, zero)) \
            if kind in ("lr_tele", "update_tele") else None

    def coefficients(self, raw: torch.Tensor) -> torch.Tensor:
        """c = τ·raw/max(1, ‖raw‖) (ball) or τ·raw/‖raw‖ (sphere); ‖c‖₂ = ‖T‖_F for gl's E_ab basis."""
        cfg = self.task.config
        norm = raw.norm(dim=-1, keepdim=True)
        return cfg.t_scale * raw / (norm.clamp_min(1.0) if cfg.t_norm == "ball" else norm.clamp_min(1e-12))

    def step(self, theta, X, Y, state: dict, record: dict | None = None):
        """w_{t+1} for each problem (rows of θ); with ``record``, log each g_t's loss change
        L(g_t·v) − L(v) (v = w_t + f_t or w_t − η_t∇_t), ‖T_t‖_F and η_t."""
        cfg, task = self.task.config, self.task
        g = task.grads(theta if cfg.second_order else theta.detach(), X, Y)
        x = preprocess(g, cfg.preprocess_p) if cfg.preprocess else g
        if self.kind == "gd":
            return theta - self.eta * g, state
        if self.m1 is not None:
            out, state["m1"] = self.m1(x, state.get("m1"))
            v = theta + cfg.out_scale * out["f"]
        if self.m2 is None:
            return v, state
        out, state["m2"] = self.m2(x, state.get("m2"))
        if self.kind == "lr_tele":
            lr = self.eta * torch.exp(math.log(cfg.lr_range) * torch.tanh(out["lr"]))  # (n, 1)
            v = theta - lr * g
        c = self.coefficients(out["tele"])
        new = task.teleport(c, v, X)
        if record is not None:
            before, after = task.losses(v, X, Y), task.losses(new, X, Y)
            record.setdefault("loss_change", []).append(after - before)
            record.setdefault("relative_loss_change", []).append((after - before) / before)
            record.setdefault("t_norm", []).append(c.norm(dim=-1))
            if self.kind == "lr_tele":
                record.setdefault("lr", []).append(lr[:, 0])
        return new, state


def _detach(state: dict) -> dict:
    return {k: tuple(s.detach() for s in v) for k, v in state.items() if v is not None}


def meta_train(learner: Learner, trajectories: int, generator: torch.Generator, progress: bool = False) -> dict:
    """Alg. 1: run ``trajectories`` training trajectories (``batch`` side by side); after every
    ``unroll`` steps one Adam step on φ1, φ2 from the window's meta-loss, then truncate (detach)."""
    cfg, task = learner.task.config, learner.task
    groups = [{"params": list(m.parameters()), "lr": lr}
              for m, lr in ((learner.m1, cfg.meta_lr_update), (learner.m2, cfg.meta_lr_tele)) if m is not None]
    opt = torch.optim.Adam(groups)
    history, skipped, t0 = [], 0, time.perf_counter()
    sizes = [min(cfg.batch, trajectories - i) for i in range(0, trajectories, cfg.batch)]
    for n in track(sizes, f"meta-train {LABELS[learner.kind]}", enabled=progress):
        theta, X, Y = task.sample(n, generator)
        state: dict = {}
        for start in range(0, cfg.steps, cfg.unroll):
            terms = []
            for _ in range(start, min(start + cfg.unroll, cfg.steps)):
                theta, state = learner.step(theta, X, Y, state)
                loss = task.losses(theta, X, Y)
                terms.append(loss.log().mean() if cfg.meta_loss == "log" else loss.mean())
            meta = torch.stack(terms).mean()
            if not torch.isfinite(meta):
                skipped += 1  # a diverged trajectory: no update from it, go on with the next one
                break
            opt.zero_grad()
            meta.backward()
            opt.step()
            history.append(float(meta.detach()))
            theta, state = theta.detach(), _detach(state)
    return {"trajectories": trajectories, "meta_updates": len(history), "diverged_windows": skipped,
            "meta_loss": history, "seconds": time.perf_counter() - t0}


def evaluate(learner: Learner, problems, steps: int) -> dict:
    """Loss curves (n, steps+1) on ``problems`` and, for teleporting learners, each g_t's record."""
    theta, X, Y = problems
    task, record, state = learner.task, {}, {}
    curve = [task.losses(theta, X, Y)]
    with torch.no_grad():
        for _ in range(steps):
            theta, state = learner.step(theta, X, Y, state, record)
            curve.append(task.losses(theta, X, Y))
    return {"losses": torch.stack(curve, dim=1), **{k: torch.stack(v, dim=1) for k, v in record.items()}}


def largest_stable_lr(task: Task, problems, steps: int, grid=LR_GRID) -> float:
    """The paper's GD baseline rule: the largest lr on ``grid`` for which GD stays finite and ends
    below its start on every problem (a run stops at its first non-finite iterate)."""
    theta0, X, Y = problems
    start = task.losses(theta0, X, Y)
    for lr in sorted(grid, reverse=True):
        theta = theta0
        for _ in range(steps):
            theta = theta - lr * task.grads(theta, X, Y)
            if not torch.isfinite(theta).all():
                break
        else:
            if (task.losses(theta, X, Y) < start).all():
                return lr
    raise NumericalError("GD diverges for every lr on the grid")


def _stats(x: torch.Tensor) -> dict:
    return {"mean": x.mean(0).tolist(), "std": x.std(0, unbiased=x.shape[0] > 1).tolist()}


def run_meta(config: MetaConfig, seed: int = 0, device: str | torch.device = "cpu", progress: bool = False) -> dict:
    """E13: meta-train the three learners, then compare them with GD on unseen test trajectories.

    Returns JSON-ready results: per-step mean/std test loss of each method, the loss at steps
    10/50/100, each applied g_t's loss change (≈ 0 for an exact action), the training history."""
    config.validate()
    train_dtype = getattr(torch, config.train_dtype)
    train_task, eval_task = Task(config, train_dtype, device), Task(config, torch.float64, device)
    test = eval_task.sample(config.test_trajectories, make_generator(seed, 1))
    if config.gd_lr is None:
        eta = largest_stable_lr(eval_task, eval_task.sample(config.lr_search_problems, make_generator(seed, 2)),
                                config.steps)
    else:
        eta = config.gd_lr
    counts = dict(config.trajectories)
    checkpoints = [t for t in (10, 50, 100) if t <= config.steps] or [config.steps]
    methods = {}
    for kind in KINDS:
        learner = Learner(kind, train_task, eta, seed=seed).to(device=device, dtype=train_dtype)
        train = meta_train(learner, counts[kind], make_generator(seed, 0), progress) if kind in counts else None
        learner.task = eval_task
        result = evaluate(learner.to(torch.float64), test, config.steps)
        losses = result.pop("losses")
        entry = {"label": LABELS[kind], "train": train, "loss": _stats(losses),
                 "loss_at": {str(t): {"mean": float(losses[:, t].mean()), "std": float(losses[:, t].std())}
                             for t in checkpoints}}
        if "loss_change" in result:
            entry["teleport"] = {
                "max_abs_loss_change": float(result["loss_change"].abs().max()),
                "max_relative_loss_change": float(result["relative_loss_change"].abs().max()),
                "mean_t_norm": float(result["t_norm"].mean()),
                "relative_loss_change_per_step": _stats(result["relative_loss_change"].abs()),
            }
        if "lr" in result:
            entry["learned_lr"] = _stats(result["lr"])
        methods[kind] = entry
    final = {k: m["loss_at"][str(checkpoints[-1])]["mean"] for k, m in methods.items()}
    return {"experiment": "E13 learning to teleport (P §5.2, D §5.5)", "seed": seed, "config": config.to_dict(),
            "paper_setup": PAPER, "gd_lr": {"used": eta, "searched": config.gd_lr is None, "paper": PAPER["gd_lr"]},
            "symmetry": eval_task.symmetry.describe(),
            "exactness": eval_task.symmetry.exactness(test[0][0], test[1][0]),
            "checkpoints": checkpoints, "methods": methods, "lowest_final_loss": min(final, key=final.get)}


def preset(name: str, **overrides) -> MetaConfig:
    if name not in PRESETS:
        raise InputError(f"unknown E13 preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
