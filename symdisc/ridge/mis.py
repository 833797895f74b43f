"""The maximally invariant saddle (ridge_rider.md §1.2; design A step 1, §6.2):

    θ_MIS = argmin_θ ‖∇L(θ)‖² − λ_ent·H(θ) + μ Σ_k ‖ξ_k(θ)‖²

The gradient-norm term seeks a critical point; the paper's entropy term H (tabular RL, games) makes it
invariant under the task's symmetries (Thms 6–7, [A D.7]); with a Symmetry the field term replaces it for
connected groups (φ(θ) = θ ∀φ ⇔ ξ_k(θ) = 0 ∀k).  Minimised with L-BFGS (``torch.optim.LBFGS``, strong Wolfe)
from θ₀; the report gives each term at the end and the number of negative Hessian eigenvalues is left to
GetRidges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad

from symdisc.errors import NumericalError
from symdisc.symmetry.base import Symmetry

Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class MISResult:
    theta: torch.Tensor
    grad_norm: float
    entropy: float | None
    invariance: float | None   # Σ_k ‖ξ_k(θ)‖² (with a symmetry)
    loss: float
    iterations: int

    def summary(self) -> dict:
        return {"grad_norm": self.grad_norm, "entropy": self.entropy, "invariance": self.invariance,
                "loss": self.loss, "iterations": self.iterations}


def find_mis(loss: Loss, theta0: torch.Tensor, *, entropy: Loss | None = None, ent_weight: float = 0.0,
             symmetry: Symmetry | None = None, X: torch.Tensor | None = None, mu: float = 0.0,
             max_iter: int = 500) -> MISResult:
    """θ_MIS from θ₀ (see the module docstring); ``entropy(θ)`` with weight ``ent_weight``, fields with ``mu``."""
    g = grad(loss)
    Xd = X if (symmetry is not None and symmetry.data_dependent) else None

    def objective(th):
        f = g(th).square().sum()
        if entropy is not None and ent_weight:
            f = f - ent_weight * entropy(th)
        if symmetry is not None and mu:
            f = f + mu * symmetry.tangents(th, Xd).square().sum()
        return f

    x = theta0.detach().clone().requires_grad_()
    opt = torch.optim.LBFGS([x], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                            tolerance_change=1e-18, history_size=50)
    calls = [0]

    def closure():
        opt.zero_grad()
        f = objective(x)
        f.backward()
        calls[0] += 1
        return f

    opt.step(closure)
    theta = x.detach()
    if not torch.isfinite(theta).all():
        raise NumericalError("the MIS search diverged (non-finite θ); start closer to 0 or lower the weights")
    return MISResult(theta, float(g(theta).norm()), None if entropy is None else float(entropy(theta)),
                     None if symmetry is None else float(symmetry.tangents(theta, Xd).square().sum()),
                     float(loss(theta)), calls[0])
