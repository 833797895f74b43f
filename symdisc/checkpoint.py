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

from symdisc.errors import ArtefactError, InputError
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


class RunCheckpoint:
    """The checkpoint of a long loop: ``save``'d to ``path`` when ``due(step)`` (every ``every`` steps), and read
    back on ``resume`` only if the run's ``identity`` (its options, as JSON) is the stored one — a resumed run must
    be the interrupted run, or its result would mix two runs.  ``resumed`` holds (progress, state) or None."""

    def __init__(self, path: str | os.PathLike, every: int, identity: dict, resume: bool = False):
        if every < 1:
            raise InputError(f"checkpoints need an interval ≥ 1 step, got {every}")
        self.path, self.every = Path(path), int(every)
        self.identity = json.loads(json.dumps(identity))  # tuples → lists, as stored
        self.resumed: tuple[dict, Any] | None = None
        if resume:
            doc, state = read_checkpoint(self.path)
            stored = doc.get("identity") if isinstance(doc, dict) else None
            if stored != self.identity:
                keys = sorted(k for k in {*self.identity, *(stored or {})}
                              if (stored or {}).get(k) != self.identity.get(k))
                raise InputError(f"cannot resume: {self.path} was made by a run with other {', '.join(keys)} — give "
                                 "the interrupted run's options")
            self.resumed = (doc["progress"], state)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def save(self, progress: dict, state: Any) -> None:
        write_checkpoint(self.path, {"identity": self.identity, "progress": progress}, state)
