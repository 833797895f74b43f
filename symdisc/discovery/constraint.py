"""The null-space constraint: fields projected onto the census null space of the outputs at (θ, X).

With A = Ĵ = D_θ f(θ, X) ∈ ℝ^{N×p} (N = B·outputs), rows normalised,

    Π_ε(θ, X) v = v − Aᵀ (A Aᵀ + ε I)⁻¹ A v

is the Tikhonov-smoothed orthogonal projector onto null A: with A = U S Vᵀ it is V diag(ε/(s² + ε)) Vᵀ on
the row space and the identity on null A.  Hence ‖A Π_ε v‖ ≤ (√ε / 2)‖v‖ for every v (s·ε/(s²+ε) ≤ √ε/2),
whatever the rank of A, and Π_ε is smooth in θ (no SVD to differentiate): the nested derivatives of
the bracket and a teleport's gradient through the flow stay finite.  ε = max(rtol², 8·N·ε_mach) (``ridge``:
below the Gram's rounding level AAᵀ + εI is not positive definite in floating point) and Ĵ has unit rows,
so the invariance residual |Ĵ_i·Πv|/‖v‖ is at most √ε/2 (rtol/2 for N ≤ 5, 4.5e-7 at N = 448).  The Gram is
solved in float64 whatever θ's dtype (a float32 Gram loses the small singular values that decide the rank).
The N×N Gram is solved even when N > p: the equal p×p form ε(AᵀA + εI)⁻¹v has condition ‖A‖²/ε ≈ 10¹⁶ on the null space
itself and returned a vector in null A but not the orthogonal projection (measured: error 6 on ‖v‖ ≈ 10),
while here the solve's error lies in null Aᵀ, which Aᵀ annihilates.

A field projected this way preserves the outputs on X to first order at every θ, so its flow
(``symdisc.flow``, RK4) keeps f(·, X) fixed up to the integrator's error: the finite action of the constrained
learned symmetry.  ``retract`` puts each RK4 step back on the level set {θ : f(θ, X) = f(θ₀, X)} by
Gauss–Newton, θ ← θ − Ĵᵀ(ĴĴᵀ + εI)⁻¹ D⁻¹(f(θ, X) − f(θ₀, X)) (D = the row norms of D_θf): the flow then
keeps the outputs where the field is only piecewise smooth (on a ReLU-family net the plain flow slides along
a kink, where a pre-activation changes sign, and loses them).  It is the output level of the census: a
loss-level null space needs the targets Y, which an action a_X(g, θ) does not see.
"""

from __future__ import annotations

import torch

from symdisc.architecture import Architecture
from symdisc.jacobians import output_jacobian

RTOL = 1e-7
RIDGE_FLOOR = 8


class NullConstraint:
    """Π(θ, X): projection onto the output null space of ``arch`` at (θ, X) (module docstring)."""

    def __init__(self, arch: Architecture, rtol: float = RTOL):
        self.arch, self.rtol = arch, rtol

    def _arch(self, theta: torch.Tensor) -> Architecture:
        return self.arch if (self.arch.dtype, self.arch.device) == (theta.dtype, theta.device) \
            else self.arch.to(dtype=theta.dtype, device=theta.device)

    @staticmethod
    def _x(X: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return X.to(theta) if X.is_floating_point() else X

    def _unit_rows(self, theta: torch.Tensor, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        J = output_jacobian(self._arch(theta), theta, self._x(X, theta)).to(torch.float64)
        norms = J.norm(dim=1, keepdim=True).clamp_min(1e-300)
        return J / norms, norms[:, 0]

    def rows(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Ĵ = D_θ f(θ, X) with unit rows (zero rows stay zero), in float64."""
        return self._unit_rows(theta, X)[0]

    def ridge(self, rows: int) -> float:
        """ε = max(rtol², RIDGE_FLOOR·N·ε_mach): the computed Gram's zero eigenvalues are rounded to ±N·ε_mach, so a
        smaller ε leaves AAᵀ + εI indefinite in floating point (measured: −2.5e-14 at N = 448, rtol² = 1e-14), and
        the Cholesky solve needs it positive definite."""
        return max(self.rtol ** 2, RIDGE_FLOOR * rows * torch.finfo(torch.float64).eps)

    def _solve(self, A: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        """Aᵀ(AAᵀ + εI)⁻¹ R (float64), by Cholesky: the ridge makes the Gram positive definite, and under vmap the
        LU path (``linalg.solve``) failed on a positive definite batch with invalid pivots (torch 2.13, CPU,
        depending on what ran before it)."""
        G = A @ A.T + self.ridge(A.shape[0]) * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        return A.T @ torch.cholesky_solve(R, torch.linalg.cholesky(G))

    def project(self, theta: torch.Tensor, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """Π V for V of shape (p,) or (p, m)."""
        A = self.rows(theta, X)
        v = V.to(torch.float64)
        vec = v.dim() == 1
        v = v[:, None] if vec else v
        out = (v - self._solve(A, A @ v)).to(V.dtype)
        return out[:, 0] if vec else out

    def outputs(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """f(θ, X) flattened (the level the retraction returns to)."""
        return self._arch(theta).forward(theta, self._x(X, theta)).reshape(-1)

    def retract(self, theta: torch.Tensor, X: torch.Tensor, target: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` Gauss–Newton steps from θ towards {θ' : f(θ', X) = target} (module docstring)."""
        for _ in range(steps):
            A, norms = self._unit_rows(theta, X)
            r = (self.outputs(theta, X) - target).to(torch.float64) / norms
            theta = theta - self._solve(A, r[:, None])[:, 0].to(theta.dtype)
        return theta
