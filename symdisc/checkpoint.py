"""Checkpoints in one file: the tensors of a run's state and a JSON document in one safetensors file (the document
in its metadata), written by one atomic rename.  A kill at any moment leaves the previous checkpoint or the new one,
never a new tensor file beside an old document (two files written one after the other can be cut between them).

    write_checkpoint(path, {"step": 40, …}, {"theta": θ, "opt": optimizer.state_dict(), …})
    doc, state = read_checkpoint(path)      # ArtefactError if missing, truncated or corrupted

The state is any nesting of dicts, lists, tensors and JSON values (``tensorio.flatten_state``); nothing is pickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from symdisc.errors import ArtefactError
from symdisc.io import parse_json
from symdisc.tensorio import flatten_state, load_tensors, read_header, save_tensors, unflatten_state

KEY = "symdisc_checkpoint"


def write_checkpoint(path: str | os.PathLike, doc: dict, state: Any) -> Path:
    """Write ``doc`` (JSON values; NaN and ±inf allowed) and ``state`` to ``path`` atomically."""
    tensors, skeleton = flatten_state("state", state)
    return save_tensors(path, tensors, metadata={KEY: json.dumps({"doc": doc, "state": skeleton})})


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, Any]:
    """(doc, state) from ``write_checkpoint``'s file; tensors on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"cannot resume: no checkpoint {path}")
    _, meta = read_header(path)
    if KEY not in meta:
        raise ArtefactError(f"{path} is not a symdisc checkpoint (made by an older symdisc?): start the run over")
    record = parse_json(meta[KEY].encode("utf-8", "surrogatepass"), f"{path}: its document")
    tensors = load_tensors(path)
    try:
        return record["doc"], unflatten_state(record["state"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise ArtefactError(f"{path} is not a valid checkpoint ({type(e).__name__}: {e})") from None
