"""Lifted-symmetry artefacts: a JSON card that says how to rebuild the lift, no code and no pickle.

A directory holds ``card.json`` — schema_version, kind ``symdisc.lifted_symmetry``, created, ``source``
(``{"kind": "learned", "path": "source" | "source.safetensors", "fields": [...]}``: a copy of the learned
artefact, or ``{"kind": "known", "architecture": {name, spec}, "symmetry": name}``), ``source_architecture``,
``target`` {name, spec, num_params, layout_hash}, ``placement`` (resolved), ``lift`` {kinds, layers, units,
conditions}, ``check`` (the report of ``check_lift``), ``tensors`` (``lift.safetensors`` with the fixed padding
points, or null), versions — plus the copied source.  ``load_lifted`` rebuilds the zoo architectures from their
specs, the source (``symdisc.load`` or the zoo's known symmetries by name) and the lift, with the same padding.
The card is written last: a directory without it holds no artefact.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import shutil
from pathlib import Path

import torch

from symdisc.discovery import artefact as learned_artefact
from symdisc.discovery.learned import LearnedSymmetry
from symdisc.errors import ArtefactError, InputError
from symdisc.io import atomic_write, write_json
from symdisc.lifting.lifted import LiftedSymmetry, lift
from symdisc.lifting.placement import Placement
from symdisc.tensorio import load_tensors, save_tensors

SCHEMA_VERSION = 1
KIND = "symdisc.lifted_symmetry"
CARD, TENSORS = "card.json", "lift.safetensors"
SOURCE_DIR, SOURCE_FILE = "source", "source.safetensors"


def _arch_record(arch) -> dict:
    if not (arch.spec or {}).get("preset"):
        raise InputError(f"{arch.name} is a user module: a lift can be saved only between zoo presets (the loader "
                         "rebuilds them from their specs, without running code)")
    return {"name": arch.name, "spec": arch.spec, "num_params": arch.num_params, "layout_hash": arch.layout.hash()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plan_source(lifted: LiftedSymmetry, source_path: str | Path | None) -> tuple[dict, list[tuple[Path, str]]]:
    """(the card's ``source`` record, the files to copy beside the lift), checked before anything is written."""
    src = lifted.source
    if not isinstance(src, LearnedSymmetry):
        arch = lifted.source_chain.arch
        if not any(s.name == src.name for s in arch.known_symmetries()):
            raise InputError(f"{src.name} is not a known symmetry of {arch.name}: only known and learned sources "
                             "can be saved")
        return {"kind": "known", "architecture": _arch_record(arch), "symmetry": src.name}, []
    if source_path is None:
        raise InputError("pass source_path: the artefact (directory or exported file) the learned source was "
                         "loaded from, to be copied beside the lift")
    source_path = Path(source_path)
    record = {"kind": "learned", "fields": list(src.indices), "name": src.name}
    if source_path.is_file():
        return {**record, "path": SOURCE_FILE}, [(source_path, SOURCE_FILE)]
    card = learned_artefact.read_card(source_path)
    if card["architecture"]["layout_hash"] != src.layout.hash():
        raise InputError(f"{source_path} is not the artefact of {src.name} (another layout)")
    names = (card.get("tensors", {}).get("file", learned_artefact.TENSORS), learned_artefact.CARD)
    return {**record, "path": SOURCE_DIR}, [(source_path / n, f"{SOURCE_DIR}/{n}") for n in names]


def check_out(directory: str | Path, force: bool = False) -> Path:
    """``directory`` may be written: new, empty, or (``force``) an existing artefact to replace."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise InputError(f"{directory} already exists and is not empty: choose another directory or force overwrite")
    if not directory.parent.is_dir():
        raise InputError(f"directory {directory.parent} does not exist")
    return directory


def save_lifted(lifted: LiftedSymmetry, directory: str | Path, report: dict | None = None, *,
                source_path: str | Path | None = None, force: bool = False) -> Path:
    """Write the lift (and a copy of a learned source from ``source_path``) into ``directory``; never overwrites an
    artefact unless ``force``."""
    directory = check_out(directory, force)
    target = _arch_record(lifted.target.arch)
    source_arch = _arch_record(lifted.source_chain.arch)
    source, copies = _plan_source(lifted, source_path)
    directory.mkdir(exist_ok=True)
    (directory / CARD).unlink(missing_ok=True)  # the card goes first and comes last: no stale card survives
    for stale in (SOURCE_FILE, TENSORS):
        (directory / stale).unlink(missing_ok=True)
    shutil.rmtree(directory / SOURCE_DIR, ignore_errors=True)
    for src, rel in copies:
        (directory / rel).parent.mkdir(exist_ok=True)
        atomic_write(directory / rel, lambda tmp, src=src: shutil.copyfile(src, tmp))
    tensors = None
    if lifted.padding is not None:
        path = save_tensors(directory / TENSORS, {"padding": lifted.padding.to(torch.float64)})
        tensors = {"file": TENSORS, "sha256": _sha(path)}
    card = {
        "schema_version": SCHEMA_VERSION, "kind": KIND,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": source, "source_architecture": source_arch, "target": target,
        "placement": lifted.placement.to_dict(),
        "lift": {"kinds": list(lifted.kinds), "layers": list(lifted.block.layers),
                 "units": None if lifted.block.units is None else list(lifted.block.units),
                 "conditions": list(lifted.conditions)},
        "check": report, "tensors": tensors, "versions": learned_artefact._versions(),
    }
    write_json(directory / CARD, card)
    return directory


def read_lifted_card(directory: str | Path) -> dict:
    card, path = learned_artefact.read_json_card(directory, "lifted symmetry", KIND, SCHEMA_VERSION)
    _check_card(card, str(path))
    return card


def _check_card(card: dict, where: str) -> None:
    """The fields ``load_lifted`` reads, by type; file names must stay inside the artefact."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ArtefactError(f"{where}: {what}")

    def arch_record(r, what):
        need(isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("layout_hash"), str)
             and isinstance(r.get("spec", {}), dict), f"{what} must be an object with name, spec and layout_hash")

    arch_record(card.get("target"), "target")
    src = card.get("source")
    need(isinstance(src, dict) and src.get("kind") in ("known", "learned"), "source.kind must be known or learned")
    if src["kind"] == "known":
        arch_record(src.get("architecture"), "source.architecture")
        need(isinstance(src.get("symmetry"), str), "source.symmetry must be a name")
    else:
        need(src.get("path") in (SOURCE_DIR, SOURCE_FILE), f"source.path must be {SOURCE_DIR} or {SOURCE_FILE}")
        fields = src.get("fields")
        need(isinstance(fields, list) and bool(fields) and all(isinstance(i, int) and not isinstance(i, bool)
                                                               and i >= 0 for i in fields),
             "source.fields must be a non-empty list of field indices")
    need(isinstance(card.get("placement"), dict), "placement must be an object")
    t = card.get("tensors")
    need(t is None or (isinstance(t, dict) and t.get("file") == TENSORS and isinstance(t.get("sha256"), str)),
         f"tensors must be null or {{file: {TENSORS}, sha256}}")


