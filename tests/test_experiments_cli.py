"""``python -m experiments`` (experiments.cli): list, run with the acceptance fields of E2 and E3, no silent
overwrite, one-line errors with symdisc's exit codes, the README tables."""

import json

import pytest

from experiments.cli import main


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("experiments: error:"), err
    return err[0]


def test_list_json(capsys):
    rows = run_json(capsys, ["list", "--json"])
    by_name = {r["name"]: r for r in rows}
    assert by_name["e3_regression"]["result"] == "experiments/results/teleport/e3_regression.json"
    assert by_name["e3_regression"]["default_seeds"] == 5 and by_name["booth"]["smoke"] == {}
    assert by_name["census_presets"]["result"] == "experiments/results/census_presets.json"
    assert by_name["discovery_rescale-relu-3-3-1"]["defaults"]["steps"] == 800


def test_booth_smoke_json_reports_the_ratio_and_the_loss_change(capsys, tmp_path):
    d = run_json(capsys, ["run", "booth", "--smoke", "--json", "--out", str(tmp_path / "booth.json")])
    s = d["summary"]
    assert d["runner"] == "booth" and d["seeds"] == [0]
    assert d["command"] == f"python -m experiments run booth --smoke --out {tmp_path / 'booth.json'}"
    assert s["grad_norm_sq_over_loss_before"] == pytest.approx(20.0)
    assert 35.99 < s["grad_norm_sq_over_loss_after"] <= 36.0 + 1e-9
    assert abs(s["loss_change"]) <= 1e-10 and s["final_loss_teleport"] < s["final_loss_plain"]
    result = json.loads(open(d["json"]).read())["results"][0]
    assert all(e["status"] in ("accepted", "corrected") for e in result["log"])


def test_regression_smoke_out_and_no_silent_overwrite(capsys, tmp_path):
    out = tmp_path / "e3.json"
    argv = ["run", "e3_regression", "--smoke", "--seeds", "2", "--set", 'optimizers=["adagrad"]',
            "--set", 'arms={"known-symdisc": {}}', "--out", str(out)]
    d = run_json(capsys, [*argv, "--json"])
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items() if k != "results"} == {k: v for k, v in d.items()
                                                                   if k not in ("json", "figure")}
    assert (tmp_path / "e3_known-symdisc.png").stat().st_size > 1000
    s = d["summary"]["known-symdisc"]["adagrad"]
    assert s["max_abs_loss_change"] <= 1e-9 and s["diverged_teleport"] == 0 and s["10.0"]["seeds"] == 2
    assert written["results"][0]["optimizers"]["adagrad"]["arms"]["known-symdisc"]["teleports"][0]["exactness"][
        "exact"] is True
    assert main(argv) == 2
    assert "exists; pass --force" in one_line_error(capsys) and json.loads(out.read_text()) == written
    assert main([*argv, "--force"]) == 0


@pytest.mark.parametrize("argv,code,fragment", [
    (["run", "nope"], 2, "unknown runner 'nope'"),
    (["run", "booth", "--set", "nope=1"], 2, "booth takes KEY=VALUE"),
    (["run", "booth", "--set", "lr=fast"], 2, "expected a value of type float"),
    (["run", "booth", "--seeds", "0"], 2, "--seeds must be"),
    (["run", "booth", "--seed", "1", "--seeds", "2"], 2, "not allowed with"),
    (["run", "booth", "--out", "out.txt"], 2, "expected a .json"),
    (["run", "booth", "--out", "/no/such/dir/r.json"], 2, "does not exist"),
    (["run", "e3_regression", "--smoke", "--set", 'optimizers=["lbfgs"]'], 2, "regression runs"),
    (["run", "e3_regression", "--smoke", "--set", 'arms={"a": {"variant": "x"}}'], 2, "unknown variant"),
    (["run", "e3_regression", "--smoke", "--set", 'arms={"a": {"symmetry": "zoo/gl3-linear-3-3-1"}}'], 2,
     "architecture mismatch"),
    (["run", "e3_regression", "--smoke", "--set", 'arms={"a": {"symmetry": "zoo/no-such"}}'], 3, "no artefact"),
    (["run", "discovery_none-tanh-3-3-1", "--set", "reverify=true", "--set", "zoo=null"], 2, "reverify needs"),
    (["table", "nope"], 2, "invalid choice"),
])
def test_bad_input_one_line(capsys, tmp_path, argv, code, fragment):
    argv = [*argv, "--out", str(tmp_path / "r.json")] if argv[0] == "run" and "--out" not in argv else argv
    assert main(argv) == code
    assert fragment in one_line_error(capsys)


def test_tables_from_the_committed_results(capsys):
    assert main(["table", "discovery"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| case | B | k | steps") and any("`rescale-relu-3-3-1`" in x for x in lines)
    assert main(["table", "census_presets"]) == 0
    assert "| `tiny-transformer --variant wo` |" in capsys.readouterr().out
    assert main(["table", "discovery_reach"]) == 0
    rows = [x for x in capsys.readouterr().out.splitlines() if "layernorm-linear-constrained-k13" in x]
    assert len(rows) == 1 and "11 of 13 fields verified; kept" in rows[0]


def test_teleport_figures_mask_diverged_values(tmp_path):
    """A diverged run's null and astronomically large values become NaN, so a log axis still draws (a run whose
    ‖∇L‖² reached 1e299 once crashed matplotlib's tick placement)."""
    import math

    from experiments.teleport.figures import as_array, panels_figure

    arr = as_array([[1.0, 1e299, None, 2.0], [3.0, 4.0, 5.0]])
    assert arr.shape == (2, 3) and arr[0, 0] == 1.0 and math.isnan(arr[0, 1]) and math.isnan(arr[0, 2])
    panels_figure([("loss", {"plain": [[1.0, 2.0, 3.0]], "teleport": [[1.0, 1e299, 1e300]]}, [1])], "t",
                  tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
