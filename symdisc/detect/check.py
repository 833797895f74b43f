"""Numerical verification of a candidate symmetry in float64, before anything is reported.

A candidate a(c, θ) passes when, at ``points`` random θ (the architecture's sampler) and batches X,
and at a random group element (coefficients c ~ N(0, s²), s = 0.5/√k for matrix groups, 1 for
translations),

    max |f(a(c, θ), X) − f(θ, X)| ≤ tol · max |f(θ, X)|     (tol = 1e-10)

(the per-sample losses instead of f for a loss-level candidate)
and the action moves θ (‖a(c, θ) − θ‖ > 0).  ``unused_entries`` finds parameter entries whose
per-sample Jacobian columns are exactly zero on every probe (vjps with random cotangents).
"""

from __future__ import annotations

import math

import torch
from torch.func import vjp

from symdisc.architecture import Architecture, make_generator
from symdisc.symmetry.base import Symmetry

TOL = 1e-10


def _scale(sym: Symmetry) -> float:
    group = sym.describe().get("group")
    return 1.0 if group == "translation" else 0.5 / math.sqrt(max(sym.num_generators, 1))


def invariance(sym: Symmetry, arch: Architecture, points: int = 2, seed: int = 0, batch: int | None = None) -> dict:
    """{"max_rel_change", "moved"}: the largest relative output change over the draws, and whether θ moved."""
    worst, moved = 0.0, True
    B = batch or min(arch.default_batch_size, 16)
    for j in range(points):
        theta = arch.sample_params(make_generator(seed, 10, j))
        X, Y = arch.sample_data(B, make_generator(seed, 11, j))
        c = _scale(sym) * torch.randn(sym.num_generators, generator=make_generator(seed, 12, j),
                                         dtype=torch.float64).to(theta.device)
        kept = (lambda th, X=X: arch.forward(th, X)) if sym.preserves == "output" else (
            lambda th, X=X, Y=Y: arch.per_sample_loss(th, X, Y))
        with torch.no_grad():
            new = sym.act(c, theta, X if sym.data_dependent else None)
            f0, f1 = kept(theta), kept(new)
        if not (torch.isfinite(new).all() and torch.isfinite(f1).all()):
            return {"max_rel_change": math.inf, "moved": True}
        worst = max(worst, float((f1 - f0).abs().max() / f0.abs().max().clamp_min(1e-300)))
        moved = moved and bool((new - theta).abs().max() > 0)
    return {"max_rel_change": worst, "moved": moved}


def unused_entries(arch: Architecture, names: list[str], points: int = 3, seed: int = 0) -> dict[str, list[int]]:
    """Entries of the named parameters that no output depends on at any of ``points`` random (θ, X)."""
    if not names:
        return {}
    used = {n: torch.zeros(arch.layout.shape(n), dtype=torch.bool, device=arch.device) for n in names}
    B = min(arch.default_batch_size, 16)
    for j in range(points):
        theta = arch.sample_params(make_generator(seed, 20, j))
        X, _ = arch.sample_data(B, make_generator(seed, 21, j))
        out, pull = vjp(lambda th, X=X: arch.forward(th, X), theta)
        for _ in range(2):
            g = arch.layout.unflatten(pull(torch.randn_like(out))[0])
            for n in names:
                used[n] |= g[n] != 0
    return {n: torch.nonzero(~u.reshape(-1)).reshape(-1).tolist() for n, u in used.items() if not u.all()}
