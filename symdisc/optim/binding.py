"""Binding an optimizer's parameters to a symmetry's layout: θ ⇄ tensors, in one place.

θ ∈ ℝ^p is the concatenation of the bound tensors in layout order (``ParamLayout``).  The tensors
are a module's parameters (looked up by the layout's names), a list of tensors with the layout's
shapes, or one flat tensor of p numbers.  Per-parameter optimizer state (momentum, Adam moments)
is gathered into and scattered from flat vectors the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from symdisc.errors import InputError
from symdisc.layout import ParamLayout


class ParamBinding:
    """The tensors θ is made of, in layout order; ``theta()`` reads them, ``assign(θ)`` writes them."""

    def __init__(self, layout: ParamLayout, model: nn.Module | None = None,
                 params: torch.Tensor | Sequence[torch.Tensor] | None = None, owner: str = "the symmetry"):
        if model is None and params is None:
            raise InputError("pass the model (nn.Module) or the parameter tensors θ is made of")
        self.layout = layout
        if model is not None:
            named = dict(model.named_parameters())
            missing = [n for n in layout.names if n not in named]
            if missing:
                raise InputError(f"{owner} acts on parameters {', '.join(missing)} that the model does not have "
                                 f"(model: {', '.join(named) or 'none'}): it belongs to another model")
            tensors = [named[n] for n in layout.names]
        else:
            tensors = [params] if isinstance(params, torch.Tensor) else list(params)
        flat = len(tensors) == 1 and tensors[0].dim() == 1 and tensors[0].numel() == layout.num_params
        shapes = [tuple(t.shape) for t in tensors]
        if not flat and shapes != list(layout.shapes):
            raise InputError(f"{owner} acts on a layout of shapes {list(layout.shapes)}, the parameters have "
                             f"{shapes}: it does not match this model")
        self.tensors: list[torch.Tensor] = tensors

    def theta(self) -> torch.Tensor:
        """The current θ (flat, layout order, detached copy)."""
        return torch.cat([t.detach().reshape(-1) for t in self.tensors])

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A flat vector as views shaped like the bound tensors."""
        sizes = [t.numel() for t in self.tensors]
        return [part.reshape(t.shape) for part, t in zip(torch.split(flat, sizes), self.tensors, strict=True)]

    @torch.no_grad()
    def assign(self, theta: torch.Tensor) -> None:
        """Write θ into the bound tensors (in place, keeping their dtype and device)."""
        for t, part in zip(self.tensors, self.split(theta), strict=True):
            t.copy_(part)

    def gather(self, state: Mapping[torch.Tensor, dict], key: str) -> torch.Tensor | None:
        """The per-parameter state ``key`` of every bound tensor as one flat vector (None if any lacks it)."""
        entries = [state.get(t, {}) for t in self.tensors]
        if not all(key in s and isinstance(s[key], torch.Tensor) and s[key].shape == t.shape
                   for s, t in zip(entries, self.tensors, strict=True)):
            return None
        return torch.cat([s[key].detach().reshape(-1) for s in entries])

    @torch.no_grad()
    def scatter(self, state: Mapping[torch.Tensor, dict], key: str, flat: torch.Tensor) -> None:
        """Write a flat vector into the per-parameter state ``key`` (in place)."""
        for t, part in zip(self.tensors, self.split(flat), strict=True):
            state[t][key].copy_(part)
