"""What verification needs beyond act / field / tangents, taken from what a symmetry offers.

* composition  a(g₂g₁, θ) with g_i = exp(M_i): the coordinates of log(exp(M₂) exp(M₁)) in the basis of
               ``generators()`` — matrices (k, d, d): principal matrix logarithm; vectors (k, d): a vector
               group (ℝ^d, +), so c₁ + c₂ — factor by factor in a product; a learned ``act`` takes the
               product exp(M₂)exp(M₁) itself;
* bracket      ξ_[h_a,h_b](θ): the coordinates of [h_a, h_b] in the same basis (0 in a vector group and
               across the factors of a product); a learned symmetry: ``algebra_field`` of the commutator
               matrix, which need not lie in the learned span;
* comparator   a random R ∈ gl(p) for the curves: through a learned action's own encoding, else (and for a
               null-constrained action, whose every field is invariant by construction) the linear action
               exp(tR)θ with field Rθ.

What a symmetry cannot supply is None, and ``missing`` records why (metric → reason).
"""

from __future__ import annotations

import scipy.linalg
import torch

from symdisc.discovery.learned import LearnedSymmetry
from symdisc.linalg import expm, lstsq
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.product import ProductSymmetry

COMPOSITION, BRACKET = "composition_error_median", "bracket_residual_median"
SPAN_RTOL = 1e-8  # an algebra element lies in the span of the generators when the residual is below this


class Probe:
    """Composition, bracket and random comparator of a symmetry through its ``generators()`` basis."""

    def __init__(self, sym: Symmetry):
        self.sym = sym
        self.missing: dict[str, str] = {}

    def _null(self, metric: str, reason: str) -> None:
        self.missing.setdefault(metric, reason)

    def _basis(self, metric: str) -> torch.Tensor | None:
        try:
            return self.sym.generators(torch.float64)
        except NotImplementedError:
            return self._null(metric, f"{self.sym.name} exposes no generator basis")

    def _coordinates(self, A: torch.Tensor, B: torch.Tensor, metric: str, what: str) -> torch.Tensor | None:
        """c with Σ c_k B_k = A (least squares), or None when A is not in span{B_k}."""
        flat = B.reshape(B.shape[0], -1).T
        c = lstsq(flat, A.reshape(-1, 1))[:, 0]
        if (flat @ c - A.reshape(-1)).norm() > SPAN_RTOL * A.norm() + 1e-300:
            return self._null(metric, f"{what} leaves the span of the generators of {self.sym.name}")
        return c

    def bracket_coefficients(self, a: int, b: int) -> torch.Tensor | None:
        """Structure constants: c with [h_a, h_b] = Σ c_k h_k."""
        B = self._basis(BRACKET)
        if B is None or B.dim() == 2:  # a vector group is abelian
            return None if B is None else B.new_zeros(B.shape[0])
        return self._coordinates(B[a] @ B[b] - B[b] @ B[a], B, BRACKET, "[h_a, h_b]")

    def product_coefficients(self, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor | None:
        """c with exp(Σ c_k h_k) = exp(Σ c2_k h_k) exp(Σ c1_k h_k)."""
        B = self._basis(COMPOSITION)
        if B is None or B.dim() == 2:
            return None if B is None else c1 + c2
        g = expm(torch.einsum("k,kab->ab", c2, B)) @ expm(torch.einsum("k,kab->ab", c1, B))
        log = scipy.linalg.logm(g.numpy())
        if abs(log.imag).max(initial=0.0) > SPAN_RTOL:
            return self._null(COMPOSITION, f"g₂g₁ has no real logarithm in the group of {self.sym.name}")
        return self._coordinates(torch.from_numpy(log.real.copy()), B, COMPOSITION, "log(g₂g₁)")

    def composed(self, c1, c2, theta, X) -> torch.Tensor | None:
        """a_X(g₂g₁, θ)."""
        c = self.product_coefficients(c1.double().cpu(), c2.double().cpu())
        return None if c is None else self.sym.act(c.to(theta), theta, X)

    def bracket_field(self, a: int, b: int, theta, X) -> torch.Tensor | None:
        """ξ_[h_a,h_b](θ)."""
        c = self.bracket_coefficients(a, b)
        return None if c is None else self.sym.field(c.to(theta), theta, X)

    def random_field(self, R, theta, X) -> torch.Tensor:
        return R @ theta

    def random_point(self, R, t, theta, X) -> torch.Tensor:
        return expm(t * R) @ theta


class ProductProbe(Probe):
    """The product's algebra is the direct sum of its factors' (elements of different factors commute)."""

    def __init__(self, sym: ProductSymmetry):
        super().__init__(sym)
        self.parts = [probe_for(f) for f in sym.factors]
        self.owner = [(i, j) for i, f in enumerate(sym.factors) for j in range(f.num_generators)]

    def _from_part(self, i: int, metric: str, c: torch.Tensor | None) -> torch.Tensor | None:
        if c is None:
            self._null(metric, f"{self.sym.factors[i].name}: {self.parts[i].missing.get(metric, 'unavailable')}")
        return c

    def bracket_coefficients(self, a, b):
        (i, a_i), (j, b_j) = self.owner[a], self.owner[b]
        out = torch.zeros(self.sym.num_generators, dtype=torch.float64)
        if i != j:
            return out
        c = self._from_part(i, BRACKET, self.parts[i].bracket_coefficients(a_i, b_j))
        if c is None:
            return None
        start = sum(f.num_generators for f in self.sym.factors[:i])
        out[start:start + c.shape[0]] = c
        return out

    def product_coefficients(self, c1, c2):
        pairs = zip(self.parts, self.sym.split(c1), self.sym.split(c2), strict=True)
        pieces = [self._from_part(i, COMPOSITION, part.product_coefficients(x, y))
                  for i, (part, x, y) in enumerate(pairs)]
        return None if any(p is None for p in pieces) else torch.cat(pieces)


class LearnedProbe(Probe):
    """A learned action evaluates any algebra element and any product of exponentials directly."""

    def bracket_coefficients(self, a, b):
        return self._null(BRACKET, "the learned span need not be closed under the bracket")

    def product_coefficients(self, c1, c2):
        return self._null(COMPOSITION, "a learned group element is a product of exponentials, not one")

    def composed(self, c1, c2, theta, X):
        if self.sym.constrained:
            return self._null(COMPOSITION, "the null-constrained action applies exp(M₂)exp(M₁) as the flow of ξ_M₁ "
                                           "then of ξ_M₂, so composition holds by definition; the bracket residual "
                                           "measures its group law")
        return self.sym.act(torch.stack([c1, c2]), theta, X)

    def bracket_field(self, a, b, theta, X):
        H = self.sym.generators(theta.dtype, theta.device)
        M = H[a] @ H[b] - H[b] @ H[a]
        return self.sym.algebra_field(M @ theta, M.reshape(-1), theta, X)

    def random_field(self, R, theta, X):
        if self.sym.constrained:  # its every field is invariant by construction: compare with a free move
            return super().random_field(R, theta, X)
        return self.sym.algebra_field(R @ theta, R.reshape(-1), theta, X)

    def random_point(self, R, t, theta, X):
        if self.sym.constrained:
            return super().random_point(R, t, theta, X)
        return self.sym.act_algebra(t * R, theta, X)


def probe_for(sym: Symmetry) -> Probe:
    if isinstance(sym, LearnedSymmetry):
        return LearnedProbe(sym)
    return ProductProbe(sym) if isinstance(sym, ProductSymmetry) else Probe(sym)
