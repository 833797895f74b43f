"""What a teleport maximises (or minimises) over the orbit: functions θ' ↦ ℝ (teleport.md §1.3).

* ``grad_norm``  ‖∇L(θ')‖²                                  (D Alg. 1; P eq. 3)
* ``adagrad``    ∇L(θ')ᵀ A ∇L(θ'),  A = diag(ε + G)^{-1/2}    (P eq. 99; D eq. 5.7: the squared
                 Mahalanobis norm, G the AdaGrad accumulator frozen at the teleport)
* ``sharpness``  φ(θ') over directions drawn once per teleport  (P eq. 13; see geometry.py)
* ``curvature``  ψ(θ') over k algebra elements drawn once per teleport (P eq. 14)

Each factory returns a pure function of θ', so the teleport routine can differentiate it through
the group action with torch.func.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad

from symdisc.errors import InputError
from symdisc.symmetry.base import Symmetry
from symdisc.teleport import geometry

LossFn = Callable[[torch.Tensor], torch.Tensor]
ObjectiveFn = Callable[[torch.Tensor], torch.Tensor]
NAMES = ("grad_norm", "adagrad", "sharpness", "curvature")


def grad_norm(loss_fn: LossFn) -> ObjectiveFn:
    """θ ↦ ‖∇L(θ)‖²."""
    g = grad(loss_fn)
    return lambda theta: g(theta).pow(2).sum()


def adagrad_norm(loss_fn: LossFn, accumulator: torch.Tensor, eps: float = 1e-10) -> ObjectiveFn:
    """θ ↦ ∇Lᵀ diag(ε + G)^{-1/2} ∇L for the AdaGrad accumulator G (flat, layout order)."""
    g = grad(loss_fn)
    A = (accumulator.detach() + eps).rsqrt()
    return lambda theta: (A.to(theta) * g(theta).pow(2)).sum()


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
