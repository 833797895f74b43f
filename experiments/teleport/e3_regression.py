"""E3, E10, E11 on the 3-layer regression (``experiments.teleport.regression``; teleport.md §4.1).

Each seed trains the same θ₀ without teleport and in every teleport arm, for each optimizer:

* ``e3_regression`` (E3): GD and AdaGrad; arms ``E3_ARMS``: the known action with the papers' coefficient
  ascent (symdisc, faithful) and the basis-invariant one (fields), the learned artefact
  zoo/teleport-regression-constrained-k96 (every field verified) with both ascents, and the old unverified
  zoo/teleport-regression-k8.  Summary: per arm and optimizer the median over seeds of
  steps(plain)/steps(teleport) to reach L < 10, 5, 2.
* ``e10_momentum`` (E10): SGD + momentum 0.9; the optimizer state at the teleport transformed, kept or reset.
* ``e11_adagrad`` (E11): AdaGrad teleported to maximise ‖∇L‖² or ‖∇L‖_A (P G.1).

Config: ``optimizers``, ``arms`` ({name: {symmetry: known | artefact dir, variant: symdisc | faithful | fields,
state_policy, objective, fields: verified | all, lr, max_step, correct}}), ``steps``, ``teleport_after_step``,
``targets``, ``seed_offset`` (seed s runs the problem of seed s + offset: held-out seeds for choosing
hyper-parameters).  The k8 arm's artefact verified none of its fields; the arm asks for all of them on
purpose (the negative result of docs/teleport.md), and a warning says so.
"""

from __future__ import annotations

from pathlib import Path

from experiments.registry import Runner
from experiments.teleport.figures import arms_figure, panels_figure
from experiments.teleport.regression import (
    REGRESSION_LR,
    arm_config,
    arm_specs,
    regression_seed,
    speedups,
)

SOURCE = "D §4.6.1 (E3)"


def run(config: dict, seed: int) -> dict:
    """One seed: {optimizer: {"plain", "arms": {arm: curves, teleports, steps_to}}}."""
    arms = arm_specs(config["arms"])
    for name in config["optimizers"]:  # fail on a bad optimizer / variant before any training
        if name in REGRESSION_LR:
            for arm in arms.values():
                arm_config(name, arm)
    problem = seed + config["seed_offset"]
    return {"seed": seed, "problem_seed": problem, "optimizers": {
        name: regression_seed(problem, name, config["arms"], config["steps"], config["teleport_after_step"],
                              config["targets"]) for name in config["optimizers"]}}


def summarize(results: list[dict], config: dict) -> dict:
    """Per arm and optimizer: lr, the teleport's configuration and ``regression.speedups`` over the seeds."""
    out = {}
    for arm, spec in arm_specs(config["arms"]).items():
        out[arm] = {}
        for name in config["optimizers"]:
            pairs = [(r["optimizers"][name]["plain"], r["optimizers"][name]["arms"][arm]) for r in results]
            out[arm][name] = {"lr": REGRESSION_LR[name],
                              "teleport_config": arm_config(name, spec).to_dict(),
                              **speedups(pairs, config["targets"])}
    return out


def _curves(document: dict, name: str, arm: str, key: str) -> dict[str, list]:
    runs = [r["optimizers"][name] for r in document["results"]]
    return {"plain": [r["plain"][key] for r in runs], "teleport": [r["arms"][arm][key] for r in runs]}


def comparison_figures(document: dict, path: Path) -> None:
    """Per arm, ``<stem>_<arm>.png``: loss and ‖∇L‖² against steps per optimizer, plain vs teleport
    (median and min–max over seeds)."""
    config, path = document["config"], Path(path)
    for arm in config["arms"]:
        panels = [(f"{name}: {kind}", _curves(document, name, arm, key), [config["teleport_after_step"]])
                  for name in config["optimizers"] for kind, key in (("loss", "losses"), ("‖∇L‖²", "grad_norm_sq"))]
        panels_figure(panels, f"teleport: regression, {arm} ({SOURCE})", path.with_name(f"{path.stem}_{arm}.png"))


def arms_figure_of(title: str):
    def figure(document: dict, path: Path) -> None:
        """Median loss over seeds without teleport and in each arm (the first optimizer)."""
        name = document["config"]["optimizers"][0]
        curves = {arm: _curves(document, name, arm, "losses") for arm in document["config"]["arms"]}
        arms_figure(next(iter(curves.values()))["plain"], {arm: c["teleport"] for arm, c in curves.items()}, title,
                    path)
    return figure


def _runner(name: str, doc: str, figure, optimizers: list[str], arms: dict, smoke: dict | None = None) -> Runner:
    defaults = {"optimizers": optimizers, "arms": arms, "steps": 300, "teleport_after_step": 5,
                "targets": [10.0, 5.0, 2.0], "seed_offset": 0}
    return Runner(name, doc, run, figure, defaults, smoke or {"steps": 60}, summarize, default_seeds=5, digits=7)


LEARNED = "zoo/teleport-regression-constrained-k96"  # discovery_teleport-regression-constrained-k96
E3_ARMS = {"known-symdisc": {}, "known-faithful": {"variant": "faithful"}, "known-fields": {"variant": "fields"},
           "learned-fields": {"symmetry": LEARNED, "variant": "fields"},
           "learned-symdisc": {"symmetry": LEARNED},
           "learned-k8-symdisc": {"symmetry": "zoo/teleport-regression-k8", "fields": "all"}}


RUNNERS = [
    _runner("e3_regression", "E3 (D §4.6.1): 5-6-7-8 regression, steps to L < 10/5/2 with and without one teleport",
            comparison_figures, ["gd", "adagrad"],
            E3_ARMS, smoke={"steps": 60, "arms": {k: E3_ARMS[k] for k in ("known-symdisc", "learned-fields")}}),
    _runner("e10_momentum", "E10: SGD + momentum 0.9 on E3, the momentum at the teleport transformed, kept or reset",
            arms_figure_of("E10: SGD + momentum 0.9, lr 1e-5 — momentum at the teleport"), ["momentum"],
            {p: {"state_policy": p} for p in ("transform", "keep", "reset")}),
    _runner("e11_adagrad", "E11 (P G.1): AdaGrad on E3 teleported with ‖∇L‖² vs ‖∇L‖_A",
            arms_figure_of("E11: AdaGrad lr 0.1 — teleport objective ‖∇L‖² vs ‖∇L‖_A"), ["adagrad"],
            {o: {"objective": o} for o in ("grad_norm", "adagrad")}),
]
