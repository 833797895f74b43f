"""Orthogonal symmetries through a change of coordinates: g·x = φ⁻¹(R_g φ(x)), R_g ∈ SO(n).

If L(x) = ‖φ(x)‖² (or any function of ‖φ(x)‖) for a bijection φ, rotations of u = φ(x) keep L.
This gives the SO(2) actions of the teleportation test functions (D eq. C.1–C.10, teleport.md
§1.4.1) and the O(n) action on quadratics:

* ellipse   L = x₁² + a x₂²:                φ(x) = (x₁, √a x₂)
* Booth     L = (x₁+2x₂−7)² + (2x₁+x₂−5)²:  φ(x) = (x₁+2x₂−7, 2x₁+x₂−5)   (affine)
* Rosenbrock L = 100(x₁²−x₂)² + (x₁−1)²:    φ(x) = (10(x₁²−x₂), x₁−1),  φ⁻¹(u) = (u₂+1, (u₂+1)² − u₁/10)
* quadratic L = wᵀAw (A ≻ 0):                φ(w) = A^{1/2} w  (D eq. 4.33–4.34; transitive on level sets)

g = exp(Σ_k c_k B_k) with B_k the basis E_ij − E_ji (i < j) of so(n); for n = 2 the single
coefficient is the rotation angle.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from symdisc.layout import ParamLayout
from symdisc.linalg import expm
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.hidden import algebra_basis

Map = Callable[[torch.Tensor], torch.Tensor]


class ConjugatedRotation(Symmetry):
    """SO(n) acting on u = φ(θ): a(c, θ) = φ⁻¹(exp(Σ c_k B_k) φ(θ)); data-free."""

    def __init__(self, layout: ParamLayout, phi: Map, phi_inv: Map, name: str, source: str = ""):
        super().__init__(layout)
        self.n = layout.num_params
        self.phi, self.phi_inv, self.name, self.source = phi, phi_inv, name, source
        self.num_generators = self.n * (self.n - 1) // 2
        self.preserves = "loss"

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return algebra_basis("so", self.n, dtype, device)

    def act(self, coeffs, theta, X=None):
        self._check(theta, None)
        coeffs = coeffs.to(dtype=theta.dtype, device=theta.device)
        M = torch.einsum("k,kab->ab", coeffs, self.generators(theta.dtype, theta.device))
        return self.phi_inv(expm(M) @ self.phi(theta))

    def describe(self) -> dict:
        return {**super().describe(), "group": f"SO({self.n})", "source": self.source}
