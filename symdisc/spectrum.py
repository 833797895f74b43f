"""Singular values of an architecture's Jacobian at (θ, X), by a dense SVD or from the Gram matrix.

For J ∈ ℝ^{N×p} (output level N = B·out, loss level N = B) and n = min(N, p):

* ``svd``   σ(J) by LAPACK on the materialised J: memory 8·N·p bytes, time ≈ 4Np² − 4p³/3 flops of mostly
            BLAS-2 bidiagonalisation (the reference; exact to float64 rounding).
* ``gram``  ``symdisc.gram``: G = JᵀJ accumulated over blocks of samples (JJᵀ from the materialised J when
            N < p), pivoted Cholesky, the bottom of the spectrum recomputed in float64 with J applied by
            jvp / vjp: memory 8·n² (+ one block), time ≈ N·n² + n³/3 flops of BLAS-3.
* ``auto``  ``gram`` when n ≥ AUTO_GRAM_MIN_DIM, else ``svd`` (measured in benchmarks/census_scale.py).

Both return the n computed σ (descending); the p − n others are exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.gram import accumulate_gram, gram_singular_values
from symdisc.jacobians import jacobian, jacobian_row_blocks, jacobian_times, jacobian_transpose_times
from symdisc.linalg import singular_values

METHODS = ("auto", "svd", "gram")
AUTO_GRAM_MIN_DIM = 1024  # min(N, p) from which ``auto`` takes the Gram
BLOCK_ELEMENTS = 2**24  # rows·p of one Jacobian block in the Gram accumulation (128 MiB in float64)
COLUMN_ELEMENTS = 2**21  # N·k of one vmapped jvp / vjp chunk in the refinement


@dataclass
class Spectrum:
    values: torch.Tensor  # the n = min(rows, cols) computed singular values, descending
    rows: int
    cols: int
    method: str


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"unknown spectrum method {method!r}; choose one of {', '.join(METHODS)}")


def resolve_method(method: str, rows: int, cols: int) -> str:
    """The method ``auto`` stands for at this size."""
    check_method(method)
    if method != "auto":
        return method
    return "gram" if min(rows, cols) >= AUTO_GRAM_MIN_DIM else "svd"


def memory_bytes(method: str, rows: int, cols: int) -> int:
    """The largest float64 arrays a method holds: J (svd, or gram with N < p) and the n×n Gram plus a block."""
    if method == "svd":
        return 8 * rows * cols
    if rows < cols:
        return 8 * (rows * cols + rows * rows)
    return 8 * (cols * cols + min(_block_elements(cols), rows * cols))


def _block_elements(p: int) -> int:
    """Elements of one Jacobian block: ≤ 128 MiB and ≤ the Gram itself."""
    return min(BLOCK_ELEMENTS, p * p)


def jacobian_spectrum(arch: Architecture, theta: torch.Tensor, X: torch.Tensor, Y=None, level: str = "output",
                      method: str = "auto", chunk_size=None) -> Spectrum:
    """σ of the ``level`` Jacobian at (θ, X) by ``method`` (see the module docstring)."""
    p, B = arch.num_params, X.shape[0]
    per_sample = arch.forward(theta, X[:1]).numel() if level == "output" else 1
    N = B * per_sample
    method = resolve_method(method, N, p)
    if method == "svd":
        return Spectrum(singular_values(jacobian(arch, theta, X, Y, level, chunk_size)), N, p, "svd")
    if N < p:  # the N×N Gram J Jᵀ of the (smaller) materialised J
        J = jacobian(arch, theta, X, Y, level, chunk_size)
        G = accumulate_gram([J.T], N, device=J.device)
        s = gram_singular_values(G, lambda U: J.T @ U, lambda E: J @ E)
        return Spectrum(s, N, p, "gram")
    samples = max(1, _block_elements(p) // (per_sample * p))
    cols = max(1, COLUMN_ELEMENTS // N)
    s = gram_singular_values(  # no reference to G kept here: the factorisation overwrites it in place
        accumulate_gram(jacobian_row_blocks(arch, theta, X, Y, level, samples), p, device=theta.device),
        lambda V: jacobian_times(arch, theta, X, V, Y, level, chunk_size=cols),
        lambda E: jacobian_transpose_times(arch, theta, X, E, Y, level, chunk_size=cols),
    )
    return Spectrum(s, N, p, "gram")
