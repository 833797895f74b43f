"""``symdisc rr``: JSON fields, the paper's problems and architectures, run directories (never overwritten,
resumed), one-line errors."""

import json

import pytest

from symdisc.cli.main import main

LINEAR = ["mlp", "--dims", "3,3,3", "--act", "linear", "--no-bias"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_toy2d_reaches_the_four_minima(capsys):
    code, out, _ = run(capsys, "rr", "toy2d", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"target", "symmetry", "config", "mis", "summary", "solutions", "problem", "run_dir"} <= set(doc)
    kinds = sorted(s["nearest_critical_point"]["kind"] for s in doc["solutions"])
    assert kinds == ["global", "global", "local", "local"]  # ±e₁ to the local minima, ±e₂ to the global ones
    assert {tuple(s["fingerprint"]) for s in doc["solutions"]} == {(0,), (1,)}


def test_compile_flag_reaches_the_hessian_operator(capsys, monkeypatch):
    """--compile asks every Hessian operator of the search for the compiled products (their agreement with eager
    products is tests/test_ridge.py's; the spy falls back to eager, so nothing is compiled here)."""
    import symdisc.ridge.hessian as hessian

    asked = []
    monkeypatch.setattr(hessian, "compiled_hvp", lambda loss: asked.append(loss))
    args = ["rr", *LINEAR, "--batch-size", "20", "--max-depth", "1", "--n-ridges", "2", "--json"]
    _, plain, _ = run(capsys, *args)
    assert asked == []
    code, comp, err = run(capsys, *args, "--compile")
    assert code == 0 and asked, err
    plain, comp = json.loads(plain), json.loads(comp)
    assert comp["config"]["compile_hvp"] is True and plain["config"]["compile_hvp"] is False
    assert [s["loss"] for s in comp["solutions"]] == [s["loss"] for s in plain["solutions"]]


def test_lever_reports_the_protocol(capsys):
    """Alg. 3 on the lever game through the CLI: the per-ridge table and the selected payoff; our signed
    variant selects the 0.6 lever (the paper's result), Alg. 3 as written a 0.8 lever (docs/ridge.md)."""
    code, out, _ = run(capsys, "rr", "lever", "--runs", "8", "--signed", "--json")
    zsc = json.loads(out)["problem"]["zsc"]
    assert code == 0 and zsc["selected_payoff"] == 0.6 and zsc["selected_cross_play"] > 0.59
    assert {"fingerprint", "sign", "eigenvalue", "self_play", "cross_play", "payoff"} <= set(zsc["ridges"][0])


def test_architecture_with_known_symmetry_rides_fewer_branches(capsys):
    base = ["rr", *LINEAR, "--batch-size", "20", "--init-scale", "0", "--max-depth", "1", "--n-ridges", "9",
            "--json"]
    _, plain, _ = run(capsys, *base)
    _, aware, _ = run(capsys, *base, "--symmetry", "known")
    plain, aware = json.loads(plain), json.loads(aware)
    assert aware["symmetry"] == "GL(h1)" and plain["symmetry"] is None
    assert aware["summary"]["rides"] * 6 == plain["summary"]["rides"] == 18


def test_run_directory_is_never_overwritten_and_resumes(capsys, tmp_path):
    out = tmp_path / "run"
    args = ["rr", *LINEAR, "--batch-size", "20", "--init-scale", "0", "--max-depth", "2", "--n-ridges", "2",
            "--out", str(out), "--json"]
    code, first, _ = run(capsys, *args, "--budget", "10")
    assert code == 0 and json.loads(first)["summary"]["stopped"] == "budget"
    code, _, err = run(capsys, *args, "--budget", "10")
    assert code == 2 and "already holds an RR run" in err and err.count("\n") == 1
    code, resumed, _ = run(capsys, *args, "--budget", "10000", "--resume")
    doc = json.loads(resumed)
    assert code == 0 and doc["summary"]["stopped"] == "archive_empty"
    assert doc["summary"]["rides"] > json.loads(first)["summary"]["rides"]


@pytest.mark.parametrize("argv,message", [
    (["rr", "lever", "--symmetry", "bogus"], "--symmetry 'bogus'"),
    (["rr", "toy2d", "--symmetry", "known"], "no continuous symmetry"),
    (["rr", "toy2d", "--update", "newton"], "unknown ridge update"),
    (["rr", "toy2d", "--search", "astar"], "unknown archive search"),
    (["rr", "toy2d", "--resume"], "--resume and --restart need --out"),
    (["rr", "nonesuch"], "nonesuch"),
    (["rr", "mlp", "--dims", "3,4,2", "--act", "relu", "--init-scale", "0"], "not twice differentiable"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1, err
