"""Jacobians of an architecture with respect to θ, batched with torch.func (never a loop over samples).

* ``output_jacobian``  D_θ f(θ, X) ∈ ℝ^{(B·out)×p};
* ``loss_jacobian``    D_θ L(θ, X, Y) ∈ ℝ^{B×p} (row i = ∇_θ ℓ_i);
* ``jacobian_row_blocks``  the same matrix as row blocks of ``chunk`` samples (for Gram accumulation);
* ``jacobian_times``   J V ∈ ℝ^{N×k} (one jvp per column, vmapped), never forming J;
* ``jacobian_transpose_times``  Jᵀ E ∈ ℝ^{p×k} (one vjp, vmapped over the k cotangents).

Sample-wise models use vmap over samples; models whose outputs couple samples (batch statistics) use
one jacrev of the whole batch.  Rows are sample-major (sample i's outputs together) everywhere.
Used by the census, discovery, verification and the matrix-free checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.func import grad, jacrev, jvp, vjp, vmap

from symdisc.architecture import Architecture
from symdisc.errors import InputError

LEVELS = ("output", "loss")


def _parts(arch: Architecture, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """θ as named tensors: differentiating per tensor avoids the full-width, zero-filled (rows × p)
    gradient that every slice of a flat θ would otherwise get (≈ 4× J memory; benchmarks/README.md)."""
    return {n: t.clone() for n, t in arch.layout.unflatten(theta).items()}


def _cat(arch: Architecture, jac: dict, rows: int) -> torch.Tensor:
    return torch.cat([jac[n].reshape(rows, -1) for n in arch.layout.names], dim=1)


def output_jacobian(arch: Architecture, theta: torch.Tensor, X: torch.Tensor, chunk_size=None) -> torch.Tensor:
    """D_θ f(θ, X) as an (N, p) matrix, N = B·(outputs per sample)."""
    parts, f = _parts(arch, theta), arch.forward_named
    if arch.samplewise:
        f1 = lambda ps, x: f(ps, x.unsqueeze(0)).reshape(-1)
        jac = vmap(jacrev(f1), in_dims=(None, 0), chunk_size=chunk_size)(parts, X)
    else:
        jac = jacrev(lambda ps: f(ps, X).reshape(-1), chunk_size=chunk_size)(parts)
    rows = arch.forward(theta, X[:1]).numel() * X.shape[0]
    return _cat(arch, jac, rows)


def loss_jacobian(arch: Architecture, theta, X, Y, chunk_size=None) -> torch.Tensor:
    """D_θ L(θ, X, Y) ∈ ℝ^{B×p}: row i is the per-sample gradient ∇_θ ℓ_i."""
    parts, f = _parts(arch, theta), arch.forward_named
    if arch.samplewise:
        l1 = lambda ps, x, y: arch.loss(f(ps, x.unsqueeze(0)), y.unsqueeze(0))[0]
        jac = vmap(grad(l1), in_dims=(None, 0, 0), chunk_size=chunk_size)(parts, X, Y)
    else:
        jac = jacrev(lambda ps: arch.loss(f(ps, X), Y), chunk_size=chunk_size)(parts)
    return _cat(arch, jac, X.shape[0])


def jacobian(arch: Architecture, theta, X, Y=None, level: str = "output", chunk_size=None) -> torch.Tensor:
    """The output (N = B·out rows) or per-sample-loss (N = B rows) Jacobian."""
    _check_level(level, Y)
    return output_jacobian(arch, theta, X, chunk_size) if level == "output" else \
        loss_jacobian(arch, theta, X, Y, chunk_size)


def jacobian_row_blocks(arch: Architecture, theta, X, Y=None, level: str = "output",
                        samples: int | None = None) -> Iterator[torch.Tensor]:
    """The rows of ``jacobian`` in blocks of ``samples`` samples (all at once when the samples are coupled)."""
    _check_level(level, Y)
    B = X.shape[0]
    step = B if not arch.samplewise or not samples else max(1, int(samples))
    for i in range(0, B, step):
        Yi = None if Y is None else Y[i:i + step]
        yield jacobian(arch, theta, X[i:i + step], Yi, level)


def _level_fn(arch: Architecture, X, Y, level: str) -> Callable[[dict], torch.Tensor]:
    _check_level(level, Y)
    if level == "output":
        return lambda ps: arch.forward_named(ps, X).reshape(-1)
    return lambda ps: arch.loss(arch.forward_named(ps, X), Y).reshape(-1)


def jacobian_times(arch: Architecture, theta, X, V: torch.Tensor, Y=None, level: str = "output",
                   chunk_size=None) -> torch.Tensor:
    """J V for V ∈ ℝ^{p×k}: column j is the jvp of the level's outputs along V[:, j] (forward mode).  An op
    without a forward-mode derivative (CPU flash attention) falls back to J's row blocks by reverse mode."""
    f, parts = _level_fn(arch, X, Y, level), _parts(arch, theta)
    one = lambda v: jvp(f, (parts,), (arch.layout.unflatten(v),))[1]
    try:
        return vmap(one, in_dims=1, out_dims=1, chunk_size=chunk_size)(V.to(theta))
    except (NotImplementedError, RuntimeError) as e:
        if "forward AD" not in str(e) and "forward-mode" not in str(e):
            raise
    V = V.to(theta)
    return torch.cat([J @ V for J in jacobian_row_blocks(arch, theta, X, Y, level, samples=16)])


def jacobian_transpose_times(arch: Architecture, theta, X, E: torch.Tensor, Y=None, level: str = "output",
                             chunk_size=None) -> torch.Tensor:
    """Jᵀ E for E ∈ ℝ^{N×k}: one reverse pass, vmapped over the k cotangents."""
    f, parts = _level_fn(arch, X, Y, level), _parts(arch, theta)
    _, pull = vjp(f, parts)
    grads = vmap(lambda e: pull(e)[0], in_dims=1, chunk_size=chunk_size)(E.to(theta))
    return torch.cat([grads[n].reshape(E.shape[1], -1) for n in arch.layout.names], dim=1).T


def _check_level(level: str, Y) -> None:
    if level not in LEVELS:
        raise InputError(f"unknown Jacobian level {level!r}; choose output or loss")
    if level == "loss" and Y is None:
        raise InputError("the loss-level Jacobian needs the targets Y")
