"""Validation of an untrusted learned-symmetry artefact before anything is built from it.

A card is checked field by field (types, ranges, choices; unknown action options refused), the tensor file's
name must be a plain file name inside the artefact, and the tensors' names, shapes and dtypes — read from the
safetensors header, before any tensor is loaded — must be exactly those the card implies: the generators' from
(p, k, kind, rank), the action network's from building it on the ``meta`` device (no memory).  So a card that
declares huge sizes is refused unless a file of that size backs it, and nothing is allocated from a number in
the card.  Every failure is an ArtefactError naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import torch

from symdisc.discovery.action import ActionConfig, ActionNet
from symdisc.errors import ArtefactError, InputError

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
MAX_DATA_DIMS, MAX_DATA = 8, 10**8  # data_shape: rank and number of entries of one batch X
MAX_STEPS = 10_000  # flow_steps, retract_steps
SHA256 = re.compile(r"[0-9a-f]{64}")


def _int(x: Any, where: str, lo: int, hi: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < lo or (hi is not None and x > hi):
        raise ArtefactError(f"{where} must be an integer in [{lo}, {hi if hi is not None else '∞'}], got {x!r:.80}")
    return x


def _dict(x: Any, where: str) -> dict:
    if not isinstance(x, dict):
        raise ArtefactError(f"{where} must be an object, got {type(x).__name__}")
    return x


def _choice(x: Any, where: str, choices: tuple) -> Any:
    if not isinstance(x, str) or x not in choices:
        raise ArtefactError(f"{where} must be one of {', '.join(choices)}, got {x!r:.80}")
    return x


def action_config(raw: Any, where: str) -> ActionConfig:
    """The card's action options as an ActionConfig, every field type-checked (bounds: the tensors decide)."""
    raw = _dict(raw, f"{where}: action")
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(ActionConfig)})
    if unknown:
        raise ArtefactError(f"{where}: unknown action option(s) {', '.join(map(str, unknown))[:200]}")
    defaults = ActionConfig()
    for name, value in raw.items():
        kind = type(getattr(defaults, name))
        if kind is bool and not isinstance(value, bool) or kind is str and not isinstance(value, str) or \
                kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ArtefactError(f"{where}: action.{name} must be {kind.__name__}, got {value!r:.80}")
    cfg = ActionConfig(**raw)
    _int(cfg.flow_steps, f"{where}: action.flow_steps", 1, MAX_STEPS)
    _int(cfg.retract_steps, f"{where}: action.retract_steps", 0, MAX_STEPS)
    _int(cfg.width, f"{where}: action.width", 1)
    _int(cfg.depth, f"{where}: action.depth", 1)
    return cfg


def card_fields(card: dict, where: str) -> dict:
    """Check every field a load reads; returns {"p", "k", "kind", "rank", "data_shape", "data_dim", "action"}."""
    a = _dict(card.get("architecture"), f"{where}: architecture")
    if not isinstance(a.get("name"), str) or not isinstance(a.get("layout_hash"), str):
        raise ArtefactError(f"{where}: architecture.name and architecture.layout_hash must be strings")
    if a.get("spec") is not None:
        _dict(a["spec"], f"{where}: architecture.spec")
    p = _int(a.get("num_params"), f"{where}: architecture.num_params", 1)
    shape = a.get("data_shape")
    if not isinstance(shape, list) or len(shape) > MAX_DATA_DIMS:
        raise ArtefactError(f"{where}: architecture.data_shape must be a list of at most {MAX_DATA_DIMS} sizes")
    shape = [_int(d, f"{where}: architecture.data_shape", 1, MAX_DATA) for d in shape]
    data_dim = math.prod(shape)
    if data_dim > MAX_DATA:
        raise ArtefactError(f"{where}: architecture.data_shape holds {data_dim} entries (at most {MAX_DATA})")
    g = _dict(card.get("generators"), f"{where}: generators")
    kind = _choice(g.get("kind"), f"{where}: generators.kind", ("free", "lowrank"))
    k = _int(g.get("k"), f"{where}: generators.k", 1, p)
    rank = _int(g.get("rank", 1), f"{where}: generators.rank", 1, p)
    _choice(card.get("preserves", "loss"), f"{where}: preserves", ("loss", "output"))
    t = card.get("tensors", {})
    t = _dict(t, f"{where}: tensors")
    name = t.get("file", "symmetry.safetensors")
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise ArtefactError(f"{where}: tensors.file must be a file name inside the artefact, got {name!r:.80}")
    if "sha256" in t and not (isinstance(t["sha256"], str) and SHA256.fullmatch(t["sha256"])):
        raise ArtefactError(f"{where}: tensors.sha256 must be 64 hex digits")
    if card.get("verification") is not None:
        _verification(card["verification"], k, f"{where}: verification")
    return {"p": p, "k": k, "kind": kind, "rank": rank, "data_shape": shape, "data_dim": data_dim,
            "action": action_config(card.get("action"), where)}


