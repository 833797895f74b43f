"""E12 and E5 on digits (substitutes for MNIST; ``experiments.teleport.digits``), and the check of their lrs.

* ``e12_digits`` (P §5.1, G.2): the 64-16-10-10 LeakyReLU MLP with SGD, momentum, AdaGrad, RMSProp, Adam,
  teleported once after the first epoch on 8 mini-batches of 200 (approximate action, guarded).
* ``e5_digits`` (D §4.6.1): 64-64-64-10, SGD and AdaGrad at lr 2e-3, teleported after the first epoch on 4
  mini-batches of 20 (exact action).
* ``e12_lr_check`` / ``e5_lr_check``: the baseline (no teleport) at the paper's lr and each smaller lr of
  ``LR_GRID``; summary: the largest lr stable in every seed.

Config: ``dims``, ``optimizers`` (names), ``lrs`` ({name: lr} overrides), ``epochs``, ``batch_size``,
``teleport_epochs``, ``teleport_batches``, ``teleport_batch_size``, ``teleport_steps``, ``teleport_lr``,
``monotone``, ``max_step``, ``state_policy``, ``adagrad_arm``, ``symmetry`` (known | artefact dir), ``device``;
the lr checks: ``dims``, ``optimizers``, ``epochs``.
Each seed's runs start from θ₀ and batch order of that seed only (``digits.train_one``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from experiments.registry import ROOT, Runner
from experiments.teleport.digits import E12_OPTIMIZERS, OptimizerSpec, TeleportPlan, mlp, run_digits, summarize
from experiments.teleport.digits_figure import figure, lr_check_figure
from symdisc.errors import InputError
from symdisc.teleport.routine import TeleportConfig

LR_GRID = (5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3)


@dataclass(frozen=True)
class Preset:
    title: str
    optimizers: dict[str, OptimizerSpec]
    paper_lrs: dict[str, float | None]
    defaults: dict


def _defaults(dims: str, epochs: int, optimizers, plan: TeleportPlan, adagrad_arm: bool) -> dict:
    return {"dims": dims, "optimizers": list(optimizers), "lrs": {}, "epochs": epochs, "batch_size": 20,
            "teleport_epochs": list(plan.epochs), "teleport_batches": plan.batches,
            "teleport_batch_size": plan.batch_size, "teleport_steps": plan.config.steps,
            "teleport_lr": plan.config.lr, "monotone": plan.config.monotone, "max_step": None,
            "state_policy": "keep", "adagrad_arm": adagrad_arm, "symmetry": "known", "device": "cpu"}


E5_OPTIMIZERS = {"sgd": OptimizerSpec("SGD", 2e-3), "adagrad": OptimizerSpec("Adagrad", 2e-3)}
PRESETS = {
    # P §5.1 / G.2, D §5.4.2.  Momentum (0.9), RMSProp and Adam at the paper's 5e-2 diverge on digits
    # (e12_lr_check: NaN, or a training loss above the initial one, in 3–4 of 5 seeds): 2e-2, the largest of
    # LR_GRID that does not (docs/teleport_digits.md).
    "e12": Preset("E12 (substitute: scikit-learn digits for MNIST, 64-16-10-10 for 784-16-10-10)", E12_OPTIMIZERS,
                  {"adagrad": 1e-4, "momentum": 5e-2, "rmsprop": 5e-2, "adam": 5e-2},
                  _defaults("64,16,10,10", 100, E12_OPTIMIZERS, TeleportPlan(), True)),
    # D §4.6.1 (Ch. 4 MNIST): hidden [512, 512] → [64, 64]; lr 2e-3 (AdaGrad's not restated: the same);
    # teleport lr 1e-3 right after epoch 1 on 4 mini-batches of 20 (≤ width 64: the action is exact).
    "e5": Preset("E5 (substitute: scikit-learn digits for MNIST, 64-64-64-10 for 784-512-512-10)", E5_OPTIMIZERS,
                 {"sgd": 2e-3, "adagrad": None},
                 _defaults("64,64,64,10", 80, E5_OPTIMIZERS,
                           TeleportPlan(batches=4, batch_size=20, config=TeleportConfig(steps=10, lr=1e-3,
                                                                                        monotone=False)), False)),
}


def specs(preset: Preset, config: dict) -> dict[str, OptimizerSpec]:
    """The chosen optimizers of the preset with the lr overrides of ``config["lrs"]``."""
    lrs = config.get("lrs", {})
    unknown = [n for n in [*config["optimizers"], *lrs] if n not in preset.optimizers]
    if unknown:
        raise InputError(f"optimizers and lrs take names from {', '.join(preset.optimizers)}; got {unknown[0]!r}")
    return {n: replace(preset.optimizers[n], lr=lrs.get(n, preset.optimizers[n].lr))
            for n in config["optimizers"]}


def plan(config: dict) -> TeleportPlan:
    return TeleportPlan(epochs=tuple(config["teleport_epochs"]), batches=config["teleport_batches"],
                        batch_size=config["teleport_batch_size"], state_policy=config["state_policy"],
                        config=TeleportConfig(steps=config["teleport_steps"], lr=config["teleport_lr"],
                                              monotone=config["monotone"], max_step=config["max_step"]))


def _symmetry(config: dict):
    if config["symmetry"] == "known":
        return None
    from symdisc.discovery.artefact import load

    return load(ROOT / config["symmetry"], arch=mlp(config["dims"]))


def digits_runner(key: str) -> Runner:
    preset = PRESETS[key]

    def run(config: dict, seed: int) -> dict:
        """One seed: every optimizer in every arm (none, grad_norm, AdaGrad's adagrad) and the setup."""
        r = run_digits(specs(preset, config), seeds=[seed], epochs=config["epochs"], teleport=plan(config),
                       symmetry=_symmetry(config), device=config["device"], dims=config["dims"],
                       batch_size=config["batch_size"], adagrad_arm=config["adagrad_arm"])
        return {"seed": seed, "setup": r["setup"], "runs": r["runs"]}

    def summarize_seeds(results: list[dict], config: dict) -> dict:
        """Mean ± std over seeds of every curve per (optimizer, arm), teleport cost and guard statuses."""
        setup = {**results[0]["setup"], "experiment": preset.title, "seeds": [r["seed"] for r in results],
                 "lr_decisions": {n: {"paper": preset.paper_lrs.get(n), "used": s.lr}
                                  for n, s in specs(preset, config).items()}}
        setup.pop("smoke")
        return {"setup": setup, "optimizers": summarize([run for r in results for run in r["runs"]])}

    return Runner(f"{key}_digits", preset.title, run, figure, preset.defaults,
                  {"epochs": 2, "teleport_batches": 2, "teleport_steps": 3}, summarize_seeds, default_seeds=5,
                  digits=6)


def unstable(run: dict) -> bool:
    """Diverged: a non-finite training loss, or one above its value at θ₀, at some epoch's end."""
    losses = run["curves"]["train_loss"]
    return run["diverged_at"] is not None or max(losses[1:]) > losses[0]


def lr_check_runner(key: str) -> Runner:
    preset = PRESETS[key]

    def candidates(name: str) -> list[float]:
        start = preset.paper_lrs.get(name) or preset.optimizers[name].lr
        return [start] + [x for x in LR_GRID if x < start]

    def run(config: dict, seed: int) -> dict:
        """One seed: the baseline of each optimizer at its paper lr and every smaller lr of LR_GRID."""
        out = {}
        for name, spec in specs(preset, config).items():
            rows = []
            for lr in candidates(name):
                (r,) = run_digits({name: replace(spec, lr=lr)}, seeds=[seed], epochs=config["epochs"], teleport=None,
                                  progress=False, dims=config["dims"])["runs"]
                losses = r["curves"]["train_loss"]
                rows.append({"lr": lr, "unstable": unstable(r), "diverged_at": r["diverged_at"],
                             "max_train_loss_over_initial": max(losses) / losses[0], "final_train_loss": losses[-1],
                             "final_test_acc": r["curves"]["test_acc"][-1]})
            out[name] = rows
        return {"seed": seed, "optimizers": out}

    def summarize_seeds(results: list[dict], config: dict) -> dict:
        """Per optimizer, the lrs from the paper's down to the first stable in every seed (the largest)."""
        out = {}
        for name in config["optimizers"]:
            tried = []
            for i, lr in enumerate(candidates(name)):
                rows = [r["optimizers"][name][i] for r in results]
                tried.append({"lr": lr, "unstable_seeds": sum(x["unstable"] for x in rows),
                              **{k: [x[k] for x in rows] for k in ("diverged_at", "max_train_loss_over_initial",
                                                                   "final_train_loss", "final_test_acc")}})
                if not tried[-1]["unstable_seeds"]:
                    break
            out[name] = {"largest_stable_lr": None if tried[-1]["unstable_seeds"] else tried[-1]["lr"], "tried": tried}
        return {"criterion": unstable.__doc__, "epochs": config["epochs"], "seeds": len(results), "results": out}

    defaults = {k: preset.defaults[k] for k in ("dims", "optimizers", "epochs")}
    return Runner(f"{key}_lr_check", f"the lrs of {key.upper()}: the largest of the paper's and LR_GRID's stable "
                  "without teleport in every seed", run, lr_check_figure, defaults,
                  {"epochs": 1, "optimizers": ["adagrad"]}, summarize_seeds, default_seeds=5, digits=6)


RUNNERS = [digits_runner("e12"), digits_runner("e5"), lr_check_runner("e12"), lr_check_runner("e5")]
