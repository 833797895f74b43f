"""``symdisc dcs``: the lasso check, DCS on an architecture (JSON fields, exported model), one-line errors."""

import json

import pytest

from symdisc.cli.main import main
from symdisc.tensorio import load_tensors

MLP = ["mlp", "--dims", "6,12,3", "--act", "tanh", "--bias", "--steps", "150", "--n-train", "64"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lasso_check_reports_the_gap(capsys):
    code, out, _ = run(capsys, "dcs", "lasso-check", "--json")
    doc = json.loads(out)
    assert code == 0 and abs(doc["relative_objective_gap"]) < 1e-5 and all(doc["passed"].values())
    assert doc["masked_max_above"] < 1e-10 < 1e-3 < doc["masked_max_below"]


def test_architecture_run_exports_the_materialized_model(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = run(capsys, "dcs", *MLP, "--alpha", "0.02", "--out", str(out_dir), "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"target", "constraint", "symmetry", "plan", "result", "run_dir"} <= set(doc)
    r = doc["result"]
    assert set(r["blocks"]) == {"W1", "b1", "W2", "b2"}
    assert r["blocks"]["W1"]["decision"] == "sparse" and r["blocks"]["b1"]["decision"] == "free"
    assert r["materialized_loss_test"] == pytest.approx(r["loss_test"], rel=1e-6)  # entries < tol snapped to 0
    assert r["blocks"]["W1"]["zero_fraction"] > 0.2 and r["zero_fraction"] > 0.1  # α = 0.02 prunes
    saved = load_tensors(out_dir / "model.safetensors")
    assert set(saved) == {"W1", "b1", "W2", "b2"}
    zero = float((saved["W1"] == 0).double().mean())
    assert zero == pytest.approx(r["blocks"]["W1"]["zero_fraction"])
    assert json.loads((out_dir / "dcs_run.json").read_text())["result"]["loss_test"] == r["loss_test"]
    code, _, err = run(capsys, "dcs", *MLP, "--out", str(out_dir))
    assert code == 2 and "already holds a DCS run" in err


def test_lowrank_and_group_constraints(capsys):
    for kind, field in (("lowrank", "constrained_zero"), ("group", "constrained_zero")):
        code, out, _ = run(capsys, "dcs", *MLP, "--constraint", kind, "--alpha", "0.05", "--blocks", "W1",
                              "--steps", "400", "--json")
        r = json.loads(out)["result"]
        assert code == 0 and r["blocks"]["W1"]["kind"] == kind and r["blocks"]["W2"]["decision"] == "free"
        assert r["blocks"]["W1"][field] >= 1  # some singular values / rows are exactly pruned at α = 0.05
        assert r["materialized_loss_test"] == pytest.approx(r["loss_test"], rel=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["lasso-check", "--alpha", "-1"], "α must be a finite number ≥ 0"),
    ([*MLP, "--alpha", "-0.5"], "α must be a finite number ≥ 0"),
    ([*MLP, "--constraint", "dense"], "unknown constraint 'dense'"),
    ([*MLP, "--blocks", "W9"], "has no parameter W9"),
    ([*MLP, "--constraint", "lowrank", "--blocks", "b1"], "needs a matrix"),
    ([*MLP, "--tol", "2"], "--tol must be in (0, 1)"),
    ([*MLP, "--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    ([*MLP, "--lr", "0"], "finite lr > 0"),
    (["no-such-model"], "unknown architecture"),
    ([*MLP, "--constraint", "auto", "--symmetry", "/nonexistent"], "choose none, known or an existing artefact"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    code, out, err = run(capsys, "dcs", *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


def test_help_lists_the_constraints(capsys):
    code, out, _ = run(capsys, "dcs", "--help")
    assert code == 0 and "lowrank" in out and "lasso-check" in out