def _number(x: Any, where: str, optional: bool = False) -> None:
    if (x is None and optional) or (isinstance(x, (int, float)) and not isinstance(x, bool)):
        return
    raise ArtefactError(f"{where} must be a number, got {x!r:.80}")


def _verification(v: Any, k: int, where: str) -> None:
    """What loading reads of a recorded verification: the kept fields and each field's class and residuals."""
    v = _dict(v, where)
    if "verified" in v:
        indices = _dict(v["verified"], f"{where}.verified").get("indices")
        if not isinstance(indices, list):
            raise ArtefactError(f"{where}.verified.indices must be a list")
        for i in indices:
            _int(i, f"{where}.verified.indices", 0, k - 1)
    fields = v.get("fields", [])
    if not isinstance(fields, list):
        raise ArtefactError(f"{where}.fields must be a list")
    for f in fields:
        f = _dict(f, f"{where}.fields[]")
        _int(f.get("index"), f"{where}.fields[].index", 0, k - 1)
        if not isinstance(f.get("class"), str):
            raise ArtefactError(f"{where}.fields[].class must be a string")
        _number(f.get("invariance_median"), f"{where}.fields[].invariance_median")
        _number(f.get("independence"), f"{where}.fields[].independence", optional=True)


def expected_shapes(f: dict) -> dict[str, tuple[int, ...]]:
    """The tensors a card implies: name → shape (the action network built on the meta device)."""
    p, k, r = f["p"], f["k"], f["rank"]
    gens = {"gens.H": (p * p, k)} if f["kind"] == "free" else {"gens.U": (k, p, r), "gens.V": (k, p, r)}
    try:
        with torch.device("meta"):
            net = ActionNet(p, f["data_dim"], f["action"])
    except InputError as e:
        raise ArtefactError(f"the card's action options are invalid: {e}") from None
    return {**gens, **{f"action.{n}": tuple(t.shape) for n, t in net.state_dict().items()}}


def check_header(header: dict[str, tuple[tuple[int, ...], torch.dtype]], expected: dict[str, tuple[int, ...]],
                 where: str) -> None:
    """The file's tensors (name → (shape, dtype), from its header) are exactly the expected ones, in float."""
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected) - {"generators"})
    if missing or extra:
        raise ArtefactError(f"{where}: tensors do not fit the card (missing {missing[:5]}, unexpected {extra[:5]})")
    for name, shape in expected.items():
        got, dtype = header[name]
        if tuple(got) != shape:
            raise ArtefactError(f"{where}: tensor {name} has shape {tuple(got)}, the card implies {shape}")
        if dtype not in FLOATS:
            raise ArtefactError(f"{where}: tensor {name} has dtype {dtype}, expected a floating-point type")
    dtypes = {header[n][1] for n in expected}
    if len(dtypes) > 1:
        raise ArtefactError(f"{where}: tensors mix dtypes {sorted(map(str, dtypes))}")