def _rebuild(record: dict, where: str):
    arch = learned_artefact.architecture_of({"architecture": record})
    if arch.layout.hash() != record["layout_hash"]:
        raise ArtefactError(f"{where}: {record['name']} no longer has the layout the lift was made for")
    return arch


def load_lifted(directory: str | Path) -> LiftedSymmetry:
    """The lifted symmetry saved in ``directory``, rebuilt (strict: every lifting condition is checked again)."""
    directory = Path(directory)
    card = read_lifted_card(directory)
    target = _rebuild(card["target"], str(directory))
    src = card["source"]
    if src["kind"] == "known":
        arch = _rebuild(src["architecture"], str(directory))
        found = [s for s in arch.known_symmetries() if s.name == src["symmetry"]]
        if not found:
            raise ArtefactError(f"{directory}: {arch.name} has no known symmetry {src['symmetry']!r}")
        source, source_arch = found[0], arch
    else:
        full = learned_artefact.load(directory / src["path"], fields="all")
        if max(src["fields"]) >= full.num_generators:
            raise ArtefactError(f"{directory}: source.fields name field {max(src['fields'])} of a source with "
                                f"{full.num_generators}")
        source = full if src["fields"] == list(range(full.num_generators)) else full.subset(src["fields"])
        source_arch = full.arch
    padding = None
    if card.get("tensors"):
        path = directory / card["tensors"]["file"]
        if not path.is_file() or _sha(path) != card["tensors"]["sha256"]:
            raise ArtefactError(f"{path} is missing or does not match its card")
        padding = load_tensors(path).get("padding")
        if padding is None:
            raise ArtefactError(f"{path} holds no padding tensor")
    try:
        placement = Placement.from_dict(card["placement"])
    except (TypeError, ValueError) as e:
        raise ArtefactError(f"{directory}: placement does not describe one: {' '.join(str(e).split())[:200]}") from None
    lifted = lift(source, source_arch, target, placement, padding=padding)
    lifted.card = card
    return lifted
