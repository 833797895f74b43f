"""RR's archive: the tree of rides, each node a ridge (θ, e, λ) with its fingerprint Ψ (ridge_rider.md §1.4–1.5).

A node is created by GetRidges at its parent's end point (the root's parent is the MIS) with fingerprint
Ψ = parent's Ψ + [branch index]; both signs ±e share the index (Alg. 3).  ChooseFromArchive picks the next
pending node: ``bfs`` (FIFO), ``dfs`` (LIFO), ``random`` (the search's generator), ``loss`` (lowest loss at
the node's start).  After its ride a node is ``done`` (a ``leaf`` when no negative curvature is left there:
a solution) or ``merged`` into an orbit-equivalent node (design C); its children are the ridges at its end.

The archive is plain data plus tensors: ``save(dir)`` writes both into ``archive.safetensors`` by one atomic
rename (``symdisc.checkpoint``), then ``archive.json``, a readable copy of the plain data; ``Archive.load(dir)``
validates and reads the tensor file back without executing code, so an interrupted search resumes with its
archive, whatever moment it was killed at.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from symdisc.checkpoint import read_checkpoint, write_checkpoint
from symdisc.errors import ArtefactError, InputError
from symdisc.io import atomic_write

STRATEGIES = ("bfs", "dfs", "random", "loss")
SCHEMA = 1
TENSORS = ("theta_start", "e_start", "theta_end")
FILE = "archive.safetensors"


@dataclass
class Node:
    """One ridge of the search tree (tensors: ``theta_start``, ``e_start``, after the ride ``theta_end``)."""

    id: int
    parent: int | None
    fingerprint: list[int]
    sign: int
    lam_start: float
    loss_start: float
    theta_start: torch.Tensor
    e_start: torch.Tensor
    status: str = "pending"            # pending | done | merged
    cluster: dict | None = None        # design A: {"size", "certified", "score"} of the ridge's eigenvalue cluster
    theta_end: torch.Tensor | None = None
    loss_end: float | None = None
    lam_end: float | None = None
    steps: int = 0
    end_reason: str | None = None
    leaf: bool = False
    children: list[int] = field(default_factory=list)
    merged_into: int | None = None
    orbit_distance: float | None = None

    def record(self) -> dict:
        """The node's plain fields (no tensors)."""
        return {k: v for k, v in asdict(self).items() if k not in TENSORS}


class Archive:
    """Nodes by id plus the queue of pending ids; ``choose`` implements ChooseFromArchive."""

    def __init__(self, strategy: str = "bfs"):
        if strategy not in STRATEGIES:
            raise InputError(f"unknown archive search {strategy!r}; choose {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.nodes: list[Node] = []
        self.queue: list[int] = []

    def add(self, parent: int | None, fingerprint: list[int], sign: int, theta, e, lam: float, loss: float,
            cluster: dict | None = None) -> Node:
        node = Node(len(self.nodes), parent, list(fingerprint), int(sign), float(lam), float(loss),
                    theta.detach().clone(), e.detach().clone(), cluster=cluster)
        self.nodes.append(node)
        self.queue.append(node.id)
        if parent is not None:
            self.nodes[parent].children.append(node.id)
        return node

    def __len__(self) -> int:
        return len(self.queue)

    def choose(self, generator: torch.Generator) -> Node:
        """Remove and return the next pending node under the archive's strategy."""
        if not self.queue:
            raise InputError("the archive is empty")
        if self.strategy == "bfs":
            i = 0
        elif self.strategy == "dfs":
            i = len(self.queue) - 1
        elif self.strategy == "random":
            i = int(torch.randint(len(self.queue), (1,), generator=generator))
        else:
            i = min(range(len(self.queue)), key=lambda j: (self.nodes[self.queue[j]].loss_start, j))
        return self.nodes[self.queue.pop(i)]

    def solutions(self) -> list[Node]:
        """Leaves: rides that ended where no negative curvature is left (merged ones excluded)."""
        return [n for n in self.nodes if n.status == "done" and n.leaf]

    def ends(self) -> list[Node]:
        """Every finished, unmerged ride (its end point is a candidate solution)."""
        return [n for n in self.nodes if n.status == "done"]

    def tree(self) -> list[dict]:
        """Every node's plain record (id, parent, fingerprint, status, losses, …): the branching tree."""
        return [n.record() for n in self.nodes]

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict | None = None, extra_tensors: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"{n.id}.{k}": getattr(n, k) for n in self.nodes for k in TENSORS if getattr(n, k) is not None}
        tensors.update(extra_tensors or {})
        doc = {"schema": SCHEMA, "strategy": self.strategy, "queue": self.queue, "nodes": self.tree(),
               "extra": extra or {}}
        write_checkpoint(directory / FILE, doc, tensors)
        atomic_write(directory / "archive.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))

    @classmethod
    def load(cls, directory: str | Path) -> tuple[Archive, dict, dict]:
        """(archive, extra, extra tensors) from ``save``'s tensor file; ArtefactError if missing or inconsistent."""
        path = Path(directory) / FILE
        if not path.is_file():
            raise ArtefactError(f"no RR archive in {directory} ({FILE} missing)")
        doc, tensors = read_checkpoint(path)
        try:
            if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
                raise ArtefactError(f"{path}: not an RR archive of schema {SCHEMA}")
            archive = cls(doc["strategy"])
            for rec in doc["nodes"]:
                parts = {k: tensors.get(f"{rec['id']}.{k}") for k in TENSORS}
                if parts["theta_start"] is None or parts["e_start"] is None:
                    raise ArtefactError(f"{path}: node {rec['id']} has no start tensors")
                archive.nodes.append(Node(**rec, **parts))
            archive.queue = [int(i) for i in doc["queue"]]
            if any(not 0 <= i < len(archive.nodes) for i in archive.queue):
                raise ArtefactError(f"{path}: the queue names nodes that do not exist")
        except (KeyError, TypeError, ValueError) as e:
            raise ArtefactError(f"{path} is not a valid RR archive ({type(e).__name__}: {e})") from None
        rest = {k: v for k, v in tensors.items() if not k.split(".")[0].isdigit()}
        return archive, doc.get("extra", {}), rest
