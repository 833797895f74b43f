"""Hidden coordinates and how they are tied together: the bookkeeping of the dataflow analysis.

Every tensor axis a parameter writes into (the rows of a linear layer's W, the columns of an embedding)
gets fresh *coordinates*.  A group element g of a hidden space acts on coordinates; two coordinates are
*linked* when g must act on them alike (a residual sum: parity 0) or contragrediently (the two sides of
a contraction q·k: parity 1).  Links form a union-find with parity.  Each coordinate class carries what
the ops between its producers and consumers allow:

* ``level`` 0: any invertible g (linear path: GL_h); 1: positive diagonal g (rescalings: ReLU-type
  activations, norm affine weights, max-pooling); 2: none (a non-homogeneous nonlinearity, a sum across
  coordinates, a constant offset);
* ``killed``: why no continuous group may move it (it reaches the output, a normalisation, an
  unrecognised op …);
* ``labels``: which tensor / batch slice it travelled in — coordinates with different labels are never
  mixed by one g (the q, k and v thirds of a fused projection; different attention heads).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class ClassInfo:
    level: int = 0
    killed: list[str] = field(default_factory=list)
    odd: bool = False  # linked to itself contragrediently: g must be orthogonal
    consumers: set[str] = field(default_factory=set)  # non-parameter consumers: "layer_norm", "softmax", …
    nonlinear: bool = False  # a nonlinearity between producer and consumer (bias shifts need a linear path)

    def merge(self, other: ClassInfo) -> None:
        self.level = max(self.level, other.level)
        self.killed += other.killed
        self.odd = self.odd or other.odd
        self.consumers |= other.consumers
        self.nonlinear = self.nonlinear or other.nonlinear


@dataclass(frozen=True)
class Slot:
    """One coordinate's position in one parameter: ``param``'s entry ``pos`` along ``axis``."""

    param: str
    axis: int
    pos: int
    role: str  # "produces" | "consumes", relative to the coordinate


class Coordinates:
    """Union-find with parity over integer coordinates, their class information and parameter slots."""

    def __init__(self):
        self.parent: list[int] = []
        self.parity: list[int] = []
        self.info: list[ClassInfo] = []
        self.block: list[int] = []  # allocation block of each coordinate (coordinates produced together)
        self.labels: dict[int, set] = defaultdict(set)
        self.slots: dict[tuple[str, int, int], tuple[int, str]] = {}
        self.attached: list[tuple[int, Slot]] = []
        self._blocks = 0

    def new(self, n: int, level: int = 0) -> list[int]:
        """n fresh coordinates in one block."""
        start, b = len(self.parent), self._blocks
        self._blocks += 1
        for i in range(n):
            self.parent.append(start + i)
            self.parity.append(0)
            self.info.append(ClassInfo(level=level))
            self.block.append(b)
        return list(range(start, start + n))

    def find(self, x: int) -> tuple[int, int]:
        par = 0
        path = []
        while self.parent[x] != x:
            path.append(x)
            par ^= self.parity[x]
            x = self.parent[x]
        # path compression with parities
        acc = par
        for y in path:
            p_y = self.parity[y]
            self.parent[y], self.parity[y] = x, acc
            acc ^= p_y
        return x, par

    def link(self, a: int, b: int, parity: int) -> None:
        """Coordinates a and b transform alike (parity 0) or contragrediently (parity 1)."""
        ra, pa = self.find(a)
        rb, pb = self.find(b)
        if ra == rb:
            if pa ^ pb != parity:
                self.info[ra].odd = True
            return
        self.parent[rb], self.parity[rb] = ra, pa ^ pb ^ parity
        self.info[ra].merge(self.info[rb])

    def cls(self, x: int) -> ClassInfo:
        return self.info[self.find(x)[0]]

    def kill(self, x: int, why: str) -> None:
        self.cls(x).killed.append(why)

    def restrict(self, x: int, level: int, nonlinear: bool = False) -> None:
        c = self.cls(x)
        c.level = max(c.level, level)
        c.nonlinear = c.nonlinear or nonlinear

    def attach(self, x: int, param: str, axis: int, pos: int, role: str) -> None:
        """Parameter entry (param, axis, pos) produces or consumes coordinate x.  An entry met twice (a tied
        weight) links its two coordinates: alike if the roles agree, contragrediently if not."""
        key = (param, axis, pos)
        if key in self.slots:
            y, other = self.slots[key]
            self.link(x, y, int(role != other))
            return
        self.slots[key] = (x, role)
        self.attached.append((x, Slot(param, axis, pos, role)))

    def label(self, x: int, tag) -> None:
        self.labels[x].add(tag)

    def __len__(self) -> int:
        return len(self.parent)
