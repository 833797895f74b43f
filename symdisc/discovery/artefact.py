"""Learned-symmetry artefacts: tensors in safetensors, everything else in a JSON card. No pickle.

A run directory holds ``symmetry.safetensors`` (generators ``gens.*`` and action weights
``action.*``) and ``card.json``:

    schema_version, kind, created, architecture {name, spec, num_params, layout, layout_hash, loss,
    data_shape}, generators {kind, k, rank}, action {…ActionConfig}, preserves, training {…config,
    summary}, seed, verification (null until `symdisc verify`), versions, tensors {file, sha256}.

``export`` writes one portable safetensors file: the same tensors plus ``generators`` (k, p, p)
matrices, with the card in the file's metadata under "symdisc_card".  ``load`` accepts either.
A loaded artefact is a :class:`LearnedSymmetry` (a Symmetry) and acts on new θ without training.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import warnings
from pathlib import Path
from typing import Any

import torch

from symdisc import zoo
from symdisc.architecture import Architecture
from symdisc.discovery.action import ActionConfig, ActionNet
from symdisc.discovery.generators import Generators
from symdisc.discovery.learned import LearnedSymmetry
from symdisc.discovery.validate import card_fields, check_header, expected_shapes
from symdisc.errors import ArtefactError, InputError, SymdiscWarning
from symdisc.io import parse_json, write_json
from symdisc.tensorio import load_tensors, read_header, save_tensors, tensors_digest

SCHEMA_VERSION = 1
KIND = "symdisc.learned_symmetry"
TENSORS, CARD = "symmetry.safetensors", "card.json"
DIGEST = "symdisc_tensors_sha256"  # an exported file's checksum of its tensors (metadata; files before it have none)


def _versions() -> dict[str, str]:
    import geoopt
    import safetensors

    from symdisc._version import __version__

    return {"symdisc": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "geoopt": geoopt.__version__, "safetensors": safetensors.__version__}


def symmetry_tensors(sym: LearnedSymmetry) -> dict[str, torch.Tensor]:
    """The learned symmetry's tensors by name: generators ``gens.*`` and action weights ``action.*``."""
    return {**{f"gens.{k}": v for k, v in sym.gens.state_dict().items()},
            **{f"action.{k}": v for k, v in sym.action.state_dict().items()}}


