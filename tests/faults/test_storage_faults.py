"""Writing faults: a full disk or an unwritable directory is one clear line and leaves nothing half-written; a
run directory holding an interrupted run's checkpoint is resumed or started over on request, never overwritten
silently."""

import errno
import tempfile
from pathlib import Path

import pytest

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


LONG = {  # each long command, small, writing several checkpoints into {out}
    "discover": ["discover", "mlp", "-k", "1", "--steps", "8", "--checkpoint-every", "2", "--verify-draws", "0",
                 "--no-figures", "--json", "--out", "{out}"],
    "teleport": ["teleport", "mlp", "--steps", "16", "--checkpoint-every", "4", "--json", "--out", "{out}/r.json"],
    "rr": ["rr", "mlp", "--dims", "3,3,3", "--act", "linear", "--no-bias", "--batch-size", "20", "--max-depth", "2",
           "--n-ridges", "2", "--budget", "200", "--json", "--out", "{out}"],
    "dcs": ["dcs", "mlp", "--steps", "40", "--checkpoint-every", "10", "--json", "--out", "{out}"],
}


@pytest.mark.parametrize("command", sorted(LONG))
def test_a_disk_full_mid_run_keeps_the_last_checkpoint_and_resumes(command, tmp_path, capsys, monkeypatch):
    """The third atomic write of the run meets a full disk: one line, exit 2, the checkpoint before it intact;
    once there is space again, ``--resume`` ends the run."""
    out = tmp_path / "run"
    out.mkdir()
    argv = [a.format(out=out) for a in LONG[command]]
    real, calls = symdisc.io.os.replace, []

    def full_at_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(symdisc.io.os, "replace", full_at_third)
        code, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err, err
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or "tmp" in p.name]  # no temporaries left
    code, err = run(capsys, *argv, "--resume")
    assert code == 0, err


@pytest.mark.parametrize("command", sorted(LONG))
def test_a_read_only_output_directory_is_one_line(command, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()

    read_only(monkeypatch, out)
    code, err = run(capsys, *[a.format(out=out) for a in LONG[command]])
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err, err
    assert list(out.iterdir()) == []


def read_only(monkeypatch, root: Path) -> None:
    """Writes under ``root`` fail as on a read-only mount (EROFS; this suite may run as root, which chmod does not
    stop): temporary files, and files opened to write or append."""
    import builtins
    import io

    def refuse(where):
        raise OSError(errno.EROFS, "Read-only file system", str(where))

    real_mkstemp, real_open = tempfile.mkstemp, io.open

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(root.resolve()):
            refuse(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and set(mode) & set("wax+") and \
                Path(file).resolve().is_relative_to(root.resolve()):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(builtins, "open", open_)


def test_rr_restart_starts_over_only_once_its_inputs_are_checked(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [a.format(out=out) for a in LONG["rr"]]
    assert run(capsys, *argv)[0] == 0
    stamp = (out / "archive.safetensors").read_bytes()
    code, err = run(capsys, *argv)
    assert code == 2 and "--restart to start over" in err
    bad = ["rr", "no-such-model", *argv[2:]]
    assert run(capsys, *bad, "--restart")[0] == 2 and (out / "archive.safetensors").read_bytes() == stamp
    assert run(capsys, *argv, "--restart", "--seed", "1")[0] == 0
    assert (out / "archive.safetensors").read_bytes() != stamp


@pytest.mark.parametrize("command", ["teleport", "rr", "dcs"])
def test_resume_and_restart_need_an_output_and_exclude_each_other(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = [a for a in LONG[command] if "{out}" not in a and a != "--out"]
    code, err = run(capsys, *base, "--resume")
    assert code == 2 and "need --out" in err and err.count("\n") == 1
    argv = [a.format(out=tmp_path) for a in LONG[command]]
    code, err = run(capsys, *argv, "--resume", "--restart")
    assert code == 2 and "exclude each other" in err and err.count("\n") == 1
    code, err = run(capsys, *argv, "--resume")
    assert code == 2 and ("no interrupted run" in err or "holds no RR run" in err) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_interrupted_dcs_auto_run_resumes(tmp_path, capsys, monkeypatch):
    """DCS with the coverage map (auto), interrupted, resumes (it was refused when the map's diagnostics differed
    in their last bits from call to call: torch's default CPU lstsq driver)."""
    import symdisc.cli.dcs_cmd as dcs_cmd

    argv = ["dcs", "tiny-transformer", "--constraint", "auto", "--steps", "40", "--checkpoint-every", "10", "--json",
            "--out", str(tmp_path)]

    def killed(*args):
        raise KeyboardInterrupt  # as a kill between the training's end and the run's files

    with monkeypatch.context() as m:
        m.setattr(dcs_cmd, "_save", killed)
        run(capsys, *argv)
    assert (tmp_path / "checkpoint.safetensors").is_file() and not (tmp_path / "dcs_run.json").exists()
    code, err = run(capsys, *argv, "--resume")
    assert code == 0, err
    assert (tmp_path / "dcs_run.json").is_file() and not (tmp_path / "checkpoint.safetensors").exists()
