"""Parameter layout: the map between a flat vector θ ∈ ℝ^p and named tensors.

Every functional in symdisc takes θ as one flat vector; the layout says which slice of θ is
which named tensor.  ``unflatten`` returns views (no copy), ``flatten`` concatenates.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from symdisc.errors import InputError


@dataclass(frozen=True)
class ParamLayout:
    """Ordered (name, shape) pairs; θ = concat(vec(T_name) for name in names)."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.shapes):
            raise InputError("layout: names and shapes differ in length")
        if len(set(self.names)) != len(self.names):
            raise InputError("layout: parameter names must be unique")
        offs, acc = [], 0
        for s in self.shapes:
            offs.append(acc)
            acc += math.prod(s)
        object.__setattr__(self, "offsets", tuple(offs))

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, Sequence[int]]]) -> ParamLayout:
        return cls(tuple(n for n, _ in pairs), tuple(tuple(int(d) for d in s) for _, s in pairs))

    @classmethod
    def of_module(cls, module) -> ParamLayout:
        """The layout of a torch.nn.Module's trainable parameters (``named_parameters`` order)."""
        return cls.from_pairs([(n, tuple(p.shape)) for n, p in module.named_parameters() if p.requires_grad])

    @property
    def num_params(self) -> int:
        """p = dim Param."""
        return sum(math.prod(s) for s in self.shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[self.index(name)]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"layout has no parameter {name!r} (has {', '.join(self.names)})") from None

    def slice(self, name: str) -> slice:
        i = self.index(name)
        return slice(self.offsets[i], self.offsets[i] + math.prod(self.shapes[i]))

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """θ (p,) → {name: view of shape}."""
        if theta.shape[-1:] != (self.num_params,):
            raise InputError(f"θ has shape {tuple(theta.shape)}, layout expects ({self.num_params},)")
        return {
            n: theta[o : o + math.prod(s)].reshape(s)
            for n, s, o in zip(self.names, self.shapes, self.offsets, strict=True)
        }

    def flatten(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """{name: tensor} → θ (p,), in layout order."""
        missing = [n for n in self.names if n not in tensors]
        if missing:
            raise InputError(f"missing parameters: {', '.join(missing)}")
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    def hash(self) -> str:
        """Stable digest of names and shapes (identifies a layout across processes)."""
        text = ";".join(f"{n}:{'x'.join(map(str, s))}" for n, s in zip(self.names, self.shapes, strict=True))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> list[dict]:
        return [
            {"name": n, "shape": list(s), "offset": o, "numel": math.prod(s)}
            for n, s, o in zip(self.names, self.shapes, self.offsets, strict=True)
        ]
