"""Where a source block sits in a target chain, and the lifting conditions its structure must meet.

A source with layers 1..l (widths n, h_1, …, m) placed at target layer i covers target layers i..k, k = i+l−1:

* source W_q ↔ target W_{i+q−1} (biases likewise); with ``units`` S (one hidden layer only, Cor. 6.4.2):
  W_1 ↔ W_i[S, :], b_1 ↔ b_i[S], W_2 ↔ W_{i+1}[:, S], b_2 ↔ b_{i+1} (a bias shared by all units is in the block);
* the block's input is H_{i−1}, the target's own forward of layers < i (Cor. 6.4.3: h(θ_1, X) = φ_{i−1}).

Conditions (Prop. 6.4.1: L must depend on the block's parameters only through the block's output):
the block's hidden layers compute what the source's do (same activation, no skip, no normalisation across
units the source lacks); no residual link carries a block activation past its last layer (fig. 6.2c); with a
subset of units, every op on the block's hidden layer is row-wise (Cor. 6.4.2).  Mismatched widths, biases or
activations are input errors: the block would compute another function.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch

from symdisc.errors import InputError
from symdisc.lifting.chain import Chain

Padding = Literal["fixed", "random"]


@dataclass(frozen=True)
class Placement:
    """``layer`` i (1-based) where the block starts; ``units`` S of layer i that carry the source's hidden units
    (None: the first h); ``batch`` d′ the lifted action takes and ``pad_to`` d the batch the source takes (a
    learned source: its training batch) — d − d′ dummy points are appended (Prop. 6.4.4), ``fixed`` (drawn once
    from the source's data distribution with ``pad_seed``) or ``random`` (fresh at every call: a negative
    control; it breaks the group axioms)."""

    layer: int = 1
    units: tuple[int, ...] | None = None
    batch: int | None = None
    pad_to: int | None = None
    padding: Padding = "fixed"
    pad_seed: int = 0

    def __post_init__(self):
        if self.layer < 1:
            raise InputError(f"layer must be ≥ 1 (the target's linear layers count from 1), got {self.layer}")
        if self.padding not in ("fixed", "random"):
            raise InputError(f"padding must be fixed or random, got {self.padding!r}")
        for what, v in (("batch", self.batch), ("pad_to", self.pad_to)):
            if v is not None and v < 1:
                raise InputError(f"{what} must be ≥ 1, got {v}")
        if self.units is not None:
            object.__setattr__(self, "units", tuple(int(u) for u in self.units))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["units"] = None if self.units is None else list(self.units)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Placement:
        return cls(**{k: (tuple(v) if k == "units" and v is not None else v) for k, v in d.items()})


def condition(name: str, ok: bool, detail: str, ref: str) -> dict:
    return {"condition": name, "ok": bool(ok), "detail": detail, "reference": ref}


@dataclass(frozen=True)
class Block:
    """The placed block: ``index`` (p_s,) with θ_source = θ_target[index], the target ``units`` of its hidden layer,
    the target ``layers`` (i, k), ``kinds`` of lift and the structural ``conditions``."""

    index: torch.Tensor
    units: tuple[int, ...] | None
    layers: tuple[int, int]
    kinds: tuple[str, ...]
    conditions: tuple[dict, ...]


def place(source: Chain, target: Chain, placement: Placement) -> Block:
    """The block of ``source`` at ``placement`` in ``target``; InputError when it cannot sit there at all."""
    depth, i = source.depth, placement.layer
    k = i + depth - 1
    if k > target.depth:
        raise InputError(f"the source's {depth} layers do not fit from layer {i} of {target.arch.name}, which has "
                         f"{target.depth} linear layers (choose a layer ≤ {target.depth - depth + 1})")
    if target.dims[i - 1] != source.dims[0] or target.dims[k] != source.dims[-1]:
        raise InputError(f"the source maps width {source.dims[0]} to {source.dims[-1]}; target layers {i}..{k} map "
                         f"{target.dims[i - 1]} to {target.dims[k]} (widths {list(target.dims)})")
    units = _units(source, target, placement, i)
    for q in range(depth):
        if (source.biases[q] is None) != (target.biases[i - 1 + q] is None):
            raise InputError(f"source layer {q + 1} {'has' if source.biases[q] else 'has no'} bias, target layer "
                             f"{i + q} {'has' if target.biases[i - 1 + q] else 'has none'}")
    conditions = [condition("block", True, f"target layers {i}..{k} hold the source's {depth} layers"
                            + (f", its hidden units on units {list(units)} of layer {i}" if units else ""),
                            "Prop. 6.4.1")]
    conditions += _hidden_conditions(source, target, i, units)
    wider = units is not None and len(units) < target.dims[i]
    kinds = (("wider",) if wider else ()) + (("deeper",) if target.depth > depth else ())
    return Block(_index(source, target, i, units), units, (i, k), kinds, tuple(conditions))


def _units(source: Chain, target: Chain, placement: Placement, i: int) -> tuple[int, ...] | None:
    """The target units of the block's hidden layer (one hidden layer), or None (every width matches)."""
    depth = source.depth
    if depth == 2:
        h, width = source.dims[1], target.dims[i]
        units = placement.units if placement.units is not None else tuple(range(h))
        if len(units) != h or len(set(units)) != h or not all(0 <= u < width for u in units):
            raise InputError(f"units must be {h} distinct indices of layer {i}'s {width} units "
                             f"(the source's hidden width), got {list(units)}")
        return units
    if placement.units is not None:
        raise InputError(f"units (a wider placement) need a source with one hidden layer; this one has {depth - 1}")
    if tuple(source.dims[1:-1]) != tuple(target.dims[i:i + depth - 1]):
        raise InputError(f"the source's hidden widths {list(source.dims[1:-1])} differ from target layers "
                         f"{i}..{i + depth - 2} ({list(target.dims[i:i + depth - 1])}); a wider placement needs a "
                         "source with one hidden layer")
    return None


