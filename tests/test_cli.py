"""The symdisc CLI: JSON fields, help everywhere, one-line errors with non-zero exit, atomic files."""

import json
import subprocess
import sys
import textwrap

import pytest

from symdisc.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_census_json_fields(capsys):
    code, out, err = run(capsys, "census", "mlp", "--act", "linear", "--dims", "3,3,1", "--batch-sizes", "64",
                         "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"architecture", "num_params", "known_orbit_dim", "rows"} <= set(doc)
    assert doc["architecture"] == "mlp" and doc["num_params"] == 12 and doc["known_orbit_dim"] == 9
    row = doc["rows"][0]
    assert {"batch_size", "output_null_dim", "loss_null_dim"} <= set(row)
    assert row["batch_size"] == 64 and row["output_null_dim"] == 9


@pytest.mark.parametrize("act,dim", [("relu", 3), ("tanh", 0), ("sigmoid", 0)])
def test_census_activations(capsys, act, dim):
    code, out, _ = run(capsys, "census", "mlp", "--act", act, "--dims", "3,3,1", "--batch-sizes", "64", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["output_null_dim"] == dim


def test_census_transformer_and_batch_one(capsys):
    _, out, _ = run(capsys, "census", "tiny-transformer", "--json")
    doc = json.loads(out)
    assert doc["rows"][0]["batch_size"] == 8
    assert doc["rows"][0]["output_null_dim"] == doc["known_orbit_dim"] == 16
    _, out, _ = run(capsys, "census", "mlp", "--act", "tanh", "--dims", "2,2,2,1", "--batch-sizes", "1",
                    "--level", "output", "--json")
    row = json.loads(out)["rows"][0]
    assert row["output_null_dim"] == 9 and row["loss_null_dim"] is None


def test_census_plot_and_table(capsys, tmp_path):
    fig = tmp_path / "census.png"
    code, out, _ = run(capsys, "census", "tanh-3layer", "--batch-sizes", "1,2,4", "--plot", str(fig))
    assert code == 0 and "output null dim" in out
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["census.png"]  # no temporary left behind


def test_zoo_list_and_show(capsys):
    code, out, _ = run(capsys, "zoo", "list", "--json")
    names = [a["name"] for a in json.loads(out)["architectures"]]
    assert code == 0 and {"mlp", "linear-scalar", "sigmoid-2layer", "tanh-3layer", "mlp-skip",
                          "tiny-transformer"} <= set(names)
    code, out, _ = run(capsys, "zoo", "show", "tiny-transformer", "--variant", "wo", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["num_params"] == 32 and len(doc["layout_hash"]) == 16
    assert {s["name"] for s in doc["known_symmetries"]} >= {"attention-GL(d_k)", "value-output-GL(d_v)"}
    code, out, _ = run(capsys, "zoo", "show", "sigmoid-2layer")
    assert code == 0 and "W1" in out


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["census", "resnet"], "unknown architecture"),
        (["census", "mlp", "--dims", "3,x,1"], "malformed layer widths"),
        (["census", "mlp", "--dims", "3"], "malformed layer widths"),
        (["census", "mlp", "--act", "swish"], "unknown activation"),
        (["census", "mlp", "--batch-sizes", "4,-1"], "malformed --batch-sizes"),
        (["census", "mlp", "--level", "hessian"], "unknown level"),
        (["census", "mlp", "--device", "tpu"], "device"),
        (["census", "mlp", "--plot", "out.txt"], "--plot"),
        (["census", "mlp", "--no-such-flag"], "No such option"),
        (["census"], "Missing argument"),
        (["zoo", "show", "tiny-transformer", "--dims", "2,2"], "takes no option"),
    ],
)
def test_bad_input_one_line(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("symdisc: error:") and fragment in err


def test_plot_into_missing_directory_fails_before_work(capsys, tmp_path):
    code, _, err = run(capsys, "census", "mlp", "--plot", str(tmp_path / "no" / "fig.png"))
    assert code == 2 and "does not exist" in err


USER_FILE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(7, 1)
        def forward(self, x):
            return self.fc(x)

    def sample(b, g):
        return torch.randn(b, 3, generator=g), torch.randn(b, 1, generator=g)

    def good():
        return nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False)), sample, "mse"

    def broken():
        return Broken(), sample, "mse"

    def nan_data():
        return nn.Linear(3, 1), (lambda b, g: (torch.full((b, 3), float("nan")), torch.zeros(b, 1))), "mse"
    """
)


def test_user_module_file(capsys, tmp_path):
    path = tmp_path / "user_models.py"
    path.write_text(USER_FILE)
    code, out, _ = run(capsys, "census", f"{path}:good", "--batch-sizes", "64", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["output_null_dim"] == 4  # ReLU rescaling, h = 4
    for func, fragment in [("broken", "forward/loss failed"), ("nan_data", "NaN"), ("missing", "defines no")]:
        code, _, err = run(capsys, "census", f"{path}:{func}")
        assert code == 2 and fragment in err and err.count("\n") == 1
    code, _, err = run(capsys, "census", f"{tmp_path / 'nope.py'}:good")
    assert code == 2 and "no such file" in err


@pytest.mark.parametrize("cmd", [[], ["zoo"], ["zoo", "list"], ["zoo", "show"], ["census"]])
def test_help_everywhere(capsys, cmd):
    code, out, err = run(capsys, *cmd, "--help")
    assert code == 0 and "Usage: symdisc" in out and err == ""


def test_installed_entry_point():
    proc = subprocess.run([sys.executable, "-m", "symdisc.cli.main", "census", "linear-scalar", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["num_params"] == 2 and doc["rows"][0]["batch_size"] == 1
    proc = subprocess.run([sys.executable, "-m", "symdisc.cli.main", "census", "nosuch"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
