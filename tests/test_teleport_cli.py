"""``symdisc teleport``: the acceptance fields, --plot/--out, and one-line errors with exit code 2."""

import json

import pytest

from symdisc.cli.main import main


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_booth_json_reports_the_ratio_and_the_loss_change(capsys):
    d = run_json(capsys, ["teleport", "booth", "--json"])
    assert d["grad_norm_sq_over_loss_before"] == pytest.approx(20.0)
    assert 35.99 < d["grad_norm_sq_over_loss_after"] <= 36.0 + 1e-9
    assert abs(d["loss_change"]) <= 1e-10
    t = d["training"]
    assert t["teleport"]["losses"][-1] < t["plain"]["losses"][-1]
    assert all(e["status"] in ("accepted", "corrected") for e in d["log"])


def test_regression_smoke_with_plot_and_out(capsys, tmp_path):
    plot, out = tmp_path / "curves.png", tmp_path / "result.json"
    d = run_json(capsys, ["teleport", "regression", "--smoke", "--optimizer", "adagrad", "--seeds", "2",
                          "--plot", str(plot), "--out", str(out), "--json"])
    assert plot.stat().st_size > 1000 and json.loads(out.read_text()) == d
    s = d["optimizers"]["adagrad"]["summary"]
    assert s["max_abs_loss_change"] <= 1e-9 and s["diverged_teleport"] == 0
    assert d["optimizers"]["adagrad"]["seeds"][0]["teleport"][0]["exactness"]["exact"] is True


@pytest.mark.parametrize("argv,fragment", [
    (["teleport", "nope"], "unknown teleport experiment"),
    (["teleport", "booth", "--symmetry", "."], "applies to regression"),
    (["teleport", "regression", "--symmetry", "/no/such/dir"], "no such artefact"),
    (["teleport", "regression", "--optimizer", "lbfgs"], "regression runs"),
    (["teleport", "regression", "--variant", "x"], "unknown variant"),
    (["teleport", "booth", "--seeds", "0"], "--seeds"),
    (["teleport", "booth", "--plot", "out.txt"], "expected a .png"),
    (["teleport", "booth", "--out", "/no/such/dir/r.json"], "does not exist"),
])
def test_bad_input_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]


def test_mismatched_artefact_is_refused(capsys):
    """A learned artefact of another architecture cannot drive the regression's teleport."""
    assert main(["teleport", "regression", "--smoke", "--symmetry", "zoo/gl3-linear-3-3-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "symdisc: error:" in err[0]


def test_digits_and_meta_smoke(capsys):
    d = run_json(capsys, ["teleport", "digits", "--smoke", "--optimizer", "sgd", "--json"])
    assert d["experiment"] == "digits" and set(d["summary"]["sgd"]) >= {"none", "grad_norm"}
    assert d["summary"]["sgd"]["grad_norm"]["teleport"]["max_abs_batch_loss_change"] <= 1e-5
    m = run_json(capsys, ["teleport", "meta", "--smoke", "--json"])
    assert m["experiment"] == "meta" and set(m["methods"]) == {"gd", "update", "lr_tele", "update_tele"}
    assert m["methods"]["update_tele"]["teleport"]["max_relative_loss_change"] <= 1e-10


def test_schedules_smoke_and_bad_optimizer(capsys):
    d = run_json(capsys, ["teleport", "schedules", "--smoke", "--json"])
    assert d["experiment"] == "schedules" and "none" in d["summary"]
    assert set(d["paired_log10_gap"]) == set(d["summary"]) - {"none"}
    assert main(["teleport", "schedules", "--smoke", "--optimizer", "adam"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SGD only" in err[0]
