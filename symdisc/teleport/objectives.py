"""What a teleport maximises (or minimises) over the orbit: functions θ' ↦ ℝ (teleport.md §1.3).

* ``grad_norm``  ‖∇L(θ')‖²                                  (D Alg. 1; P eq. 3)
* ``adagrad``    ∇L(θ')ᵀ A ∇L(θ'),  A = diag(ε + G)^{-1/2}    (P eq. 99; D eq. 5.7: the squared
                 Mahalanobis norm, G the AdaGrad accumulator frozen at the teleport)
* ``sharpness``  φ(θ') over directions drawn once per teleport  (P eq. 13; see geometry.py)
* ``curvature``  ψ(θ') over k algebra elements drawn once per teleport (P eq. 14)

Each factory returns a pure function of θ', so the teleport routine can differentiate it through
the group action with torch.func.  ``value_and_grad(J, θ)`` is what the routine calls for (J(θ), ∇J(θ)): reverse
mode with plain autograd (≈ 1.5× faster than ``torch.func.grad_and_value`` on the E3 net), or the objective's own
``value_and_grad`` — the gradient norms carry one that never enters torch.func (≈ 2.3×, benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad, grad_and_value

from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry
from symdisc.teleport import geometry

LossFn = Callable[[torch.Tensor], torch.Tensor]
ObjectiveFn = Callable[[torch.Tensor], torch.Tensor]
NAMES = ("grad_norm", "adagrad", "sharpness", "curvature")


class GradientNorm:
    """θ ↦ ∇L(θ)ᵀ A ∇L(θ) for a diagonal weight A (None: the identity, ‖∇L‖²); callable under torch.func, and with
    ``value_and_grad`` by plain double-backward autograd (∇J = 2 H A∇L)."""

    def __init__(self, loss_fn: LossFn, weights: torch.Tensor | None = None):
        self.loss_fn, self.weights, self._grad = loss_fn, weights, grad(loss_fn)

    def _norm(self, g: torch.Tensor) -> torch.Tensor:
        return g.pow(2).sum() if self.weights is None else (self.weights.to(g) * g.pow(2)).sum()

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return self._norm(self._grad(theta))

    def value_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        th = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self.loss_fn(th), th, create_graph=True, materialize_grads=True)
            value = self._norm(g)
            if not value.requires_grad:  # L is affine in θ: ∇L is constant
                return value.detach(), torch.zeros_like(th)
            (dJ,) = torch.autograd.grad(value, th, materialize_grads=True)
        return value.detach(), dJ


def grad_norm(loss_fn: LossFn) -> ObjectiveFn:
    """θ ↦ ‖∇L(θ)‖²."""
    return GradientNorm(loss_fn)


def adagrad_norm(loss_fn: LossFn, accumulator: torch.Tensor, eps: float = 1e-10) -> ObjectiveFn:
    """θ ↦ ∇Lᵀ diag(ε + G)^{-1/2} ∇L for the AdaGrad accumulator G (flat, layout order)."""
    return GradientNorm(loss_fn, (accumulator.detach() + eps).rsqrt())


AUTOGRAD = True  # value_and_grad by plain autograd (False: torch.func.grad_and_value, the path before; benchmarks)


def value_and_grad(objective: ObjectiveFn, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(J(θ), ∇J(θ)), detached: the objective's own ``value_and_grad`` when it has one, else reverse-mode autograd
    around it (any J built from torch operations and torch.func transforms)."""
    if not AUTOGRAD:
        g, value = grad_and_value(objective)(theta)
        return value.detach(), g.detach()
    own = getattr(objective, "value_and_grad", None)
    if own is not None:
        return own(theta)
    th = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        value = objective(th)
        if not value.requires_grad:
            return value.detach(), torch.zeros_like(th)
        (g,) = torch.autograd.grad(value, th, materialize_grads=True)
    return value.detach(), g


def sharpness_objective(loss_fn: LossFn, directions: torch.Tensor, displacements=geometry.PAPER_DISPLACEMENTS,
                        variant: str = "raw") -> ObjectiveFn:
    return lambda theta: geometry.sharpness(loss_fn, theta, directions, displacements, variant)


def curvature_objective(symmetry: Symmetry, coeffs: torch.Tensor, X: torch.Tensor | None) -> ObjectiveFn:
    return lambda theta: geometry.psi(symmetry, theta, coeffs, X)


@dataclass(frozen=True)
class ObjectiveSpec:
    """Options of the objectives: |D| sharpness directions, φ variant, k curves for ψ, AdaGrad ε."""

    sharpness_directions: int = geometry.PAPER_DIRECTIONS
    sharpness_variant: str = "raw"
    curvature_curves: int = 1
    adagrad_eps: float = 1e-10


def make_objective(name: str, loss_fn: LossFn, symmetry: Symmetry, theta: torch.Tensor, X: torch.Tensor | None,
                   generator: torch.Generator, spec: ObjectiveSpec = ObjectiveSpec(),
                   accumulator: torch.Tensor | None = None) -> ObjectiveFn:
    """The named objective; random directions / curves are drawn here, once per teleport."""
    if name == "grad_norm":
        return grad_norm(loss_fn)
    if name == "adagrad":
        if accumulator is None:
            raise InputError("the adagrad objective needs the AdaGrad accumulator (use it with torch.optim.Adagrad)")
        return adagrad_norm(loss_fn, accumulator, spec.adagrad_eps)
    if name == "sharpness":
        D = geometry.random_directions(spec.sharpness_directions, theta.shape[0], generator, theta.dtype,
                                       theta.device)
        return sharpness_objective(loss_fn, D, variant=spec.sharpness_variant)
    if name == "curvature":
        C = geometry.random_algebra_elements(symmetry, spec.curvature_curves, generator)
        return curvature_objective(symmetry, C, X)
    raise InputError(f"unknown teleport objective {name!r}; choose one of {', '.join(NAMES)}")
