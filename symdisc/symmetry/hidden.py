"""Change of basis of a hidden space: the linear symmetries of Table 1.1.

A hidden space of dimension h is attached to parameter tensors along one axis each, with a
role:

* ``produces`` — the axis indexes units *written* into the space (rows of W_1, entries of b_1,
  columns of W_K in attention, rows of LoRA's V):  T ↦ g ·_axis T;
* ``consumes`` — the axis indexes units *read* from the space (columns of W_2, of W_Q, of LoRA's
  U):  T ↦ T ·_axis g^{-α}  (α = 1 except for degree-α homogeneous activations).

For g in GL_h (linear layers, attention, LoRA), O(h) (radial activations), positive diagonal
matrices (homogeneous activations, batch-norm) or the finite groups S_h and Z_2^h (permutations,
sign flips of pointwise and odd activations) this keeps f(θ, X) unchanged whenever the map
between producers and consumers is g-equivariant.  Infinitesimally, ξ_M acts as M on producers
and −αM on consumers (e.g. (−W_2 M, M W_1, M b_1) for GL_h).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from symdisc.errors import InputError
from symdisc.layout import ParamLayout
from symdisc.linalg import expm
from symdisc.symmetry.base import Level, Symmetry

Role = Literal["produces", "consumes"]
Algebra = Literal["gl", "so", "diag"]


@dataclass(frozen=True)
class Attachment:
    """Parameter ``name`` meets the hidden space along ``axis`` with ``role``.

    By default the whole axis is the space (its length is h).  ``index`` names the positions instead, in
    (unit, replica) order: unit u sits at ``index[u·R + r]`` for r < R = len(index)/h — a slice of a fused
    projection (one head's rows of a QKV weight) or a channel repeated over the positions a flatten gave it
    (R = H·W columns of the linear layer after a conv).
    """

    name: str
    axis: int
    role: Role
    index: tuple[int, ...] | None = None


def _apply_along(T: torch.Tensor, M: torch.Tensor, axis: int, index: tuple[int, ...] | None = None) -> torch.Tensor:
    """(M ·_axis T)[..i..] = Σ_j M[i, j] T[..j..]; with ``index``, on the named positions only (replicas alike)."""
    moved = T.movedim(axis, 0)
    if index is None:
        out = (M @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
        return out.movedim(0, axis)
    idx = torch.tensor(index, device=T.device)
    h = M.shape[0]
    sub = moved.index_select(0, idx)
    new = (M @ sub.reshape(h, -1)).reshape(sub.shape)
    return moved.index_copy(0, idx, new).movedim(0, axis)


def _scale_along(T: torch.Tensor, v: torch.Tensor, axis: int, index: tuple[int, ...] | None = None) -> torch.Tensor:
    """``_apply_along`` for M = diag(v): T[..i..] ↦ v_i T[..i..] (replicas of unit i, as grouped there, alike)."""
    moved = T.movedim(axis, 0)
    if index is None:
        return (v.reshape(-1, *[1] * (moved.ndim - 1)) * moved).movedim(0, axis)
    idx = torch.tensor(index, device=T.device)
    sub = moved.index_select(0, idx)
    factor = v.repeat_interleave(len(index) // v.shape[0]).reshape(-1, *[1] * (sub.ndim - 1))
    return moved.index_copy(0, idx, factor * sub).movedim(0, axis)


class HiddenSpace:
    """A hidden space of dimension h and the tensors attached to it."""

    def __init__(self, layout: ParamLayout, dim: int, attachments: list[Attachment]):
        for a in attachments:
            shape = layout.shape(a.name)
            if not -len(shape) <= a.axis < len(shape):
                raise InputError(f"hidden space of dim {dim}: {a.name} has shape {shape}, no axis {a.axis}")
            n = shape[a.axis]
            fits = n == dim if a.index is None else (
                len(a.index) % dim == 0 and len(set(a.index)) == len(a.index) and all(0 <= i < n for i in a.index))
            if not fits:
                raise InputError(f"hidden space of dim {dim}: {a.name} has shape {shape}, axis {a.axis}"
                                 + ("" if a.index is None else f", {len(a.index)} positions"))
        if not any(a.role == "produces" for a in attachments):
            raise InputError("a hidden space needs at least one producing tensor")
        self.layout, self.dim, self.attachments = layout, dim, tuple(attachments)

    def transform(self, theta: torch.Tensor, g: torch.Tensor, g_inv_alpha: torch.Tensor) -> torch.Tensor:
        """Producers ↦ g·T, consumers ↦ T·g^{-α} (``g_inv_alpha`` = g^{-α})."""
        params = dict(self.layout.unflatten(theta))
        for a in self.attachments:
            M = g if a.role == "produces" else g_inv_alpha.transpose(0, 1)
            params[a.name] = _apply_along(params[a.name], M, a.axis, a.index)
        return self.layout.flatten(params)

    def scale(self, theta: torch.Tensor, s: torch.Tensor, s_inv_alpha: torch.Tensor) -> torch.Tensor:
        """``transform`` for g = diag(s), g^{-α} = diag(s_inv_alpha), as products along the axis."""
        params = dict(self.layout.unflatten(theta))
        for a in self.attachments:
            params[a.name] = _scale_along(params[a.name], s if a.role == "produces" else s_inv_alpha, a.axis, a.index)
        return self.layout.flatten(params)

    def touched(self) -> list[str]:
        return sorted({a.name for a in self.attachments})


def algebra_basis(kind: Algebra, h: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Basis of gl_h (E_ij), so_h (E_ij − E_ji, i<j) or the diagonal algebra (E_ii): (k, h, h)."""
    eye = torch.eye(h, dtype=dtype, device=device)
    if kind == "gl":
        return torch.einsum("ia,jb->ijab", eye, eye).reshape(h * h, h, h)
    if kind == "diag":
        return torch.einsum("ia,ib->iab", eye, eye)
    if kind == "so":
        iu = torch.triu_indices(h, h, offset=1, device=device)
        E = torch.zeros(iu.shape[1], h, h, dtype=dtype, device=device)
        k = torch.arange(iu.shape[1], device=device)
        E[k, iu[0], iu[1]] = 1.0
        E[k, iu[1], iu[0]] = -1.0
        return E
    raise InputError(f"unknown Lie algebra {kind!r}")


_ALGEBRA_DIM = {"gl": lambda h: h * h, "so": lambda h: h * (h - 1) // 2, "diag": lambda h: h}


class MatrixGroupSymmetry(Symmetry):
    """g = exp(Σ c_k B_k) ∈ GL_h / SO(h) / positive diagonal, acting by change of hidden basis."""

    def __init__(
        self,
        space: HiddenSpace,
        algebra: Algebra,
        name: str,
        alpha: float = 1.0,
        preserves: Level = "output",
        source: str = "",
    ):
        super().__init__(space.layout)
        if alpha != 1.0 and algebra != "diag":
            raise InputError("a homogeneity degree α ≠ 1 needs the diagonal group")
        self.space, self.algebra, self.alpha = space, algebra, float(alpha)
        self.name, self.preserves, self.source = name, preserves, source
        self.num_generators = _ALGEBRA_DIM[algebra](space.dim)

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return algebra_basis(self.algebra, self.space.dim, dtype, device)

    def act(self, coeffs, theta, X=None):
        coeffs = coeffs.to(dtype=theta.dtype, device=theta.device)
        h = self.space.dim
        if self.algebra == "diag":  # g = diag(e^c): scale along the hidden axis (O(p); no h×h matrices)
            return self.space.scale(theta, torch.exp(coeffs), torch.exp(-self.alpha * coeffs))
        if self.algebra == "gl":  # Σ_ab c_ab E_ab (row-major basis): no (h², h, h) basis tensor
            M = coeffs.reshape(h, h)
        else:
            M = torch.einsum("k,kab->ab", coeffs, self.generators(theta.dtype, theta.device))
        g, g_inv = expm(M), expm(-M)
        return self.space.transform(theta, g, g_inv)

    def describe(self) -> dict:
        return {**super().describe(), "group": self.algebra, "hidden_dim": self.space.dim,
                "acts_on": self.space.touched(), "source": self.source}


class FiniteGroupSymmetry(Symmetry):
    """Permutations S_h (element: a permutation vector) or sign flips Z_2^h (element: ±1 vector)."""

    def __init__(self, space: HiddenSpace, kind: Literal["permutation", "sign"], name: str, source: str = ""):
        super().__init__(space.layout)
        self.space, self.kind, self.name, self.source = space, kind, name, source
        self.num_generators = 0

    def matrix(self, element: torch.Tensor, dtype, device) -> torch.Tensor:
        h = self.space.dim
        element = element.to(device)
        if element.shape != (h,):
            raise InputError(f"{self.name}: element must have shape ({h},)")
        if self.kind == "permutation":
            return torch.eye(h, dtype=dtype, device=device)[element.long()]
        return torch.diag(element.to(dtype))

    def act(self, coeffs, theta, X=None):
        P = self.matrix(coeffs, theta.dtype, theta.device)
        return self.space.transform(theta, P, P.transpose(0, 1) if self.kind == "permutation" else P)

    def identity_element(self) -> torch.Tensor:
        """The identity permutation (0, …, h−1) or the all-plus sign vector."""
        h = self.space.dim
        return torch.arange(h) if self.kind == "permutation" else torch.ones(h, dtype=torch.long)

    def sample_element(self, generator, scale=1.0):
        h = self.space.dim
        if self.kind == "permutation":
            return torch.randperm(h, generator=generator)
        return torch.randint(0, 2, (h,), generator=generator).mul(2).sub(1)

    def describe(self) -> dict:
        return {**super().describe(), "group": self.kind, "hidden_dim": self.space.dim,
                "acts_on": self.space.touched(), "source": self.source}
