"""The shadow interpretation's shared pieces: parameter references and the coordinate helpers every op uses.

A shadow tensor has the shape of the value it shadows and holds, per entry, the hidden coordinate it carries
(−1: none).  :class:`Shadow` keeps the coordinates (:class:`~symdisc.detect.coords.Coordinates`) and the
helpers that read, produce, consume, restrict and kill them; the op handlers live in ``layers.py`` and
``pointwise.py`` and the interpreter in ``dataflow.py``.
"""

from __future__ import annotations

import operator

import torch

from symdisc.detect.coords import Coordinates


class ParamRef:
    """A parameter tensor (or a transposed view of one) flowing through the graph."""

    def __init__(self, name: str, perm: tuple[int, ...], frozen: bool):
        self.name, self.perm, self.frozen = name, perm, frozen

    def axis(self, view_axis: int) -> int:
        """The parameter's own axis that the view's ``view_axis`` is."""
        return self.perm[view_axis % len(self.perm)]


def op_name(node) -> str:
    """The ATen op's name without overload ("linear"), "getitem" for tuple indexing."""
    if node.target is operator.getitem:
        return "getitem"
    return getattr(node.target, "_opname", None) or getattr(node.target, "__name__", str(node.target))


def meta_value(node):
    """The example value (a fake tensor, or a tuple of them) export recorded for ``node``."""
    return node.meta.get("val") if hasattr(node, "meta") else None


class Shadow:
    """State and helpers of the shadow interpretation (the interpreter, ``Dataflow``, initialises the state)."""

    coords: Coordinates
    env: dict[str, object]
    poisoned: set[str]
    unknown: set[str]

    # ---- helpers -------------------------------------------------------------------------------------------
    def _ids(self, a):
        """The shadow of an argument: a LongTensor, a ParamRef, a list of them, or the literal."""
        if isinstance(a, torch.fx.Node):
            return self.env.get(a.name)
        if isinstance(a, (list, tuple)):
            return type(a)(self._ids(x) for x in a)
        return a

    def _blank(self, node):
        v = meta_value(node)
        if isinstance(v, torch.Tensor):
            return torch.full(tuple(v.shape), -1, dtype=torch.long)
        if isinstance(v, (list, tuple)):
            return [torch.full(tuple(t.shape), -1, dtype=torch.long) if isinstance(t, torch.Tensor) else None
                    for t in v]
        return None

    def _present(self, t) -> list[int]:
        if not isinstance(t, torch.Tensor):
            return []
        return [int(x) for x in torch.unique(t) if x >= 0]

    def _kill(self, t, why: str) -> None:
        for x in self._present(t):
            self.coords.kill(x, why)

    def _restrict(self, t, level: int, nonlinear: bool) -> None:
        for x in self._present(t):
            self.coords.restrict(x, level, nonlinear)

    def _channel(self, t: torch.Tensor, axis: int) -> torch.Tensor | None:
        """The coordinate of each position along ``axis`` if it is the same at every other index, else None."""
        moved = t.movedim(axis, -1).reshape(-1, t.shape[axis])
        if moved.shape[0] == 0:
            return None
        first = moved[0]
        return first if bool((moved == first).all()) else None

    def _produce(self, param: ParamRef | None, axis_in_param: int, n: int, level: int = 0):
        """Fresh coordinates along an output axis of size n, produced by ``param``'s axis."""
        ids = self.coords.new(n, level)
        if param is not None:
            if param.frozen or param.name in self.poisoned:
                for x in ids:
                    self.coords.kill(x, f"produced by {param.name}, which is frozen or used elsewhere")
            for pos, x in enumerate(ids):
                self.coords.attach(x, param.name, axis_in_param, pos, "produces")
        return torch.tensor(ids, dtype=torch.long)

    def _consume(self, ids: torch.Tensor | None, param: ParamRef, axis_in_param: int) -> None:
        if ids is None:
            return
        for pos, x in enumerate(ids.tolist()):
            if x >= 0:
                self.coords.attach(x, param.name, axis_in_param, pos, "consumes")
                if param.frozen:
                    self.coords.kill(x, f"consumed by frozen {param.name}")

    def _poison(self, args, why: str) -> None:
        for a in args:
            if isinstance(a, ParamRef):
                self.poisoned.add(a.name)
            elif isinstance(a, (list, tuple)):
                self._poison(a, why)
            elif isinstance(a, torch.Tensor):
                self._kill(a, why)

    @staticmethod
    def _broadcast(shape, t: torch.Tensor) -> torch.Tensor:
        return t.expand(shape) if t.dim() <= len(shape) else t

    def _unknown(self, node, name, args, kwargs):
        self.unknown.add(name)
        self._poison(list(args) + list(kwargs.values()), f"read by an op detection does not know ({name})")
        self.env[node.name] = self._blank(node)

    @staticmethod
    def _varies(t: torch.Tensor, axis: int) -> bool:
        """Whether the coordinates change along ``axis`` (then it is the axis they live on)."""
        if t.shape[axis] <= 1 or not (t >= 0).any():
            return False
        ref = t.narrow(axis % t.dim(), 0, 1)
        return bool((t != ref).any())
