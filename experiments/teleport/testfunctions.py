"""E1 (Rosenbrock), E2 (Booth) and the ellipse (teleport.md §4.1; D §4.6.1, app. C) on the library's test
functions L = ‖φ(x)‖² with their SO(2) symmetries.  Deterministic: the seed is not used.

* ``booth`` (E2, P5): one teleport at (5, −5): ‖∇L‖²/L before and after (bound 36), the loss change;
  then the paper's run, GD lr 0.08 for 10 steps with the teleport before step 5, against plain GD.
* ``ellipse``: the same on x₁² + a x₂² (bound 4·max(1, a)).
* ``rosenbrock`` (E1): GD lr 1e-3 for 1000 steps from (−1, −1), teleport every 100 steps (10 ascent
  steps, lr 0.1): the final distance to (1, 1) with and without.
"""

from __future__ import annotations

import torch

from experiments.registry import Runner
from experiments.teleport.figures import panels_figure
from experiments.teleport.training import train_flat
from symdisc.teleport.routine import TeleportConfig, teleport
from symdisc.teleport.testfunctions import TestFunction, booth, ellipse, rosenbrock


def ratio_report(tf: TestFunction, config: TeleportConfig) -> dict:
    """One teleport from the start point: loss and ‖∇L‖²/L before and after, and the routine's log."""
    r = teleport(tf.symmetry, tf.x0(), tf.loss, config=config)
    return {"start": list(tf.start), "loss_before": r.loss_before, "loss_after": r.loss_after,
            "loss_change": r.loss_change, "grad_norm_sq_before": r.objective_before,
            "grad_norm_sq_after": r.objective_after,
            "grad_norm_sq_over_loss_before": r.objective_before / r.loss_before,
            "grad_norm_sq_over_loss_after": r.objective_after / r.loss_after, "log": r.log}


def compare(tf: TestFunction, optimizer: str, lr: float, steps: int, schedule, config: TeleportConfig) -> dict:
    """Plain and teleporting runs from the start point, with their final distance to the minimiser."""
    runs = {}
    for tele in (False, True):
        out = train_flat(tf.x0(), tf.loss, optimizer, lr, steps, tf.symmetry if tele else None, schedule, config)
        dist = float((out.pop("theta") - torch.tensor(tf.minimiser, dtype=torch.float64)).norm())
        runs["teleport" if tele else "plain"] = {**out, "distance_to_minimiser": dist}
    return runs


def _teleport_config(config: dict) -> TeleportConfig:
    return TeleportConfig(steps=config["teleport_steps"], lr=config["teleport_lr"])


def _one_teleport(tf: TestFunction, bound: float, config: dict) -> dict:
    """Booth / ellipse: the ratio report, then training with one teleport before ``teleport_before_step``."""
    tele = _teleport_config(config)
    training = compare(tf, config["optimizer"], config["lr"], config["steps"], {config["teleport_before_step"]}, tele)
    return {"experiment": tf.name.split("-")[0], "source": tf.source, "bound": bound, **ratio_report(tf, tele),
            "training": {k: config[k] for k in ("optimizer", "lr", "steps", "teleport_before_step")} | training}


def run_booth(config: dict, seed: int) -> dict:
    """E2 and P5 on Booth (teleport.md §4.1)."""
    return _one_teleport(booth(), 36.0, config)


def run_ellipse(config: dict, seed: int) -> dict:
    return {**_one_teleport(ellipse(config["a"]), 4 * max(1.0, config["a"]), config), "a": config["a"]}


def run_rosenbrock(config: dict, seed: int) -> dict:
    """E1: GD from (−1, −1), a teleport every ``teleport_every`` steps."""
    tf, every = rosenbrock(), config["teleport_every"]
    runs = compare(tf, config["optimizer"], config["lr"], config["steps"], lambda s: s % every == 0,
                   _teleport_config(config))
    return {"experiment": "rosenbrock", "source": tf.source, "optimizer": config["optimizer"], "lr": config["lr"],
            "steps": config["steps"], "teleport_every": every, "minimiser": list(tf.minimiser),
            "distance_plain": runs["plain"]["distance_to_minimiser"],
            "distance_teleport": runs["teleport"]["distance_to_minimiser"], "runs": runs}


def summarize(results: list[dict], config: dict) -> dict:
    """The scalar fields of the (deterministic) result and the final losses with and without teleport."""
    r = results[0]
    runs = r.get("training") or r["runs"]
    return {**{k: v for k, v in r.items() if isinstance(v, (int, float, str))},
            "final_loss_plain": runs["plain"]["losses"][-1], "final_loss_teleport": runs["teleport"]["losses"][-1]}


def figure(document: dict, path) -> None:
    """Loss and ‖∇L‖² against steps, plain vs teleport."""
    r = document["results"][0]
    runs = r.get("training") or r["runs"]
    marks = [runs["teleport_before_step"]] if "teleport_before_step" in runs else \
        [e["step"] for e in runs["teleport"]["teleports"]]
    panels = [(kind, {label: [runs[label][key]] for label in ("plain", "teleport")}, marks)
              for kind, key in (("loss", "losses"), ("‖∇L‖²", "grad_norm_sq"))]
    panels_figure(panels, f"teleport: {r['experiment']} ({r['source']})", path)


TRAINING = {"optimizer": "gd"}
RUNNERS = [
    Runner("booth", "E2 (D §4.6.1), P5: Booth, ‖∇L‖²/L 20 → 36 by one teleport; GD with and without it",
           run_booth, figure, {**TRAINING, "lr": 0.08, "steps": 10, "teleport_before_step": 5, "teleport_steps": 10,
                               "teleport_lr": 1e-3}, {}, summarize, stem="e1_e2_booth"),
    Runner("ellipse", "app. C: the ellipse x₁² + a x₂², ‖∇L‖²/L up to 4·max(1, a) by one teleport",
           run_ellipse, figure, {"a": 9.0, **TRAINING, "lr": 0.02, "steps": 20, "teleport_before_step": 5,
                                 "teleport_steps": 50, "teleport_lr": 1e-2}, {}, summarize, stem="e1_e2_ellipse"),
    Runner("rosenbrock", "E1 (D §4.6.1): Rosenbrock, GD with a teleport every 100 steps vs plain GD",
           run_rosenbrock, figure, {**TRAINING, "lr": 1e-3, "steps": 1000, "teleport_every": 100,
                                    "teleport_steps": 10, "teleport_lr": 0.1}, {"steps": 200}, summarize,
           stem="e1_e2_rosenbrock"),
]
