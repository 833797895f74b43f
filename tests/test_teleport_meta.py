"""Learning to teleport (E13): exactness of the applied g_t, meta-training progress, the e13_meta smoke run."""

import json

import pytest
import torch

from experiments.cli import main
from experiments.teleport.meta import Learner, Task, evaluate, meta_train, preset
from symdisc import make_generator


@pytest.mark.parametrize("form, parameterisation, exact", [
    ("sigma_inverse", "exp", True), ("pinv", "exp", True), ("sigma_inverse", "first_order", False)])
def test_applied_group_elements_keep_the_loss(form, parameterisation, exact):
    """Every g_t = exp(T_t), ‖T_t‖_F = τ, that LSTM(update,tele) applies keeps L to 1e-10 (relative, float64)
    for both exact actions (square invertible X); the first-order θ + ξ_T(θ) drifts by O(τ²)."""
    config = preset("smoke", hidden=8, steps=4, form=form, parameterisation=parameterisation, t_norm="sphere",
                    t_scale=0.1)
    task = Task(config, torch.float64)
    torch.manual_seed(0)
    learner = Learner("update_tele", task, eta=3e-4).double()
    problems = task.sample(2, make_generator(0, 1))
    out = evaluate(learner, problems, config.steps)
    assert torch.allclose(out["t_norm"], torch.full_like(out["t_norm"], 0.1))  # g_t ≠ I at every step
    drift = out["relative_loss_change"].abs().max()
    assert (drift < 1e-10) if exact else (drift > 1e-6)
    assert torch.isfinite(out["losses"]).all()


def test_meta_training_lowers_the_meta_loss():
    """A few seeded meta-updates of LSTM(update) lower the meta-objective (mean log loss over the
    trajectory) on held-out problems."""
    config = preset("smoke", hidden=16, steps=10, unroll=5, meta_lr_update=1e-2)
    task = Task(config, torch.float64)
    torch.manual_seed(0)
    learner = Learner("update", task, eta=3e-4).double()
    held_out = task.sample(4, make_generator(0, 1))
    objective = lambda: float(evaluate(learner, held_out, config.steps)["losses"][:, 1:].log().mean())
    before = objective()
    history = meta_train(learner, 4, make_generator(0, 0))
    after = objective()
    assert history["meta_updates"] == 8 and history["diverged_windows"] == 0
    assert after < before - 1.0, (before, after)  # ≈ 13.1 → 9.4 (seeds 0–3: drops of 3.6 to 4.7)


def test_runner_smoke_writes_valid_json(tmp_path):
    out = tmp_path / "e13.json"
    assert main(["run", "e13_meta", "--smoke", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    result = document["results"][0]
    assert out.with_suffix(".png").stat().st_size > 0
    assert document["command"] == f"python -m experiments run e13_meta --smoke --out {out}"
    steps = result["config"]["steps"]
    assert set(result["methods"]) == {"gd", "update", "lr_tele", "update_tele"}
    for method in result["methods"].values():
        assert len(method["loss"]["mean"]) == len(method["loss"]["std"]) == steps + 1
    for kind in ("lr_tele", "update_tele"):
        assert result["methods"][kind]["teleport"]["max_relative_loss_change"] < 1e-9
    assert result["exactness"]["exact"] and result["exactness"]["group_axioms"]
    assert document["summary"]["lowest_final_loss"] in result["methods"]
