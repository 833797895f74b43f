"""Determinism: the same seed gives the same result, run after run in one process (the kill tests check it from
process to process).  Only wall-clock fields may differ; benchmarks/determinism.py measures the other conditions
(thread counts, CUDA) for docs/reliability.md."""

import json

import pytest

from symdisc.cli.main import main

from .test_kill_resume import without_timings

RUNS = {
    "discover": ["discover", "mlp", "-k", "1", "--steps", "10", "--verify-draws", "2", "--no-figures", "--json",
                 "--out", "{out}"],
    "census": ["census", "mlp", "--act", "tanh", "--dims", "4,6,3", "--batch-sizes", "1,4", "--json"],
    "teleport": ["teleport", "mlp", "--steps", "30", "--teleport-every", "10", "--json"],
    "dcs": ["dcs", "mlp", "--steps", "60", "--json"],
    "rr": ["rr", "mlp", "--dims", "3,3,3", "--act", "linear", "--no-bias", "--batch-size", "20", "--max-depth", "1",
           "--n-ridges", "2", "--budget", "100", "--json"],
}


@pytest.mark.parametrize("command", sorted(RUNS))
def test_the_same_seed_gives_the_same_result(command, capsys, tmp_path):
    def result(i, *extra):
        assert main([a.format(out=tmp_path / str(i)) for a in RUNS[command]] + list(extra)) == 0
        doc = without_timings(json.loads(capsys.readouterr().out))
        return {k: v for k, v in doc.items() if k != "out"} if isinstance(doc, dict) else doc  # the run's own path

    first = result(0)
    assert result(1) == first
    assert result(2, "--seed", "1") != first  # and the seed matters: a test that can fail