def load_symmetry_tensors(sym: LearnedSymmetry, tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Inverse of :func:`symmetry_tensors` (other keys are ignored); tensors that do not fit raise ArtefactError."""
    try:
        sym.gens.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("gens.")})
        sym.action.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("action.")})
    except RuntimeError as e:
        raise ArtefactError(f"{source}: tensors do not fit the card: {str(e).splitlines()[0]}") from None


def make_card(sym: LearnedSymmetry, arch: Architecture, data_shape: list[int], training: dict[str, Any]) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": {"name": arch.name, "spec": arch.spec, "num_params": arch.num_params,
                         "layout": arch.layout.describe(), "layout_hash": arch.layout.hash(),
                         "loss": arch.loss_name, "data_shape": list(data_shape)},
        "generators": {"kind": sym.gens.kind, "k": sym.gens.k, "rank": sym.gens.rank},
        "action": sym.action.cfg.to_dict(),
        "preserves": sym.preserves,
        "training": training,
        "seed": training.get("config", {}).get("seed"),
        "verification": None,
        "versions": _versions(),
    }


def save(sym: LearnedSymmetry, directory: str | Path, card: dict) -> Path:
    """Write ``symmetry.safetensors`` then ``card.json`` (each atomically; the card names the tensors' hash)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = save_tensors(directory / TENSORS, symmetry_tensors(sym))
    card = {**card, "tensors": {"file": TENSORS, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}}
    write_json(directory / CARD, card)
    return directory


def update_card(directory: str | Path, **fields: Any) -> dict:
    card = read_card(directory)
    card.update(fields)
    write_json(Path(directory) / CARD, card)
    return card


def read_card(directory: str | Path) -> dict:
    card, path = read_json_card(directory, "an artefact")
    _check_card(card, str(path))
    return card


def read_json_card(directory: str | Path, what: str, kind: str | None = None,
                   schema: int | None = None) -> tuple[Any, Path]:
    """(the parsed card.json of ``directory``, its path); ArtefactError if missing or unreadable, or (when given)
    of another ``kind`` or schema version."""
    path = Path(directory) / CARD
    if not path.is_file():
        raise ArtefactError(f"{directory} holds no {what} ({CARD} missing)")
    card = parse_json(path.read_bytes(), str(path))
    if kind is not None:
        check_kind(card, str(path), kind, schema, what)
    return card, path


def check_kind(card: Any, where: str, kind: str, schema: int, what: str) -> None:
    if not isinstance(card, dict) or card.get("kind") != kind:
        raise ArtefactError(f"{where} is not a symdisc {what} card")
    version = card.get("schema_version")
    if version != schema:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > schema
        raise ArtefactError(f"{where}: schema version {str(version)[:40]} is not supported (this symdisc reads "
                            f"{schema}" + ("; the artefact is from a newer symdisc: upgrade to read it)" if newer
                                           else ")"))


def _check_card(card: Any, where: str) -> dict:
    """Kind, schema version and every field a load reads (``validate.card_fields``)."""
    check_kind(card, where, KIND, SCHEMA_VERSION, "learned-symmetry")
    return card_fields(card, where)


def export(directory: str | Path, target: str | Path) -> Path:
    """One self-describing safetensors file (tensors + generator matrices + card in metadata)."""
    card = read_card(directory)
    sym = load(directory, fields="all")
    tensors = {**symmetry_tensors(sym), "generators": sym.generators(dtype=torch.float32)}
    return save_tensors(target, tensors, metadata={"symdisc_card": json.dumps(card),
                                                   DIGEST: tensors_digest(tensors)})


def _read_export(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    header, meta = read_header(path)
    if "symdisc_card" not in meta:
        raise ArtefactError(f"{path} carries no symdisc card")
    card = parse_json(meta["symdisc_card"].encode("utf-8", "surrogatepass"), f"{path}: its card")
    f = _check_card(card, str(path))
    check_header(header, expected_shapes(f), str(path))
    if "generators" in header and header["generators"][0] != (f["k"], f["p"], f["p"]):
        raise ArtefactError(f"{path}: generators have shape {header['generators'][0]}, the card implies "
                            f"{(f['k'], f['p'], f['p'])}")
    tensors = load_tensors(path)
    if DIGEST in meta and tensors_digest(tensors) != meta[DIGEST]:
        raise ArtefactError(f"{path}: its tensors do not match the checksum it carries (modified or corrupted)")
    tensors.pop("generators", None)
    return card, tensors


def architecture_of(card: dict) -> Architecture:
    """Rebuild a zoo architecture from a card (user modules must be passed explicitly)."""
    spec = dict(card["architecture"].get("spec") or {})
    name = spec.pop("preset", None)
    if name is None:
        raise InputError(f"this artefact was learned on a user module ({str(card['architecture']['name'])[:80]}): "
                           "pass its architecture (Python: load(..., arch=…); CLI: --arch FILE.py:FUNC)")
    if not isinstance(name, str) or name not in zoo.names():
        raise ArtefactError(f"the card names an architecture symdisc does not have ({str(name)[:80]})")
    try:
        return zoo.get(name, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()})
    except (InputError, TypeError, ValueError, OverflowError, MemoryError) as e:
        raise ArtefactError(f"the card's architecture {name} cannot be rebuilt from its spec: "
                            f"{' '.join(str(e).split())[:200]}") from None


def verified_indices(card: dict) -> list[int] | None:
    """The fields the card's verification kept (None: never verified).  Reports older than the
    ``verified`` key keep the fields classed invariant."""
    report = card.get("verification")
    if not isinstance(report, dict):
        return None
    if isinstance(report.get("verified"), dict):
        return list(report["verified"]["indices"])
    return [f["index"] for f in report.get("fields", []) if f.get("class") != "not invariant"]


def _unverified_note(card: dict, skipped: list[int]) -> str:
    """"i (residual r, class[, dependent: distance d])" for each skipped field the card's verification knows."""
    fields = {f["index"]: f for f in (card.get("verification") or {}).get("fields", [])}
    parts = []
    for i in skipped:
        f = fields.get(i)
        if f is None:
            parts.append(str(i))
            continue
        dependent = f["class"] != "not invariant" and not f.get("verified") and f.get("independence") is not None
        extra = f", dependent: distance {f['independence']:.2g}" if dependent else ""
        parts.append(f"{i} (residual {f['invariance_median']:.2g}, {f['class']}{extra})")
    return ", ".join(parts)


def select_fields(sym: LearnedSymmetry, fields: str = "verified", strict: bool = False) -> LearnedSymmetry:
    """The fields a consumer uses: ``verified`` (default) — those the card's verification kept; ``all``.
    Unverified fields used or skipped are reported by a SymdiscWarning; ``strict`` refuses (InputError) an
    artefact that has any unverified field or was never verified."""
    if fields not in ("verified", "all"):
        raise InputError(f"fields must be verified or all, got {fields!r}")
    card, k = getattr(sym, "card", {}), sym.num_generators
    kept = verified_indices(card)
    if kept is None:
        msg = f"this artefact was never verified: its {k} fields are unverified (verify it first)"
        if strict:
            raise InputError(f"refused: {msg}")
        warnings.warn(f"{msg}; using all {k}", SymdiscWarning, stacklevel=2)
        return sym
    skipped = [i for i in range(k) if i not in kept]
    if skipped and strict:
        raise InputError(f"refused: {len(skipped)} of {k} fields are unverified: {_unverified_note(card, skipped)}")
    if fields == "all":
        if skipped:
            warnings.warn(f"using {k} fields of which {len(skipped)} are unverified: "
                          f"{_unverified_note(card, skipped)}", SymdiscWarning, stacklevel=2)
        return sym
    if not kept:
        raise InputError(f"none of the {k} fields verified ({_unverified_note(card, skipped)}): nothing to use")
    if skipped:
        warnings.warn(f"using the {len(kept)} verified of {k} fields; skipping {_unverified_note(card, skipped)}",
                      SymdiscWarning, stacklevel=2)
        return sym.subset(kept)
    return sym


def load(source: str | Path, arch: Architecture | None = None, fields: str = "verified",
         strict: bool = False) -> LearnedSymmetry:
    """A learned symmetry from a run directory or an exported file; checks the architecture's layout.
    ``fields="verified"`` (what consumers use): only the fields its verification kept (``select_fields``, with
    ``strict``); ``fields="all"``: every field as stored, unchecked (what verification and export read; a
    consumer asking for all fields passes the result through ``select_fields(sym, "all")`` to be warned)."""
    source = Path(source)
    if source.is_dir():
        card, path = read_json_card(source, "an artefact")
        f = _check_card(card, str(path))
        tensor_path = source / card.get("tensors", {}).get("file", TENSORS)
        header, _ = read_header(tensor_path)
        check_header(header, expected_shapes(f), str(tensor_path))
        expected = card.get("tensors", {}).get("sha256")
        if expected and hashlib.sha256(tensor_path.read_bytes()).hexdigest() != expected:
            raise ArtefactError(f"{tensor_path} does not match its card (modified or partially written)")
        tensors = load_tensors(tensor_path)
    elif source.is_file():
        card, tensors = _read_export(source)
    else:
        raise ArtefactError(f"no artefact at {source}")
    arch = arch if arch is not None else architecture_of(card)
    a = card["architecture"]
    if arch.layout.hash() != a["layout_hash"]:
        raise InputError(f"architecture mismatch: the artefact was learned on {a['name']} "
                           f"(p = {a['num_params']}, layout {a['layout_hash']}), got {arch.name} "
                           f"(p = {arch.num_params}, layout {arch.layout.hash()})")
    g = card["generators"]
    gens = Generators(arch.num_params, g["k"], g["kind"], g.get("rank", 1))
    data_dim = 1
    for d in a["data_shape"]:
        data_dim *= d
    action = ActionNet(arch.num_params, data_dim, ActionConfig(**card["action"]))
    sym = LearnedSymmetry(arch.layout, gens, action, preserves=card.get("preserves", "loss"),
                          data_shape=list(a["data_shape"]), arch=arch)
    load_symmetry_tensors(sym, tensors, source)
    sym.to(dtype=next(iter(tensors.values())).dtype)
    sym.card, sym.arch = card, arch
    return sym if fields == "all" and not strict else select_fields(sym, fields, strict)
