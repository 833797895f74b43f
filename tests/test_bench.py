"""``symdisc bench``: the quick suite runs end to end (a smoke test of the harness: no time is asserted), its
JSON and Markdown hold every case; a failing case costs no other; bad input is one line."""

import json
import math
from pathlib import Path

import pytest

from symdisc.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the suite (benchmarks/suite.py) is found from the repository root


def test_quick_suite_writes_every_case(tmp_path, capsys):
    code = main(["bench", "--quick", "--out", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr()[0])
    assert code == 0 and doc["quick"] and doc["device"] == "cpu"
    assert {"cpu", "cpu_count", "gpu", "torch", "python"} <= set(doc["machine"])
    cases = {r["case"] for r in doc["rows"]}
    assert cases == {"discovery", "verification", "teleport", "census", "ridge", "dcs", "compile"}
    for r in doc["rows"]:
        assert r["error"] is None and math.isfinite(r["value"]), r
        # a ratio beside every baseline; a value reported without a baseline has neither
        assert math.isfinite(r["ratio"]) if r["baseline_value"] is not None else r["ratio"] is None, r
        assert r["better"] in ("higher", "lower") and (r["baseline"] or r["baseline_value"] is None)
    assert any(r["baseline"] is None for r in doc["rows"]) and sum(r["baseline"] is not None for r in doc["rows"]) > 5
    assert isinstance(doc["discovery_speed_ratio"], float)
    assert json.loads((tmp_path / "bench.json").read_text())["rows"] == doc["rows"]
    table = (tmp_path / "bench.md").read_text()
    assert all(f"| {c} |" in table for c in cases) and doc["machine"]["torch"] in table
    assert (tmp_path / "cases" / "dcs" / "dcs_step.json").is_file()  # each script's own document is kept


def test_a_failing_case_is_reported_and_costs_no_other(tmp_path, capsys):
    code = main(["bench", "--suite", "tests.bench_suite_fake", "--out", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 5 and "breaks failed" in err and err.count("\n") == 1
    rows = {r["case"]: r for r in doc["rows"]}
    assert rows["works"]["value"] == 42.0 and doc["discovery_speed_ratio"] == 2.0
    assert rows["breaks"]["error"] == "RuntimeError: no such device"


@pytest.mark.parametrize("argv, message", [
    (["--cases", "nope"], "unknown case(s) nope"),
    (["--suite", "no.such.suite"], "cannot import the benchmark suite"),
    (["--device", "tpu"], "device"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    code = main(["bench", "--quick", "--out", str(tmp_path), *argv])
    err = capsys.readouterr()[1]
    assert code == 2 and message in err and err.count("\n") == 1


def test_list_names_the_cases(capsys):
    assert main(["bench", "--list"]) == 0
    assert "discovery:" in capsys.readouterr()[0]


def test_a_row_without_a_value_says_why_in_the_table():
    from symdisc.bench import markdown

    doc = {"quick": False, "date": "d", "device": "cpu", "command": "c", "rows": [
        {"case": "compile", "metric": "torch.compile, k", "value": None, "unit": "ms/call", "baseline": "eager",
         "baseline_value": 2.0, "ratio": None, "better": "lower", "details": {"error": "RuntimeError: no"}}],
        "machine": {"cpu": "x", "cpu_count": 2, "gpu": None, "torch": "t", "loadavg_1min": 0.1}}
    assert "| compile | torch.compile, k | — (RuntimeError: no) | eager: 2 | — |" in markdown(doc)
