"""The null-space constraint: fields projected onto the census null space of the outputs at (θ, X).

With A = Ĵ = D_θ f(θ, X) ∈ ℝ^{N×p} (N = B·outputs), rows normalised,

    Π_ε(θ, X) v = v − Aᵀ (A Aᵀ + ε I)⁻¹ A v

is the Tikhonov-smoothed orthogonal projector onto null A: with A = U S Vᵀ it is V diag(ε/(s² + ε)) Vᵀ on
the row space and the identity on null A.  Hence ‖A Π_ε v‖ ≤ (√ε / 2)‖v‖ for every v (s·ε/(s²+ε) ≤ √ε/2),
whatever the rank of A, and Π_ε is smooth in θ (no SVD to differentiate): the nested derivatives of
the bracket and a teleport's gradient through the flow stay finite.  ε = rtol² and Ĵ has unit rows, so
the invariance residual |Ĵ_i·Πv|/‖v‖ is at most rtol/2.  The Gram is solved in float64
whatever θ's dtype (a float32 Gram loses the small singular values that decide the rank).  The N×N Gram is
solved even when N > p: the equal p×p form ε(AᵀA + εI)⁻¹v has condition ‖A‖²/ε ≈ 10¹⁶ on the null space
itself and returned a vector in null A but not the orthogonal projection (measured: error 6 on ‖v‖ ≈ 10),
while here the solve's error lies in null Aᵀ, which Aᵀ annihilates.

A field projected this way preserves the outputs on X to first order at every θ, so its flow
(``symdisc.flow``, RK4) keeps f(·, X) fixed up to the integrator's error: the finite action of the constrained
learned symmetry.  It is the output level of the census: a loss-level null space needs the targets Y,
which an action a_X(g, θ) does not see.
"""

from __future__ import annotations

import torch

from symdisc.architecture import Architecture
from symdisc.jacobians import output_jacobian

RTOL = 1e-7


class NullConstraint:
    """Π(θ, X): projection onto the output null space of ``arch`` at (θ, X) (module docstring)."""

    def __init__(self, arch: Architecture, rtol: float = RTOL):
        self.arch, self.rtol = arch, rtol

    def rows(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Ĵ = D_θ f(θ, X) with unit rows (zero rows stay zero), in float64."""
        arch = self.arch if (self.arch.dtype, self.arch.device) == (theta.dtype, theta.device) \
            else self.arch.to(dtype=theta.dtype, device=theta.device)
        J = output_jacobian(arch, theta, X.to(theta) if X.is_floating_point() else X).to(torch.float64)
        return J / J.norm(dim=1, keepdim=True).clamp_min(1e-300)

    def project(self, theta: torch.Tensor, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """Π V for V of shape (p,) or (p, m)."""
        A = self.rows(theta, X)
        v = V.to(torch.float64)
        vec = v.dim() == 1
        v = v[:, None] if vec else v
        G = A @ A.T + self.rtol ** 2 * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        out = (v - A.T @ torch.linalg.solve(G, A @ v)).to(V.dtype)
        return out[:, 0] if vec else out
