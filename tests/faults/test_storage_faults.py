"""Writing faults: a full disk or an unwritable directory is one clear line and leaves nothing half-written; a
run directory holding an interrupted run's checkpoint is resumed or started over on request, never overwritten
silently."""

import errno
import tempfile
from pathlib import Path

import symdisc.io
from symdisc.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(symdisc.io.os, "replace", full)
    code, err = run(capsys, "export", str(ROOT / "zoo" / "catalogue" / "mlp"), "--to", str(tmp_path / "x.safetensors"))
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_an_unwritable_directory_is_one_line(tmp_path, capsys, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    code, err = run(capsys, "report", str(ROOT / "zoo" / "catalogue" / "mlp"), "--out", str(tmp_path / "r.html"))
    assert code == 2 and err.count("\n") == 1 and "Permission denied" in err and "cannot write" in err
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_run_is_never_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["discover", "mlp", "-k", "2", "--steps", "4", "--verify-draws", "0", "--no-figures", "--out", str(out)]
    assert run(capsys, *base)[0] == 0
    for name in ("card.json", "symmetry.safetensors"):  # as a kill after the last checkpoint leaves it
        (out / name).unlink()
    stamp = (out / "checkpoint.json").read_bytes()
    code, err = run(capsys, *base)
    assert code == 2 and "checkpoint of an interrupted run" in err and err.count("\n") == 1
    assert (out / "checkpoint.json").read_bytes() == stamp
    code, err = run(capsys, *base, "--resume", "--restart")
    assert code == 2 and "exclude each other" in err
    assert run(capsys, *base, "--restart")[0] == 0 and (out / "card.json").is_file()


def test_an_interrupted_teleport_run_is_resumed_or_refused(tmp_path, capsys, monkeypatch):
    """A teleport run interrupted before its result is stored keeps its checkpoint; a rerun is refused, a resume
    with other options is refused naming them, a resume with the same ones ends the run and removes it."""
    import symdisc.cli.teleport_cmd as teleport_cmd

    out = tmp_path / "r.json"
    checkpoint = tmp_path / "r.checkpoint.safetensors"
    base = ["teleport", "mlp", "--steps", "12", "--checkpoint-every", "4", "--json", "--out", str(out)]

    def killed(*args):
        raise KeyboardInterrupt  # as a kill between the run's end and its result

    with monkeypatch.context() as m:
        m.setattr(teleport_cmd, "write_json", killed)
        run(capsys, *base)
    assert checkpoint.is_file() and not out.exists()
    stamp = checkpoint.read_bytes()
    code, err = run(capsys, *base)
    assert code == 2 and "checkpoint of an interrupted run" in err and err.count("\n") == 1
    code, err = run(capsys, *base, "--resume", "--lr", "0.1")
    assert code == 2 and "other spec" in err and err.count("\n") == 1
    assert checkpoint.read_bytes() == stamp
    assert run(capsys, *base, "--resume")[0] == 0 and out.is_file() and not checkpoint.exists()
