"""The Symmetry interface: the one seam between symmetries (known or learned) and their consumers.

A symmetry of L is a map θ ↦ a_X(g, θ) with L(a_X(g, θ), X) = L(θ, X).  For a Lie group with
generators h_1..h_k the element is g = exp(Σ_k c_k h_k) and

* ``act(c, θ, X)``       the finite action a_X(exp(Σ c_k h_k), θ);
* ``tangents(θ, X)``     the p×k matrix of fields ξ_k(θ) = D_g a_X|_{I,θ}(h_k) = ∂/∂c_k act(c, θ, X)|_{c=0};
* ``field(c, θ, X)``     ξ_h(θ) for h = Σ c_k h_k (one jvp);
* ``pullback(v, θ, X)``  Ξ(θ)ᵀ v ∈ ℝ^k, the adjoint of c ↦ ξ_c(θ): a gradient in θ as one in the coefficients
                         (one vjp; ∇_c J(act(c, θ))|₀ = Ξᵀ∇J(θ) by the chain rule);
* ``linearize(θ, X)``    both at one point as a ``TangentMap``, sharing what they have in common (a forward
                         pass, a pseudo-inverse);
* ``orbit(c, θ, ts, X)`` the curve t ↦ a_X(exp(t h), θ).

Discrete symmetries (permutations, sign flips) have ``num_generators == 0``; ``act`` then takes
the discrete analogue of a group element (see ``sample_element``, ``identity_element``), ``tangents``
is p×0 and ``field`` / ``orbit`` raise InputError.  tests/test_symmetry_contract.py checks every
implementation against this contract.
Consumers (census, teleportation, Ridge Rider, DCS) use only this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch.func import jacfwd, jvp, vjp, vmap

from symdisc.errors import InputError
from symdisc.layout import ParamLayout
from symdisc.linalg import DEFAULT_RTOL, numerical_rank

Level = Literal["output", "loss"]


@dataclass(frozen=True)
class TangentMap:
    """Ξ(θ) ∈ ℝ^{p×k} at one point (θ, X) as a matrix-free operator: ``field(c)`` = Ξc, ``pullback(v)`` = Ξᵀv."""

    field: Callable[[torch.Tensor], torch.Tensor]
    pullback: Callable[[torch.Tensor], torch.Tensor]


class Symmetry(ABC):
    """Action of a group on parameters θ ∈ ℝ^p (optionally depending on the data batch X).

    Attributes: ``name``; ``layout`` (the θ it acts on); ``num_generators`` k (0 if discrete);
    ``data_dependent`` (needs X); ``preserves`` ("output": f(g·θ, X) = f(θ, X); "loss": only the
    per-sample loss is kept); ``data_shape`` (the shape of X the action takes, when fixed; else None).
    """

    name: str = "symmetry"
    num_generators: int = 0
    data_dependent: bool = False
    preserves: Level = "output"
    data_shape: list[int] | None = None  # the batch shape (B, …) an action takes when it is fixed (learned ones)

    def __init__(self, layout: ParamLayout):
        self.layout = layout

    @property
    def discrete(self) -> bool:
        return self.num_generators == 0

    @abstractmethod
    def act(self, coeffs: torch.Tensor, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """a_X(g, θ) with g = exp(Σ_k c_k h_k) (or the discrete element ``coeffs``)."""

    def generators(self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> torch.Tensor:
        """The Lie algebra basis h_1..h_k in the group's own representation, shape (k, ...)."""
        raise NotImplementedError(f"{self.name} has no matrix generators")

    def _check(self, theta: torch.Tensor, X: torch.Tensor | None) -> None:
        if theta.shape != (self.layout.num_params,):
            raise InputError(
                f"{self.name}: θ has shape {tuple(theta.shape)}, expected ({self.layout.num_params},)"
            )
        if self.data_dependent and X is None:
            raise InputError(f"{self.name} is data-dependent: pass the data batch X")

    def tangents(self, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """Ξ(θ) ∈ ℝ^{p×k}, column k = ξ_k(θ) = D_g a_X|_{I,θ}(h_k) (forward-mode, exact)."""
        self._check(theta, X)
        if self.num_generators == 0:
            return theta.new_zeros(theta.shape[0], 0)
        zero = theta.new_zeros(self.num_generators)
        return jacfwd(lambda c: self.act(c, theta, X))(zero)

    def field(self, coeffs: torch.Tensor, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """ξ_h(θ) = d/dt a_X(exp(t h), θ)|_{t=0} for h = Σ c_k h_k (one jvp)."""
        self._check(theta, X)
        if self.num_generators == 0:
            raise InputError(f"{self.name} is discrete: it has no fields (its tangents are p×0)")
        zero = torch.zeros_like(coeffs)
        return jvp(lambda c: self.act(c, theta, X), (zero,), (coeffs,))[1]

    def pullback(self, v: torch.Tensor, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """Ξ(θ)ᵀ v ∈ ℝ^k for a cotangent v ∈ ℝ^p: ⟨pullback(v), c⟩ = ⟨v, field(c)⟩ for every c.  One vjp through
        the action at c = 0 when ``field`` is this class's jvp of it (no forward-over-reverse nesting), else the
        vjp of the linear map c ↦ field(c, θ, X), so that it is the adjoint of whatever ``field`` computes."""
        self._check(theta, X)
        if self.num_generators == 0:
            raise InputError(f"{self.name} is discrete: it has no fields (its tangents are p×0)")
        zero = theta.new_zeros(self.num_generators)
        through = self.act if type(self).field is Symmetry.field else self.field
        _, back = vjp(lambda c: through(c, theta, X), zero)
        return back(v.to(theta))[0]

    def linearize(self, theta: torch.Tensor, X: torch.Tensor | None = None) -> TangentMap:
        """The fields at (θ, X) as a ``TangentMap``; implementations override it to compute the point's shared
        quantities once (the default calls ``field`` and ``pullback``)."""
        self._check(theta, X)
        return TangentMap(lambda c: self.field(c, theta, X), lambda v: self.pullback(v, theta, X))

    def orbit(
        self, coeffs: torch.Tensor, theta: torch.Tensor, ts: torch.Tensor, X: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The orbit curve γ(t) = a_X(exp(t h), θ) at each t in ``ts``: shape (len(ts), p)."""
        self._check(theta, X)
        if self.num_generators == 0:
            raise InputError(f"{self.name} is discrete: it has no orbit curves")
        return vmap(lambda t: self.act(t * coeffs, theta, X))(ts)

    def identity_element(self) -> torch.Tensor | None:
        """The element ``act`` maps to the identity: c = 0 (continuous); None for a discrete group that does not say."""
        return None if self.discrete else torch.zeros(self.num_generators, dtype=torch.float64)

    def sample_element(self, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
        """A random group element: coefficients c ~ N(0, scale²) (continuous) or a discrete element."""
        return scale * torch.randn(self.num_generators, generator=generator, dtype=torch.float64)

    def exactness(self, theta: torch.Tensor, X: torch.Tensor | None = None) -> dict:
        """Whether ``act`` keeps the loss exactly at (θ, X): ``{"exact": True | False | None
        (unknown, e.g. learned), "condition": why}``.  Analytic data-free actions are exact."""
        return {"exact": True, "condition": "exact for all θ and data (analytic action)"}

    def describe(self) -> dict:
        return {
            "name": self.name,
            "num_generators": self.num_generators,
            "discrete": self.discrete,
            "data_dependent": self.data_dependent,
            "preserves": self.preserves,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, k={self.num_generators})"


def stacked_tangents(
    symmetries: list[Symmetry], theta: torch.Tensor, X: torch.Tensor | None = None
) -> torch.Tensor:
    """[Ξ_1(θ) | Ξ_2(θ) | …] ∈ ℝ^{p × Σk}: the fields of several symmetries side by side."""
    cols = [s.tangents(theta, X if s.data_dependent else None) for s in symmetries]
    return torch.cat(cols, dim=1) if cols else theta.new_zeros(theta.shape[0], 0)


def orbit_dimension(tangents: torch.Tensor, rtol: float = DEFAULT_RTOL) -> int:
    """dim span of the fields = numerical rank of Ξ(θ) (σ_i > rtol·σ_max)."""
    return numerical_rank(tangents, rtol)
