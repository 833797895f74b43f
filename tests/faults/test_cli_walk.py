"""A walk of every subcommand with malformed arguments: each option of each command, collected from the CLI's own
definitions, is given values of the wrong type or out of range on top of a small valid invocation.  Every run
either succeeds (the value was acceptable) or exits non-zero with exactly one line on stderr, never a traceback
or "internal error", and leaves the working directory as it was."""

import shutil
from pathlib import Path

import pytest
import typer

from symdisc.cli.main import app, main

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_MLP = ROOT / "zoo" / "catalogue" / "mlp"
# a small valid invocation per command ({out}: a path in the workspace); options given here are not walked
BASE = {
    "census": ["mlp", "--batch-sizes", "4"],
    "known": ["mlp"],
    "discover": ["mlp", "--steps", "2", "--verify-draws", "0", "--no-figures", "--out", "{out}/d"],
    "verify": ["mlp", "--symmetry", "known", "--draws", "1", "--no-curves"],
    "export": [str(CATALOGUE_MLP), "--to", "{out}/x.safetensors"],
    "teleport": ["mlp", "--symmetry", "known", "--steps", "3"],
    "lift": ["known", "--symmetry", "GL(h1)", "--to", "mlp", "--dims", "2,3,3,1", "--act", "linear", "--layer", "2",
             "--draws", "1", "--out", "{out}/l"],
    "rr": ["toy2d", "--budget", "5"],
    "dcs": ["mlp", "--dims", "3,4,1", "--steps", "3"],
    "report": [str(CATALOGUE_MLP), "--out", "{out}/r.html"],
    "zoo show": ["mlp"],
    "zoo build": ["--out", "{out}/cat", "--names", "linear-scalar", "--steps", "2", "--verify-draws", "1"],
}
NOT_WALKED = {"zoo list": "no options but --json", "sweep": "its options are walked in tests/test_sweep.py "
              "(a run starts worker processes)", "bench": "runs benchmark scripts; bad options: tests/test_bench.py"}
BAD = {int: ["abc", "-1", "1.5"], float: ["abc", "nan", "-inf"], str: ["@@no-such-value@@", ""],
       Path: ["/nonexistent-dir/sub/file"]}
SKIP_OPTIONS = {"help", "json_out"}


def commands() -> dict:
    root = typer.main.get_command(app)
    out = {}
    for name, cmd in root.commands.items():
        for sub, c in (cmd.commands.items() if hasattr(cmd, "commands") else [(None, cmd)]):
            out[f"{name} {sub}" if sub else name] = c
    return out


def cases():
    for name, cmd in commands().items():
        if name in NOT_WALKED:
            continue
        given = {a for a in BASE[name] if a.startswith("--")}
        for p in cmd.params:
            if p.param_type_name != "option" or p.name in SKIP_OPTIONS or p.is_flag or p.opts[0] in given:
                continue
            annotation = getattr(getattr(p, "type_descriptor", None), "annotation", str)
            for value in BAD.get(annotation, BAD[str]):
                yield pytest.param(name, p.opts[0], value, id=f"{name}-{p.opts[0]}={value or 'empty'}")


POSITIONAL_BAD = ["@@nope@@", "/nonexistent/model.py:build", "{out}", "model.py", "a.py:"]


def positional_cases():
    for name, cmd in commands().items():
        if name in NOT_WALKED or not any(p.param_type_name == "argument" for p in cmd.params):
            continue
        for value in POSITIONAL_BAD:
            yield pytest.param(name, value, id=f"{name}-ARG={value}")


def snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*")}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("walk")


def test_every_command_is_walked_or_says_why():
    assert set(commands()) == set(BASE) | set(NOT_WALKED)


@pytest.mark.parametrize("name,option,value", list(cases()))
def test_malformed_option(workspace, capsys, monkeypatch, name, option, value):
    monkeypatch.chdir(workspace)
    case = workspace / f"{name.replace(' ', '_')}{option}{abs(hash(value))}"
    case.mkdir()
    argv = [*name.split(), *(a.format(out=case) for a in BASE[name]), option, value]
    before = snapshot(workspace)
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("symdisc: warning:")]
        assert len(lines) == 1 and lines[0].startswith(("symdisc: error:", "Usage", "Error")), err[-2000:]
        assert snapshot(workspace) == before
    shutil.rmtree(case)


@pytest.mark.parametrize("name,value", list(positional_cases()))
def test_malformed_argument(workspace, capsys, monkeypatch, name, value):
    """The first positional argument (architecture, artefact or run) replaced by something that is none."""
    monkeypatch.chdir(workspace)
    case = workspace / f"{name.replace(' ', '_')}-arg{abs(hash(value))}"
    case.mkdir()
    base = [a.format(out=case) for a in BASE[name]]
    argv = [*name.split(), value.format(out=case), *base[1:]]
    before = snapshot(workspace)
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "internal error" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("symdisc: warning:")]
    assert len(lines) == 1 and snapshot(workspace) == before, err[-2000:]
    shutil.rmtree(case)
