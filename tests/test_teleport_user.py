"""``symdisc teleport SPEC`` on a user's own module and on zoo presets: both arms reported, bad input in one line."""

import json
import textwrap

import pytest

from symdisc.cli.main import main

MY_MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    from symdisc.symmetry import linear_pair_gl


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

        def forward(self, x):
            return self.body(x)


    def sample_batch(batch, generator):
        x = torch.randn(batch, 4, generator=generator)
        return x, x[:, :3].sin()


    def make_net():
        symmetries = lambda arch: [linear_pair_gl(arch.layout, "body.0.weight", "body.2.weight", "body.0.bias",
                                                  algebra="diag")]
        return Net(), sample_batch, "mse", symmetries


    def make_bare():
        return Net(), sample_batch, "mse"


    def make_smooth():
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)), sample_batch, "mse"
    """
)
FAST = ["--steps", "12", "--train-size", "64", "--batch-size", "16", "--teleport-steps", "3"]


@pytest.fixture
def my_model(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(MY_MODEL)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_module_trained_with_and_without_teleports(capsys, my_model, tmp_path):
    code, out, err = run(capsys, "teleport", f"{my_model}:make_net", "--symmetry", "known", "--json", *FAST,
                         "--teleport-at", "2,6", "--plot", str(tmp_path / "curves.png"))
    assert code == 0, err
    doc = json.loads(out)
    plain, tele = doc["plain"], doc["teleport"]
    assert plain["step"] == tele["step"] == list(range(13))
    assert plain["loss"][0] == tele["loss"][0]  # the same θ₀ in both arms
    assert plain["loss"][:3] == tele["loss"][:3]  # and the same batches until the first teleport
    assert [e["step"] for e in tele["teleports"]] == [2, 6] and "teleports" not in plain
    for e in tele["teleports"]:  # an exact symmetry: the loss is kept, ‖∇L‖² does not decrease
        assert abs(e["loss_change"]) <= 1e-10 * e["loss_before"] and e["objective_after"] >= e["objective_before"]
    assert doc["symmetry"]["name"].startswith("DIAG(h=16)") and doc["summary"]["teleports"] == 2
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_user_module_without_known_symmetries_says_what_to_do(capsys, my_model):
    """tanh has no continuous symmetry to detect (its sign flips are discrete): refused in one line."""
    code, out, err = run(capsys, "teleport", f"{my_model}:make_smooth", *FAST)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no known continuous symmetry (none declared or detected" in err and "artefact" in err


def test_user_module_teleports_along_its_detected_symmetries(capsys, my_model):
    """Nothing declared: the ReLU rescalings are detected and teleports move along them."""
    code, out, err = run(capsys, "teleport", f"{my_model}:make_bare", "--json", *FAST)
    assert code == 0, err
    assert json.loads(out)["symmetry"]["num_generators"] == 16


def test_zoo_preset_data_dependent_symmetry(capsys):
    code, out, err = run(capsys, "teleport", "mlp", "--act", "leakyrelu", "--dims", "4,8,8,2", "--symmetry",
                         "known-data", "--teleport-batch-size", "8", "--json", *FAST)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["teleport_batch_size"] == 8 and doc["summary"]["teleports"] == 1
    assert doc["teleport"]["teleports"][0]["exactness"]["exact"] is True  # batch 8 ≤ widths 8


def test_learned_artefact_of_another_model_is_refused(capsys):
    code, _, err = run(capsys, "teleport", "mlp", "--act", "relu", "--dims", "3,4,2", "--symmetry",
                       "zoo/rescale-relu-3-3-1", *FAST)
    assert code == 2 and "architecture mismatch" in err


@pytest.mark.parametrize("argv,fragment", [
    (["--optimizer", "lbfgs"], "unknown optimizer"),
    (["--teleport-at", "3", "--teleport-every", "2"], "not both"),
    (["--teleport-at", "x"], "malformed --teleport-at"),
    (["--symmetry", "no/such/dir"], "--symmetry"),
    (["--dtype", "float16"], "--dtype"),
    (["--plot", "curves.txt"], "expected a .png"),
    (["--batch-size", "100", "--train-size", "50"], "exceeds"),
    (["--metric", "euclid"], "unknown teleport metric"),
])
def test_bad_input_one_line(capsys, argv, fragment):
    code, out, err = run(capsys, "teleport", "mlp", "--act", "relu", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err


def test_existing_result_is_never_overwritten(capsys, tmp_path):
    target = tmp_path / "run.json"
    target.write_text("{}")
    code, _, err = run(capsys, "teleport", "mlp", "--act", "relu", "--out", str(target), *FAST)
    assert code == 2 and "never overwritten" in err and target.read_text() == "{}"
