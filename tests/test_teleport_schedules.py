"""E6 teleport schedules (symdisc.teleport.schedules) and the experiment script's smoke run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from symdisc.errors import SymdiscError
from symdisc.teleport.schedules import schedules

ROOT = Path(__file__).resolve().parents[1]


def test_schedule_families_are_what_the_docs_say():
    fam = schedules()
    assert {k: p.epochs for k, p in fam["when"].items()} == {
        "epoch 0": (0,), "epoch 1": (1,), "epoch 2": (2,), "epoch 5": (5,), "epoch 10": (10,)}
    assert all(p.batches == 4 for p in fam["when"].values())
    assert fam["spacing"]["every 3"].epochs == (1, 4, 7, 10) and fam["spacing"]["every 3"].batches == 1
    assert [p.batches for p in fam["batches"].values()] == [1, 2, 4, 8, 16]
    assert all(p.epochs == (1,) for p in fam["batches"].values())


def test_unknown_family_is_a_clear_error():
    from symdisc.teleport.schedules import run_schedules

    with pytest.raises(SymdiscError, match="unknown E6 family often"):
        run_schedules(["often"], seeds=[0], smoke=True, progress=False)


def test_schedules_smoke_events_where_scheduled(tmp_path):
    out = tmp_path / "e6.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "teleport_schedules.py"), "--smoke",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.with_suffix(".png").stat().st_size > 0
    result = json.loads(out.read_text())
    runs = {r["arm"]: r for r in result["runs"]}
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
    assert set(result["paired_log10_gap"]) == set(runs) - {"none"}
