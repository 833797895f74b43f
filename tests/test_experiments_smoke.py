"""A discovery reproduction end to end through ``python -m experiments`` (tiny configuration; the full runs are
committed results): the artefact exported to the zoo directory, the case's figures, the refusal to overwrite
either, and ``reverify`` from the exported artefact.  Every runner's smoke config runs in
test_experiments_registry.py."""

import json

from experiments.cli import main

CASE = "none-tanh-3-3-1"


def test_discovery_case_exports_figures_and_reverifies(tmp_path, capsys):
    zoo, out = tmp_path / "zoo", tmp_path / f"{CASE}.json"
    argv = ["run", f"discovery_{CASE}", "--smoke", "--set", f"zoo={zoo}", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())["results"][0]
    assert result["case"] == CASE and result["steps"] == 5 and "no symmetry" in result["verdict"]
    assert result["artefact"] == str(zoo / CASE) and (zoo / CASE / "symmetry.safetensors").is_file()
    assert all((tmp_path / f"{CASE}_{f}.png").stat().st_size > 1000 for f in ("generators", "exp_generators", "curves"))
    out.unlink()
    assert main(argv) == 2  # the exported artefact is not overwritten silently either
    assert "card.json exists; pass --force" in capsys.readouterr().err
    again = tmp_path / "reverified.json"
    assert main(["run", f"discovery_{CASE}", "--set", f"zoo={zoo}", "--set", "reverify=true", "--set",
                 "verify_draws=2", "--out", str(again), "--force"]) == 0
    reverified = json.loads(again.read_text())["results"][0]
    assert reverified["reverified"] and reverified["steps"] == 5 and reverified["stopped"] == result["stopped"]
    assert reverified["invariance_median"] == result["invariance_median"]  # same artefact, draws, seed
