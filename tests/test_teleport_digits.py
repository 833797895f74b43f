"""E12 on digits (experiments.teleport.digits): smoke runs of the protocol and of the e12_digits runner."""

import json
import math

import pytest
import torch

from experiments.cli import main
from experiments.teleport.digits import mlp, run_digits
from symdisc.errors import SymdiscError
from symdisc.symmetry import hidden_layers_gl
from symdisc.teleport import LossGuard

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def adagrad_smoke():
    torch.manual_seed(0)
    return run_digits(["adagrad"], seeds=[0], epochs=2, smoke=True, progress=False)


def test_run_digits_fields_and_arms(adagrad_smoke):
    r = adagrad_smoke
    assert {"setup", "summary", "runs"} <= set(r)
    assert [run["arm"] for run in r["runs"]] == ["none", "grad_norm", "adagrad"]  # AdaGrad gets its own metric
    for run in r["runs"]:
        assert set(run["curves"]) == {"train_loss", "test_loss", "train_acc", "test_acc", "train_grad_norm_sq"}
        assert all(len(v) == 3 for v in run["curves"].values())  # epoch 0 (θ₀) and 2 epochs
        assert len(run["epoch_seconds"]) == 2 and run["diverged_at"] is None
        assert run["curves"]["train_loss"][-1] < run["curves"]["train_loss"][0]
    assert r["setup"]["teleport"]["state_policy"] == "transform"
    assert r["setup"]["teleport"]["batch_size"] == 200 and r["setup"]["teleport"]["config"]["lr"] == 5e-2
    tele = r["summary"]["adagrad"]["grad_norm"]["teleport"]
    assert tele["fraction_of_epoch"] > 0 and tele["event_seconds_median"] > 0
    assert sum(tele["guard_statuses"].values()) > 0


def test_teleport_keeps_batch_loss_within_guard(adagrad_smoke):
    """The approximate action (batch 200 > width 16) is corrected back to each batch's level set."""
    guard = LossGuard()
    for run in adagrad_smoke["runs"][1:]:
        (event,) = run["teleport"]["events"]
        assert event["step"] == run["steps_per_epoch"]  # after the last step of epoch 1
        assert event["exact"] == [False] * event["batches"]
        for before, change in zip(event["batch_loss_before"], event["batch_loss_change"], strict=True):
            assert abs(change) <= guard.tolerance(before)
        assert event["statuses"]["corrected"] > 0  # the drift was real and was corrected


def test_arms_share_theta0_and_trajectory_until_teleport(adagrad_smoke):
    runs = adagrad_smoke["runs"]
    assert len({run["theta0_sha"] for run in runs}) == 1
    for run in runs[1:]:  # same θ₀, same batches: identical until the teleport after epoch 1
        assert run["curves"]["train_loss"][0] == runs[0]["curves"]["train_loss"][0]
    # the teleport moved θ: the full training loss after epoch 1 differs (the action is exact on the batch only)
    assert runs[1]["curves"]["train_loss"][1] != runs[0]["curves"]["train_loss"][1]


def test_any_symmetry_on_the_layout_is_accepted():
    """E.g. one layer's action only (a learned artefact on the same layout goes the same way)."""
    first = next(s for s in mlp().known_symmetries() if s.data_dependent and s.describe()["form"] == "pinv")
    r = run_digits(["sgd"], seeds=[0], epochs=1, symmetry=first, smoke=True, progress=False)
    assert r["setup"]["symmetry"]["name"] == first.name
    (event,) = r["runs"][1]["teleport"]["events"]
    assert sum(event["statuses"].values()) > 0 and r["runs"][1]["teleport_errors"] == []


def test_bad_symmetry_and_optimizer_are_clear_errors():
    other = hidden_layers_gl(mlp("64,8,10"), "pinv")
    with pytest.raises(SymdiscError, match="another parameter layout"):
        run_digits(["sgd"], seeds=[0], epochs=1, symmetry=other, smoke=True, progress=False)
    with pytest.raises(SymdiscError, match="unknown optimizer"):
        run_digits(["lbfgs"], seeds=[0], epochs=1, smoke=True, progress=False)


def test_baseline_only_runs_without_teleport():
    r = run_digits(["sgd"], seeds=[0], epochs=1, teleport=None, progress=False)
    assert [run["arm"] for run in r["runs"]] == ["none"] and r["runs"][0]["teleport"] is None


def test_runner_smoke_writes_valid_json(tmp_path):
    out = tmp_path / "e12.json"
    assert main(["run", "e12_digits", "--smoke", "--set", 'optimizers=["sgd", "momentum"]', "--set",
                 "state_policy=keep", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith("python -m experiments run e12_digits --smoke")
    setup = data["summary"]["setup"]
    assert setup["teleport"]["state_policy"] == "keep" and setup["epochs"] == 2 and setup["seeds"] == [0]
    assert set(data["summary"]["optimizers"]) == {"sgd", "momentum"}
    assert "substitute" in setup["experiment"]
    runs = data["results"][0]["runs"]
    assert all(math.isfinite(x) for run in runs for x in run["curves"]["train_loss"])
    assert len({run["theta0_sha"] for run in runs if run["optimizer"] == "sgd"}) == 1  # arms share θ₀
    assert out.with_suffix(".png").stat().st_size > 0
