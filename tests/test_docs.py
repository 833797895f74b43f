"""The documentation site: ``mkdocs build --strict`` passes, every public name and command is documented, and the
quickstart's and the own-model tutorial's commands run, in order, in an empty directory."""

import importlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from symdisc.cli.main import app, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_MODULES = ["symdisc", "symdisc.zoo", "symdisc.symmetry", "symdisc.detect", "symdisc.verification",
               "symdisc.lifting", "symdisc.optim", "symdisc.teleport", "symdisc.ridge", "symdisc.dcs", "symdisc.sweep",
               "symdisc.report", "symdisc.catalogue"]


def public(module: str) -> list[tuple[str, object]]:
    mod = importlib.import_module(module)
    return [(n, getattr(mod, n)) for n in mod.__all__ if not n.startswith("_")]


def commands(md: Path) -> list[list[str]]:
    """The ``$ symdisc …`` lines of a page's console blocks, in order."""
    return [shlex.split(line[2:])[1:] for line in md.read_text().splitlines() if line.startswith("$ symdisc ")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_every_page_on_disk_is_in_the_navigation(site):
    built = {p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")}
    for md in DOCS.rglob("*.md"):
        page = md.relative_to(DOCS).with_suffix("").as_posix()
        assert (page if page != "index" else ".") in built, page


def test_every_public_name_has_a_docstring_and_a_reference_entry(site):
    html = (site / "reference" / "api" / "index.html").read_text()
    missing_doc, missing_ref = [], []
    for module in API_MODULES:
        for name, obj in public(module):
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # constants and subpackages are described by their modules
            if not (inspect.getdoc(obj) or "").strip():
                missing_doc.append(f"{module}.{name}")
            if f'id="{module}.{name}"' not in html:
                missing_ref.append(f"{module}.{name}")
    assert missing_doc == [] and missing_ref == []


def test_every_command_is_documented(site):
    root = typer.main.get_command(app)
    names = [f"{n} {s}" if hasattr(c, "commands") else n for n, c in root.commands.items()
             for s in (c.commands if hasattr(c, "commands") else [None])]
    generated = (site / "reference" / "commands" / "index.html").read_text()
    guide = (DOCS / "cli.md").read_text()
    for name in names:
        cmd = root.commands[name.split()[0]]
        cmd = cmd.commands[name.split()[1]] if " " in name else cmd
        assert (cmd.help or "").strip(), name
        assert f"symdisc {name}" in generated and f"## `symdisc {name}" in guide, name


def test_quickstart_runs_in_an_empty_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    steps = commands(DOCS / "quickstart.md")
    assert [s[0] for s in steps] == ["census", "known", "discover", "verify", "export", "teleport", "report"]
    for argv in steps:
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    card = json.loads((tmp_path / "runs" / "relu" / "card.json").read_text())
    assert card["verification"]["verified"]["count"] >= 1
    assert (tmp_path / "runs" / "relu.safetensors").is_file() and (tmp_path / "report.html").is_file()


def test_own_model_tutorial_runs(tmp_path, monkeypatch, capsys):
    page = DOCS / "tutorials" / "own-model.md"
    source = re.search(r'```python title="my_models.py"\n(.*?)```', page.read_text(), re.S).group(1)
    (tmp_path / "my_models.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for argv in commands(page):
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    assert (tmp_path / "runs" / "cnn" / "symmetry.safetensors").is_file()