def _hidden_conditions(source: Chain, target: Chain, i: int, units) -> list[dict]:
    depth, k = source.depth, i + source.depth - 1
    skip, norm, rowwise = [], [], []
    for q in range(depth - 1):
        s, t = source.hidden[q], target.hidden[i - 1 + q]
        j = i + q  # the target hidden layer
        if s.acts != t.acts:
            raise InputError(f"target hidden layer {j} applies {'+'.join(t.acts)}, the source's applies "
                             f"{'+'.join(s.acts)}: the block would compute another function")
        if t.residual != s.residual:
            skip.append(f"hidden layer {j} {'adds' if t.residual else 'lacks'} the residual H_{j - 1} "
                        f"{'the source lacks' if t.residual else 'of the source'}")
        if t.norm and t.norm != s.norm:
            norm.append(f"{t.norm} across the units of hidden layer {j}")
        if units is not None and len(units) < target.dims[j] and not t.rowwise and not t.norm:
            rowwise.append(f"hidden layer {j} applies {'+'.join(t.ops)}, which mixes units")
    if k < target.depth and target.hidden[k - 1].residual:
        skip.append(f"the residual link of layer {k} carries the block's hidden activation H_{k - 1} past the "
                    "block (fig. 6.2c)")
    out = [condition("no skip connection into or out of the block", not skip,
                     "; ".join(skip) or "the block's activations reach the rest only through its output",
                     "Prop. 6.4.1, fig. 6.2c"),
           condition("no normalisation across the block's hidden units", not norm,
                     "; ".join(norm) or "none", "Cor. 6.4.2 / Prop. 6.4.1")]
    if units is not None and len(units) < target.dims[i]:
        out.append(condition("row-wise ops on the widened layer", not rowwise,
                             "; ".join(rowwise) or f"hidden layer {i}: {'+'.join(target.hidden[i - 1].ops)}",
                             "Cor. 6.4.2"))
    return out


def _index(source: Chain, target: Chain, i: int, units) -> torch.Tensor:
    """θ_source = θ_target[index]: the target's positions, cut and laid out as the source's θ."""
    P = target.arch.layout.unflatten(torch.arange(target.arch.num_params))
    S = None if units is None else torch.tensor(units)
    parts = {}
    for q in range(source.depth):
        W, b = P[target.weights[i - 1 + q]], target.biases[i - 1 + q]
        bias = None if b is None else P[b]
        if S is not None and q == 0:
            W, bias = W[S], None if bias is None else bias[S]
        elif S is not None and q == 1:
            W = W[:, S]
        parts[source.weights[q]] = W
        if source.biases[q] is not None:
            parts[source.biases[q]] = bias
    for name, t in parts.items():
        if tuple(t.shape) != source.arch.layout.shape(name):
            raise InputError(f"block tensor {name}: shape {tuple(t.shape)}, source expects "
                             f"{source.arch.layout.shape(name)}")
    return source.arch.layout.flatten(parts)
