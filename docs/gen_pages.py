"""Pages generated at build time (mkdocs-gen-files): the command reference from the CLI's own definitions, the
repository's benchmark and zoo READMEs, and the zoo catalogue (``symdisc zoo build``: index, cards, figures), so
the site never drifts from the code or the committed results."""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files
import typer

from symdisc.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def _param(p) -> str:
    """One table row: the option's spellings, what it takes, its default and its help."""
    argument = p.param_type_name == "argument"
    if argument:
        name, kind = f"`{p.name.upper()}`", "argument"
    else:
        name = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
        annotation = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        kind = "flag" if p.is_flag else getattr(annotation, "__name__", "value")
    default = "" if p.default in (None, False, ()) or argument else f"`{p.default}`"
    text = " ".join((getattr(p, "help", None) or "").split()).replace("|", "\\|")
    return f"| {name} | {kind} | {default} | {text} |"


def _command(path: str, cmd) -> list[str]:
    lines = [f"## `{path}`", ""]
    lines += [(cmd.help or "").strip().replace("\n    ", "\n"), ""]
    params = [p for p in cmd.params if p.name != "help"]
    if params:
        lines += ["| option | takes | default | meaning |", "|---|---|---|---|", *map(_param, params), ""]
    return lines


def commands_page() -> str:
    """Every subcommand of ``symdisc``, with its docstring (what it does, its JSON fields) and its options."""
    root = typer.main.get_command(app)
    lines = ["# Commands", "", "Generated from the command-line interface's own definitions at every docs build "
             "(`docs/gen_pages.py`); `symdisc COMMAND --help` prints the same.  Options common to the "
             "architecture commands are described in [Commands, options and JSON fields](../cli.md).", ""]
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):  # a group: zoo list, zoo show
            for sub_name, sub in cmd.commands.items():
                lines += _command(f"symdisc {name} {sub_name}", sub)
        else:
            lines += _command(f"symdisc {name}", cmd)
    return "\n".join(lines)


def copied(path: str, title: str) -> str:
    """A repository README as a page, under ``title`` (its own first heading dropped)."""
    text = (ROOT / path).read_text()
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return f"# {title}\n\n*The repository's `{path}`, included at build time.*\n{body}"


with mkdocs_gen_files.open("reference/commands.md", "w") as f:
    f.write(commands_page())
with mkdocs_gen_files.open("reference/benchmarks.md", "w") as f:
    f.write(copied("benchmarks/README.md", "Benchmarks"))
with mkdocs_gen_files.open("reference/zoo.md", "w") as f:
    f.write(copied("zoo/README.md", "Symmetry zoo"))

CATALOGUE = ROOT / "zoo" / "catalogue"
for path in sorted(CATALOGUE.rglob("*")) if CATALOGUE.is_dir() else []:
    if path.suffix in (".md", ".png") and not any(part.startswith(".") for part in path.relative_to(CATALOGUE).parts):
        with mkdocs_gen_files.open(f"reference/catalogue/{path.relative_to(CATALOGUE).as_posix()}", "wb") as f:
            f.write(path.read_bytes())
