"""Numerical faults: NaN in a model's parameters or its data, a group element too large for a learned action's
flow, training that diverges — each detected, reported in one line with what to change, the state preserved."""

import json
import textwrap
from pathlib import Path

import pytest
import torch

import symdisc
from symdisc.cli.main import main
from symdisc.errors import NumericalError

ROOT = Path(__file__).resolve().parents[2]
MODULES = textwrap.dedent('''
    import torch
    from torch import nn

    def _sample(nan_x):
        def sample(b, g):
            X = torch.randn(b, 3, generator=g)
            if nan_x:
                X[0, 0] = float("nan")
            return X, torch.randn(b, 1, generator=g)
        return sample

    def nan_params():
        net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        with torch.no_grad():
            net[0].weight[0, 0] = float("nan")
        return net, _sample(False), "mse"

    def nan_data():
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)), _sample(True), "mse"
''')


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "faulty.py"
    path.write_text(MODULES)
    return path


@pytest.mark.parametrize("func,fragment", [("nan_params", "loss is not finite"), ("nan_data", "contain NaN")])
@pytest.mark.parametrize("argv", [["census", "--batch-sizes", "8"], ["known"],
                                  ["teleport", "--symmetry", "known", "--steps", "5"], ["rr", "--budget", "5"],
                                  ["dcs", "--steps", "5"]], ids=lambda a: a[0])
def test_nan_in_parameters_or_data_is_one_line(models, tmp_path, capsys, monkeypatch, func, fragment, argv):
    monkeypatch.chdir(tmp_path)
    code = main([argv[0], f"{models}:{func}", *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_group_element_too_large_for_a_learned_flow_is_a_numerical_error():
    sym = symdisc.load(ROOT / "zoo" / "catalogue" / "tiny-transformer")
    theta = sym.arch.sample_params(symdisc.make_generator(0))
    X, _ = sym.arch.sample_data(8, symdisc.make_generator(1))
    assert torch.isfinite(sym.act(torch.full((sym.num_generators,), 1.0), theta, X)).all()
    with pytest.raises(NumericalError, match="too large for this symmetry"):
        sym.act(torch.full((sym.num_generators,), 1e3), theta, X)


def test_a_teleport_step_too_large_is_refused_and_training_goes_on(tmp_path, capsys):
    """--teleport-lr 1e6 along the learned tiny-transformer symmetry: the step is refused (the loss unchanged),
    the event is recorded, training finishes."""
    code = main(["teleport", "tiny-transformer", "--symmetry", str(ROOT / "zoo" / "catalogue" / "tiny-transformer"),
                 "--teleport-lr", "1e6", "--max-step", "0", "--metric", "coefficients", "--steps", "10", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    event = doc["teleport"]["teleports"][0]
    assert code == 0 and event["steps"]["refused"] >= 1 and event["steps"]["accepted"] == 0
    assert "smaller" in event["refused"]  # why, and what to change
    assert doc["summary"]["max_abs_loss_change"] == 0.0 and doc["teleport"]["final_loss"] is not None


def test_diverging_training_is_reported_with_what_to_change(capsys):
    code = main(["teleport", "mlp", "--act", "relu", "--dims", "3,3,1", "--symmetry", "known", "--lr", "1e4",
                 "--steps", "20", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0 and doc["plain"]["diverged_at"] is not None
    assert "diverged at step" in err and "lower the learning rate" in err


def test_a_spectral_start_that_does_not_converge_still_starts_and_says_so(monkeypatch):
    """Discovery's matrix-free spectral start stopped after one LOBPCG step: the run starts from the unconverged
    Ritz vectors (a start, not a result: training and verification decide), and records converged = false."""
    import symdisc.discovery.trainer as trainer_module
    from symdisc import zoo
    from symdisc.discovery.config import preset_config
    from symdisc.discovery.spectral import MAX_P

    arch = zoo.get("mlp", act="relu", dims="5,7,5")
    assert arch.num_params > MAX_P  # the operator path, whose LOBPCG has an iteration budget
    monkeypatch.setattr(trainer_module, "TRAINER_MAXITER", 1)
    trainer = trainer_module.Trainer(arch, preset_config("unconstrained", arch.name, k=3, steps=10))
    assert trainer.spectral["method"] == "operator" and trainer.spectral["converged"] is False
    assert torch.isfinite(trainer.symmetry.gens.H).all()


def test_a_run_that_diverges_only_with_teleports_says_so(capsys):
    """Teleports every 20 steps climb the GL orbit (‖∇L‖² up each time) until SGD's step is too large there: the
    warning names the teleports, not only the learning rate."""
    code = main(["teleport", "mlp", "--steps", "300", "--lr", "0.01", "--teleport-every", "20", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0 and doc["plain"]["diverged_at"] is None and doc["teleport"]["diverged_at"] is not None
    assert "while the run without did not" in err and "teleport less often" in err and err.count("\n") == 1
