"""Sharpness φ and curvature ψ of a minimum (P §4.2–4.3, eq. 13–14, 80; teleport.md §2.1–2.2).

* Sharpness  φ(w, T, D) = 1/(|T||D|) Σ_{t∈T} Σ_{d∈D} L(w + t d), d uniform on the unit sphere of
  ℝ^p, T = 0.001, 0.011, …, 0.191 and |D| = 200 (P F.3).  The formula averages raw losses while the
  text calls φ "the change in the loss": ``variant="raw"`` is the formula (default, paper-faithful),
  ``variant="delta"`` subtracts L(w).
* Curvature of a curve  κ = (‖γ'‖²‖γ''‖² − (γ'·γ'')²)^{1/2} / ‖γ'‖³  (P eq. 80), with γ', γ''
  by nested forward-mode AD of t ↦ γ(t) (no closed forms: works for any action, learned too).
* ψ(w, k) = (1/k) Σ_i κ(γ_{M_i}, 0) for the orbit curves γ_M(t) = a_X(exp(tM), w) of k random
  Lie algebra elements M_i (P eq. 14; the papers use k = 1).  Coefficients c ~ N(0, I) in the
  symmetry's generator basis; κ does not depend on the scale of M.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.func import jvp, vmap

from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry

PAPER_DISPLACEMENTS = tuple(round(0.001 + 0.01 * i, 3) for i in range(20))  # 0.001, 0.011, …, 0.191
PAPER_DIRECTIONS = 200


def random_directions(num: int, p: int, generator: torch.Generator, dtype=torch.float64, device="cpu"):
    """``num`` directions uniform on the unit sphere of ℝ^p, shape (num, p)."""
    d = torch.randn(num, p, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
    return d / d.norm(dim=1, keepdim=True)


def sharpness(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    theta: torch.Tensor,
    directions: torch.Tensor,
    displacements: Sequence[float] = PAPER_DISPLACEMENTS,
    variant: str = "raw",
    chunk_size: int | None = 256,
) -> torch.Tensor:
    """φ(θ) over the given unit ``directions`` (|D|, p); differentiable in θ.  ``loss_fn`` must be a
    pure function of θ: it is vmapped over the |T|·|D| perturbed points, ``chunk_size`` at a time
    (each point θ + t d is formed inside the map, so memory is chunk_size·p, not |T||D|·p)."""
    if variant not in ("raw", "delta"):
        raise InputError(f"unknown sharpness variant {variant!r}; choose raw or delta")
    t = torch.as_tensor(displacements, dtype=theta.dtype, device=theta.device)
    D = directions.to(theta)
    ti, di = torch.meshgrid(torch.arange(len(t)), torch.arange(len(D)), indexing="ij")
    at = lambda i, j: loss_fn(theta + t[i] * D[j])
    phi = vmap(at, chunk_size=chunk_size)(ti.reshape(-1).to(theta.device), di.reshape(-1).to(theta.device)).mean()
    return phi - loss_fn(theta) if variant == "delta" else phi


def curve_derivatives(curve: Callable[[torch.Tensor], torch.Tensor], t0: torch.Tensor, order: int = 2):
    """[γ'(t0), …, γ^{(order)}(t0)] by nested jvp in t."""
    one = torch.ones_like(t0)
    fns, out = [curve], []
    for _ in range(order):
        f = fns[-1]
        fns.append(lambda t, f=f: jvp(f, (t,), (one,))[1])
        out.append(fns[-1](t0))
    return out


def curvature_from_derivatives(d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """κ = √(‖γ'‖²‖γ''‖² − (γ'·γ'')²) / ‖γ'‖³ (P eq. 80), evaluated as ‖γ''_⊥‖ / ‖γ'‖² with γ''_⊥ the
    part of γ'' orthogonal to γ' — the same number without the cancellation of the difference (which
    loses all digits on nearly straight curves, in float32 especially)."""
    n1 = d1.pow(2).sum()
    perp = d2 - (d1 @ d2) / n1 * d1
    return torch.linalg.vector_norm(perp) / n1


def curve_curvature(curve: Callable[[torch.Tensor], torch.Tensor], t0: float | torch.Tensor = 0.0,
                    dtype=torch.float64, device="cpu") -> torch.Tensor:
    """κ of an arbitrary smooth curve t ↦ γ(t) ∈ ℝ^n at t0."""
    t0 = torch.as_tensor(t0, dtype=dtype, device=device)
    d1, d2 = curve_derivatives(curve, t0, order=2)
    return curvature_from_derivatives(d1, d2)


def orbit_curvature(symmetry: Symmetry, theta: torch.Tensor, coeffs: torch.Tensor,
                    X: torch.Tensor | None = None) -> torch.Tensor:
    """κ at t = 0 of γ(t) = a_X(exp(t Σ c_k h_k), θ); differentiable in θ (third derivatives for ψ-teleports)."""
    if symmetry.discrete:
        raise InputError(f"{symmetry.name} is discrete: it has no orbit curves")
    c = coeffs.to(theta)
    return curve_curvature(lambda t: symmetry.act(t * c, theta, X), 0.0, theta.dtype, theta.device)


def random_algebra_elements(symmetry: Symmetry, k: int, generator: torch.Generator) -> torch.Tensor:
    """k coefficient vectors c ~ N(0, I) in the symmetry's generator basis, shape (k, num_generators)."""
    return torch.randn(k, symmetry.num_generators, generator=generator, dtype=torch.float64)


def psi(symmetry: Symmetry, theta: torch.Tensor, coeffs: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
    """ψ(θ) = mean over the rows of ``coeffs`` (k, num_generators) of the orbit curvatures."""
    return torch.stack([orbit_curvature(symmetry, theta, c, X) for c in coeffs]).mean()
