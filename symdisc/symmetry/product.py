"""Several symmetries applied in turn: a_X((g_1, …, g_n), θ) = a^n_X(g_n, … a^1_X(g_1, θ) …).

The coefficient vector is the concatenation (c_1, …, c_n), so the fields are the columns of each
factor's fields at θ (at c = 0 every later factor is the identity).  This is how teleportation
"teleports all layers by optimizing on a list of T's concurrently" (D §5, teleport.md §1.2): the
data-dependent actions of successive hidden layers are applied bottom to top, each seeing the
hidden activations of the already transformed lower layers.  Exact whenever every factor is
exact on the batch.
"""

from __future__ import annotations

import torch

from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry, TangentMap


class ProductSymmetry(Symmetry):
    """The factors act in the order given; ``act`` splits the coefficients by each factor's k."""

    def __init__(self, factors: list[Symmetry], name: str | None = None):
        if not factors:
            raise InputError("a product of symmetries needs at least one factor")
        layout = factors[0].layout
        if any(f.layout != layout for f in factors):
            raise InputError("the factors of a product act on different parameter layouts")
        if any(f.discrete for f in factors):
            raise InputError("a product takes continuous symmetries only")
        super().__init__(layout)
        self.factors = list(factors)
        self.num_generators = sum(f.num_generators for f in factors)
        self.data_dependent = any(f.data_dependent for f in factors)
        self.preserves = "output" if all(f.preserves == "output" for f in factors) else "loss"
        self.name = name or " ∘ ".join(f.name for f in reversed(factors))

    def split(self, coeffs: torch.Tensor) -> list[torch.Tensor]:
        if coeffs.shape[-1] != self.num_generators:
            raise InputError(f"{self.name}: expected {self.num_generators} coefficients, got {coeffs.shape[-1]}")
        return list(torch.split(coeffs, [f.num_generators for f in self.factors], dim=-1))

    def act(self, coeffs, theta, X=None):
        self._check(theta, X)
        for f, c in zip(self.factors, self.split(coeffs), strict=True):
            theta = f.act(c, theta, X if f.data_dependent else None)
        return theta

    closed_form_field = True  # field(): the sum of the factors' fields (False: a jvp through act; benchmarks)

    def field(self, coeffs, theta, X=None):
        """ξ_h(θ) = Σ_i ξ_{h_i}(θ): at c = 0 every factor's inner point is θ itself (chain rule), so the product's
        field is the sum of the factors' own fields (each may have a closed form)."""
        if not self.closed_form_field:
            return super().field(coeffs, theta, X)
        return self.linearize(theta, X).field(coeffs)

    def pullback(self, v, theta, X=None):
        """Ξᵀv = [Ξ_1ᵀv; Ξ_2ᵀv; …]: the product's tangents are its factors' side by side."""
        if not self.closed_form_field:
            return super().pullback(v, theta, X)
        return self.linearize(theta, X).pullback(v)

    def linearize(self, theta, X=None) -> TangentMap:
        if not self.closed_form_field:
            return super().linearize(theta, X)
        self._check(theta, X)
        maps = [f.linearize(theta, X if f.data_dependent else None) for f in self.factors]
        return TangentMap(lambda c: sum(m.field(ci) for m, ci in zip(maps, self.split(c.to(theta)), strict=True)),
                          lambda v: torch.cat([m.pullback(v) for m in maps]))

    def exactness(self, theta, X=None) -> dict:
        reports = [f.exactness(theta, X if f.data_dependent else None) for f in self.factors]
        flags = [r["exact"] for r in reports]
        exact = None if None in flags else all(flags)
        return {"exact": exact, "condition": "; ".join(f"{f.name}: {r['condition']}"
                                                      for f, r in zip(self.factors, reports, strict=True))}

    def describe(self) -> dict:
        return {**super().describe(), "group": "product", "factors": [f.describe() for f in self.factors]}


def hidden_layers_gl(arch, form: str = "pinv") -> ProductSymmetry:
    """All hidden layers of ``arch`` at once: the product of its data-dependent GL actions of ``form``
    (``pinv`` = action 2, D eq. 4.16; ``sigma_inverse`` = action 1, D eq. 4.13), bottom to top."""
    factors = [s for s in arch.known_symmetries() if s.data_dependent and s.describe().get("form") == form]
    if not factors:
        raise InputError(f"{arch.name} has no data-dependent GL action of form {form!r} "
                           "(needs an MLP with a pointwise activation; sigma_inverse also a bijective one)")
    return ProductSymmetry(factors, name=f"GL[{form}] of all hidden layers")
