"""Crash safety: a run killed with SIGKILL at a random moment resumes from its last checkpoint and ends with the
same result, bitwise, as an uninterrupted run with the same seed (CPU, deterministic operations): discovery
(checkpoint every 5 steps), Ridge Rider (the archive after every ride), teleport training and DCS."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

DISCOVER = ["discover", "mlp", "-k", "2", "--steps", "120", "--checkpoint-every", "5", "--verify-draws", "0",
            "--no-figures"]


TELEPORT = ["teleport", "mlp", "--steps", "600", "--teleport-every", "100", "--checkpoint-every", "5", "--json"]
DCS = ["dcs", "mlp", "--steps", "4000", "--checkpoint-every", "20", "--json"]
TIMINGS = ("seconds", "seconds_plain", "seconds_teleport")  # wall-clock fields: the only ones allowed to differ


RR = ["rr", "mlp", "--dims", "3,3,3", "--act", "linear", "--no-bias", "--batch-size", "20", "--max-depth", "3",
      "--n-ridges", "2", "--budget", "100000"]


@pytest.fixture
def one_thread():
    """The in-process runs on one thread, as the killed subprocess (OMP_NUM_THREADS=1): the same reductions."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def in_process(*argv) -> None:
    from symdisc.cli.main import main

    assert main(list(argv)) == 0, argv


def cli(*argv, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "symdisc", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def kill_after(proc, marker, deadline_s=120, within_s=0.5):
    """SIGKILL ``proc`` at a random moment of ``within_s`` after ``marker`` (its first checkpoint) appears; fail if
    it ended first."""
    deadline = time.time() + deadline_s
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(os.getpid()).uniform(0.0, within_s))
    if proc.poll() is not None:
        pytest.fail("the run finished before it could be killed: lengthen it")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_discover_killed_at_a_random_moment_resumes_to_the_same_artefact(tmp_path):
    """Every run in its own process: in-process runs of the trainer after others differ in the last bits."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert cli(*DISCOVER, "--out", str(ref)).wait(timeout=300) == 0
    kill_after(cli(*DISCOVER, "--out", str(run)), run / "checkpoint.json")
    killed_at = json.loads((run / "checkpoint.json").read_text())["step"]
    assert 0 < killed_at < 120 and not (run / "card.json").exists()
    resumed = cli(*DISCOVER, "--out", str(run), "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-2000:]
    a, b = load_file(str(ref / "symmetry.safetensors")), load_file(str(run / "symmetry.safetensors"))
    assert sorted(a) == sorted(b) and all((a[k] == b[k]).all() for k in a)  # bitwise
    metrics = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics == sorted(set(metrics)) and metrics[-1] == 120  # the log continues where the checkpoint was


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_rr_killed_at_a_random_moment_resumes_to_the_same_archive(tmp_path, one_thread):
    ref, run = tmp_path / "ref", tmp_path / "run"
    in_process(*RR, "--out", str(ref))
    kill_after(cli(*RR, "--out", str(run)), run / "archive.json")
    before = json.loads((run / "archive.json").read_text())
    assert before["queue"]  # killed with rides still to do
    in_process(*RR, "--out", str(run), "--resume")
    a, b = (json.loads((d / "archive.json").read_text()) for d in (ref, run))
    assert a["nodes"] == b["nodes"] and a["queue"] == b["queue"] == []  # every ride, loss and eigenvalue, exactly
    ta, tb = load_file(str(ref / "archive.safetensors")), load_file(str(run / "archive.safetensors"))
    assert sorted(ta) == sorted(tb) and all((ta[k] == tb[k]).all() for k in ta)  # the θ's, bitwise


def without_timings(doc):
    if isinstance(doc, dict):
        return {k: without_timings(v) for k, v in doc.items() if k not in TIMINGS}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_teleport_killed_at_a_random_moment_resumes_to_the_same_result(tmp_path, one_thread):
    """Killed in either arm (plain or with teleports), the resumed run's curves, teleport events and summary are
    bitwise the uninterrupted run's; only wall-clock fields differ."""
    ref, run = tmp_path / "ref.json", tmp_path / "run.json"
    checkpoint = tmp_path / "run.checkpoint.safetensors"
    in_process(*TELEPORT, "--out", str(ref))
    kill_after(cli(*TELEPORT, "--out", str(run)), checkpoint, within_s=1.5)
    assert checkpoint.is_file() and not run.exists()
    from symdisc.checkpoint import read_checkpoint

    progress = read_checkpoint(checkpoint)[0]["progress"]
    assert progress["current"] is None or 0 < progress["current"]["step"] < 600
    in_process(*TELEPORT, "--out", str(run), "--resume")
    a, b = (json.loads(p.read_text()) for p in (ref, run))
    assert without_timings(a) == without_timings(b) and a["summary"]["teleports"] == 6
    assert not checkpoint.exists()  # the result is stored: the checkpoint is gone


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_dcs_killed_at_a_random_moment_resumes_to_the_same_model(tmp_path, one_thread):
    ref, run = tmp_path / "ref", tmp_path / "run"
    in_process(*DCS, "--out", str(ref))
    kill_after(cli(*DCS, "--out", str(run)), run / "checkpoint.safetensors", within_s=1.5)
    assert not (run / "dcs_run.json").exists()
    in_process(*DCS, "--out", str(run), "--resume")
    a, b = (json.loads((d / "dcs_run.json").read_text()) for d in (ref, run))
    assert without_timings(a) == without_timings({**b, "run_dir": a["run_dir"]})
    ta, tb = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert sorted(ta) == sorted(tb) and all((ta[k] == tb[k]).all() for k in ta)  # the materialized model, bitwise
    assert not (run / "checkpoint.safetensors").exists()


def test_teleport_resumes_from_a_checkpoint_at_the_end_of_an_arm(tmp_path, monkeypatch):
    """Interrupted between the plain arm's end (its checkpoint holds no arm in progress) and the teleport arm's
    first checkpoint: the resume trains only the teleport arm and ends with the uninterrupted result."""
    import torch

    import symdisc.teleport.compare as compare
    from symdisc import zoo
    from symdisc.optim.schedule import Schedule

    arch = zoo.get("mlp").to(dtype=torch.float64)
    sym = compare.known_symmetry(arch)
    spec = compare.TrainSpec(steps=20, schedule=Schedule.every(10))
    reference = compare.compare_training(arch, sym, spec)
    real, path = compare._train, tmp_path / "c.safetensors"

    def interrupted(*args, **kwargs):
        if args[7] == "teleport":  # the arm
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(compare, "_train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compare.compare_training(arch, sym, spec, checkpoint=path, checkpoint_every=100)
    monkeypatch.setattr(compare, "_train", real)
    resumed = compare.compare_training(arch, sym, spec, checkpoint=path, checkpoint_every=100, resume=True)
    assert without_timings(resumed) == without_timings(reference)
