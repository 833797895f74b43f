"""``symdisc report``: one self-contained HTML page (figures embedded) for a run — a discovery run directory, a
teleport result (``symdisc teleport --out FILE.json``), a Ridge Rider run directory or a DCS run directory.

    report("runs/relu", "report.html")   # the kind is read from what the source holds
"""

from __future__ import annotations

import datetime
from pathlib import Path

from symdisc.errors import ArtefactError, InputError
from symdisc.io import parse_json
from symdisc.report import runs
from symdisc.report.html import page, write

KINDS = ("discovery", "teleport", "rr", "dcs")


def _load(source: Path) -> tuple[str, object]:
    """(kind, what its report reads): a discovery run's card, a teleport result, an RR run's (archive, options),
    a DCS run's result — each JSON file read once, through the artefact loader's parser."""
    if source.is_dir():
        if (source / "card.json").is_file() and (source / "symmetry.safetensors").is_file():
            return "discovery", _json(source / "card.json")
        if (source / "archive.json").is_file():
            options = source / "rr_run.json"
            return "rr", (_json(source / "archive.json"), _json(options) if options.is_file() else {})
        if (source / "dcs_run.json").is_file():
            return "dcs", _json(source / "dcs_run.json")
        raise InputError(f"{source} is not a run directory symdisc report knows (a discovery run, an RR run or a DCS "
                         "run)")
    if source.is_file():
        doc = _json(source)
        if isinstance(doc, dict) and {"plain", "teleport", "summary"} <= set(doc):
            return "teleport", doc
        raise InputError(f"{source} is not a teleport result (symdisc teleport --out FILE.json)")
    raise InputError(f"no run at {source}")


def kind_of(source: str | Path) -> str:
    """What a source is: from the files a run directory holds, or a teleport result's keys."""
    return _load(Path(source))[0]


def _json(path: Path):
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArtefactError(f"{path}: not readable ({e.strerror or e})") from None
    return parse_json(data, str(path))


def report(source: str | Path, out: str | Path, force: bool = False) -> dict:
    """Write the HTML report of ``source`` to ``out`` (atomically; an existing file only with ``force``).
    Returns {"out", "kind", "title", "sections", "figures", "bytes"}."""
    source, out = Path(source), Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {out}: use an .html file name")
    if out.exists() and not force:
        raise InputError(f"{out} exists: choose another name or pass --force")
    kind, doc = _load(source)
    try:
        if kind == "discovery":
            from symdisc.report.discovery import sections

            title, parts = sections(source, doc)
        elif kind == "teleport":
            title, parts = runs.teleport(doc)
        elif kind == "rr":
            title, parts = runs.ridge(*doc, name=source.name)
        else:
            title, parts = runs.dcs(doc)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise ArtefactError(f"{source}: a {kind} run without the field {e} — written by another symdisc version, or "
                            "not complete") from None
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = page(title, f"symdisc report of {source} ({kind}), {stamp}", parts)
    write(out, text)
    return {"out": str(out), "kind": kind, "title": title, "sections": [h for h, _ in parts],
            "figures": text.count("<img "), "bytes": len(text.encode())}


__all__ = ["KINDS", "kind_of", "report"]
