"""The zoo catalogue (``symdisc zoo build``): every registered architecture has a card, every committed artefact
still loads and verifies within what its entry recorded, and a build keeps, rebuilds and indexes entries."""

import json
from pathlib import Path

import pytest

import symdisc
from symdisc import zoo
from symdisc.catalogue import build, entries_in
from symdisc.cli.main import main
from symdisc.errors import InputError

CATALOGUE = Path(__file__).resolve().parents[1] / "zoo" / "catalogue"
ENTRIES = {e["name"]: e for e in entries_in(CATALOGUE)} if CATALOGUE.is_dir() else {}


def test_every_registered_architecture_has_a_card():
    assert sorted(ENTRIES) == sorted(zoo.names())
    index = (CATALOGUE / "README.md").read_text()
    for name in zoo.names():
        assert f"]({name}/card.md)" in index
        assert (CATALOGUE / name / "card.md").is_file() and (CATALOGUE / name / "census.png").is_file()


@pytest.mark.parametrize("name", [n for n, e in ENTRIES.items() if e["artefact"]])
def test_committed_artefact_loads_and_still_verifies(name):
    """Re-verified on the draws its entry records (held-out stream, seed, batch; curves off): the same fields
    verify, and the invariance median stays within 10× of the recorded one (far below the 1e-3 threshold)."""
    entry, directory = ENTRIES[name], CATALOGUE / name
    before = (directory / "card.json").read_bytes()
    sym = symdisc.load(directory, fields="all")
    le = entry["learned"]
    assert sym.arch.num_params == entry["num_params"] and sym.num_generators == le["k"]
    report = symdisc.verify(sym, arch=sym.arch, draws=le["draws"], seed=le["seed"], batch=le["batch"], curves=False)
    assert report["verified"]["indices"] == le["verified_indices"]
    assert report["invariance"]["median"] <= max(10 * le["invariance_median"], 1e-12) < le["invariance_threshold"]
    assert (directory / "card.json").read_bytes() == before  # verifying a Symmetry never touches its card


def test_build_keeps_rebuilds_and_indexes(tmp_path):
    first = build(tmp_path, ["linear-scalar"], steps=20, verify_draws=1)
    assert first["built"] == ["linear-scalar"] and first["kept"] == []
    entry = json.loads((tmp_path / "linear-scalar" / "entry.json").read_text())
    assert entry["learned"]["k"] == entry["census"]["output_null_dims"][0] == 1
    assert (tmp_path / "linear-scalar" / "symmetry.safetensors").is_file()
    assert not (tmp_path / "linear-scalar" / "checkpoint.json").exists()
    stamp = (tmp_path / "linear-scalar" / "entry.json").read_bytes()
    again = build(tmp_path, ["linear-scalar"], steps=20, verify_draws=1)
    assert again["built"] == [] and again["kept"] == ["linear-scalar"]
    assert (tmp_path / "linear-scalar" / "entry.json").read_bytes() == stamp
    forced = build(tmp_path, ["linear-scalar"], steps=20, verify_draws=1, force=True)
    assert forced["built"] == ["linear-scalar"] and not list(tmp_path.glob(".*"))  # nothing left aside
    assert "[linear-scalar](linear-scalar/card.md)" in (tmp_path / "README.md").read_text()
    with pytest.raises(InputError, match="unknown architecture"):
        build(tmp_path, ["resnet"])


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    code = main(["zoo", "build", "--out", str(tmp_path), "--names", "resnet"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown architecture" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
