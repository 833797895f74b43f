"""E6 teleport schedules (experiments.teleport.schedules) and the e6_schedules runner's smoke run."""

import json

import pytest

from experiments.cli import main
from experiments.teleport.schedules import run_schedules, schedules
from symdisc.errors import SymdiscError


def test_schedule_families_are_what_the_docs_say():
    fam = schedules()
    assert {k: p.epochs for k, p in fam["when"].items()} == {
        "epoch 0": (0,), "epoch 1": (1,), "epoch 2": (2,), "epoch 5": (5,), "epoch 10": (10,)}
    assert all(p.batches == 4 for p in fam["when"].values())
    assert fam["spacing"]["every 3"].epochs == (1, 4, 7, 10) and fam["spacing"]["every 3"].batches == 1
    assert [p.batches for p in fam["batches"].values()] == [1, 2, 4, 8, 16]
    assert all(p.epochs == (1,) for p in fam["batches"].values())


def test_unknown_family_is_a_clear_error():
    with pytest.raises(SymdiscError, match="unknown E6 family often"):
        run_schedules(["often"], seeds=[0], smoke=True, progress=False)


def test_schedules_smoke_events_where_scheduled(tmp_path):
    out = tmp_path / "e6.json"
    assert main(["run", "e6_schedules", "--smoke", "--out", str(out)]) == 0
    assert out.with_suffix(".png").stat().st_size > 0
    result = json.loads(out.read_text())
    runs = {r["arm"]: r for r in result["results"][0]["runs"]}
    spe = runs["none"]["steps_per_epoch"]
    assert runs["none"]["teleport"] is None
    events = lambda arm: [(e["step"], e["batches"]) for e in runs[arm]["teleport"]["events"]]
    assert events("when: epoch 0") == [(0, 4)]  # before the first step
    assert events("when: epoch 1") == [(spe, 4)]
    assert events("spacing: every 1") == [(spe, 1), (2 * spe, 1)]  # 2 smoke epochs: the first two of four
    assert events("batches: 2 batches") == [(spe, 2)]
    for arm, run in runs.items():  # same θ₀ everywhere; every teleport kept its batch loss
        assert run["curves"]["train_loss"][0] == runs["none"]["curves"]["train_loss"][0]
        if run["teleport"]:
            assert all(e["max_abs_batch_loss_change"] < 1e-10 for e in run["teleport"]["events"]), arm
    summary = result["summary"]
    assert set(summary["paired_log10_gap"]) == set(runs) - {"none"} == set(summary["arms"]) - {"none"}
