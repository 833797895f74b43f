"""A move of θ along a group orbit, and the transport of optimizer state it induces.

A move is a composite θ' = m_n ∘ … ∘ m_1 (θ) of maps m_i = a(g_i, ·) taken at points θ_{i-1}.  The
move owns the transport of vectors along it, as a manifold owns its transport (geoopt's
``retr_transp``): the optimizer never needs to know which group moved it.

* covectors (gradients, first moments) transform by the inverse transpose of the Jacobian J of
  the move: ∇L(g·θ) = J^{-T} ∇L(θ) for an invariant L (P4).  Per map, Jᵀy = v is solved by the
  Richardson iteration y ← y + (v − Jᵀy) (one vjp each; J = I + O(‖c‖) for the small steps of a
  teleport), with a dense solve for p ≤ ``DENSE_LIMIT`` when it does not converge;
* ``transport_state`` applies a policy to an optimizer's per-parameter buffers:
  ``transform`` maps first moments (momentum_buffer, exp_avg, grad_avg) as covectors and keeps
  second moments and step counts (per-coordinate magnitudes have no transformation law under a
  non-diagonal J); ``keep`` leaves everything; ``reset`` zeroes the first moments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import torch
from torch.func import jacfwd, vjp

from symdisc.errors import InputError, NumericalError

StatePolicy = Literal["transform", "keep", "reset"]
STATE_POLICIES = ("transform", "keep", "reset")
FIRST_MOMENTS = ("momentum_buffer", "exp_avg", "grad_avg")
DENSE_LIMIT = 4096  # the dense fallback forms p×p Jacobians up to this p
Map = Callable[[torch.Tensor], torch.Tensor]


def check_policy(policy: str) -> str:
    if policy not in STATE_POLICIES:
        raise InputError(f"unknown state policy {policy!r}; choose {', '.join(STATE_POLICIES)}")
    return policy


def richardson(fn: Map, before: torch.Tensor, v: torch.Tensor, rtol: float = 1e-12,
               max_iter: int = 30) -> torch.Tensor | None:
    """y with Jᵀy = v (J = ∂fn/∂θ at ``before``) by y ← y + (v − Jᵀy), or None if it does not converge."""
    _, pull = vjp(fn, before)
    y, scale = v, float(v.norm()) or 1.0
    for _ in range(max_iter):
        r = v - pull(y)[0]
        if not torch.isfinite(r).all():
            return None
        if float(r.norm()) <= rtol * scale:
            return y
        y = y + r
    return None


class GroupMove:
    """Base of every orbit move.  Subclasses set ``theta`` (θ') and yield their ``maps()``."""

    theta: torch.Tensor

    def maps(self) -> Iterable[tuple[Map, torch.Tensor]]:
        """The (map, point it was applied at) pairs that compose the move, first to last."""
        return ()

    def transport_covector(self, v: torch.Tensor, method: str = "auto") -> torch.Tensor:
        """J^{-T} v for the composite move (``iterative``, ``solve`` or ``auto`` = the first, then the second)."""
        if method not in ("auto", "iterative", "solve"):
            raise InputError(f"unknown transport method {method!r}; choose auto, iterative or solve")
        for fn, before in self.maps():
            y = richardson(fn, before, v.to(before)) if method in ("auto", "iterative") else None
            if y is None and method == "iterative":
                raise NumericalError("transporting a covector: the iteration did not converge (use method='solve')")
            if y is None:
                if v.numel() > DENSE_LIMIT:
                    raise NumericalError(f"transporting a covector: the iteration did not converge and p = "
                                         f"{v.numel()} > {DENSE_LIMIT} is too large for a dense solve")
                J = jacfwd(fn)(before)
                y = torch.linalg.solve(J.T, v.to(J))
            v = y
        return v

    def transport_state(self, buffers: Mapping[str, torch.Tensor], policy: StatePolicy) -> dict[str, torch.Tensor]:
        """New values of the flat per-parameter buffers {key: vector} that ``policy`` changes (others omitted).

        Raises NumericalError (and changes nothing) when a transported buffer is not finite."""
        check_policy(policy)
        if policy == "keep":
            return {}
        out = {}
        for key, m in buffers.items():
            if key not in FIRST_MOMENTS:
                continue
            new = self.transport_covector(m.to(self.theta)).to(m) if policy == "transform" else torch.zeros_like(m)
            if not torch.isfinite(new).all():
                raise NumericalError(f"transporting the optimizer's {key} gave non-finite values; state unchanged")
            out[key] = new
        return out
