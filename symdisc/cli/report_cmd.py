"""``symdisc report RUN --out report.html``: one self-contained HTML page for a run."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import JSON, emit_json


def report_command(
    source: Path = typer.Argument(..., help="a discovery run directory, a teleport result (symdisc teleport --out "
                                            "FILE.json), or an RR or DCS run directory"),
    out: Path = typer.Option(..., "--out", help="the HTML file to write (self-contained: figures embedded)"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out"),
    json_out: bool = JSON,
) -> None:
    """Write one self-contained HTML report of a run (figures embedded as PNG, no file beside it).  A discovery run:
    the census beside the learned span, per-field classification, its figures (generators, exp(h), loss along
    learned vs random curves) and training curves; teleport: both arms' curves and every event; RR: the rides and
    the archive; DCS: losses and exact zeros per parameter.

    JSON: {"out", "kind" (discovery | teleport | rr | dcs), "title", "sections", "figures" (embedded images),
    "bytes"}
    """
    from symdisc.report import report

    info = report(source, out, force=force)
    if json_out:
        emit_json(info)
        return
    Console().print(f"{info['kind']} report: {len(info['sections'])} sections, {info['figures']} figures → "
                    f"{info['out']}")
