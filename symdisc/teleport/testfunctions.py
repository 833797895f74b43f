"""Teleportation test functions with their SO(2) / O(n) symmetries (D §4.6.1, app. C; teleport.md §1.4.1).

Each is L(x) = ‖φ(x)‖² for a bijection φ, so rotations of φ(x) keep L (``ConjugatedRotation``).
Reference values (teleport.md §1.4.1, [DERIVED]): Booth's Hessian is 2AᵀA with eigenvalues
{2, 18}, so on L = c, 4c ≤ ‖∇L‖² ≤ 36c; at (5, −5), L = 144 and ‖∇L‖²/L = 20.  Ellipse:
‖∇L‖² ≤ 4·max(1, a)·c.  Quadratic wᵀAw: ‖∇L‖² ≤ 4 λ_max(A) c, attained on the top eigenvector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from symdisc.errors import InputError
from symdisc.layout import ParamLayout
from symdisc.symmetry.conjugated import ConjugatedRotation

_LAYOUT2 = ParamLayout.from_pairs([("x", (2,))])


@dataclass(frozen=True)
class TestFunction:
    """A loss of one flat θ, its symmetry, the papers' start point and minimiser."""

    __test__ = False  # not a pytest class

    name: str
    loss: Callable[[torch.Tensor], torch.Tensor]
    symmetry: ConjugatedRotation
    start: tuple[float, ...]
    minimiser: tuple[float, ...]
    source: str

    def x0(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return torch.tensor(self.start, dtype=dtype, device=device)


def _norm_sq(phi):
    return lambda x: phi(x).pow(2).sum()


def booth() -> TestFunction:
    """Booth's L(x) = (x₁ + 2x₂ − 7)² + (2x₁ + x₂ − 5)² = ‖φ(x)‖² with φ affine: SO(2) acts by rotating φ(x)
    (D eq. 4.9–4.10, C.8–C.10)."""
    phi = lambda x: torch.stack([x[0] + 2 * x[1] - 7, 2 * x[0] + x[1] - 5])
    phi_inv = lambda u: torch.stack([-u[0] / 3 + 2 * u[1] / 3 + 1, 2 * u[0] / 3 - u[1] / 3 + 3])
    sym = ConjugatedRotation(_LAYOUT2, phi, phi_inv, "SO(2)-booth", "D eq. 4.9-4.10, C.8-C.10")
    return TestFunction("booth", _norm_sq(phi), sym, (5.0, -5.0), (1.0, 3.0), "D §4.6.1 (E2)")


def rosenbrock() -> TestFunction:
    """Rosenbrock's L(x) = 100(x₁² − x₂)² + (x₁ − 1)² = ‖φ(x)‖² with φ(x) = (10(x₁² − x₂), x₁ − 1) invertible: SO(2)
    acts by rotating φ(x) (D eq. 4.5–4.7, C.4–C.7)."""
    phi = lambda x: torch.stack([10 * (x[0] ** 2 - x[1]), x[0] - 1])
    phi_inv = lambda u: torch.stack([u[1] + 1, (u[1] + 1) ** 2 - u[0] / 10])
    sym = ConjugatedRotation(_LAYOUT2, phi, phi_inv, "SO(2)-rosenbrock", "D eq. 4.5-4.7, C.4-C.7")
    return TestFunction("rosenbrock", _norm_sq(phi), sym, (-1.0, -1.0), (1.0, 1.0), "D §4.6.1 (E1)")


def ellipse(a: float = 9.0) -> TestFunction:
    """The quadratic L(x) = x₁² + a·x₂² (a > 0) = ‖φ(x)‖² with φ(x) = (x₁, √a·x₂): SO(2) acts by rotating φ(x)
    (D eq. C.1–C.2)."""
    if a <= 0:
        raise InputError(f"the ellipse needs a > 0, got {a}")
    scale = lambda x: torch.tensor([1.0, a**0.5], dtype=x.dtype, device=x.device)
    # elementwise on the vector: a 0-dim float32 tensor times a Python float gets a float64 forward-mode
    # tangent (torch 2.x), which made the fields float64 for float32 θ
    phi = lambda x: x * scale(x)
    phi_inv = lambda u: u / scale(u)
    sym = ConjugatedRotation(_LAYOUT2, phi, phi_inv, f"SO(2)-ellipse(a={a:g})", "D eq. C.1-C.2")
    return TestFunction(f"ellipse-{a:g}", _norm_sq(phi), sym, (1.0, 1.0), (0.0, 0.0), "D app. C")


def quadratic(A: torch.Tensor, start: torch.Tensor | None = None) -> TestFunction:
    """L(w) = wᵀAw with A symmetric positive definite; O(n) acts through A^{1/2} (D eq. 4.33-4.34)."""
    A = torch.as_tensor(A, dtype=torch.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not torch.allclose(A, A.T):
        raise InputError("the quadratic needs a symmetric square matrix A")
    evals, evecs = torch.linalg.eigh(A)
    if evals.min() <= 0:
        raise InputError(f"the quadratic needs A positive definite (smallest eigenvalue {evals.min():.3g})")
    root = evecs @ torch.diag(evals.sqrt()) @ evecs.T
    root_inv = evecs @ torch.diag(evals.rsqrt()) @ evecs.T
    n = A.shape[0]
    layout = ParamLayout.from_pairs([("w", (n,))])
    sym = ConjugatedRotation(layout, lambda w: root.to(w) @ w, lambda u: root_inv.to(u) @ u, f"SO({n})-quadratic",
                             "D eq. 4.33-4.34")
    w0 = torch.ones(n, dtype=torch.float64) if start is None else torch.as_tensor(start, dtype=torch.float64)
    return TestFunction(f"quadratic-{n}", lambda w: w @ (A.to(w) @ w), sym, tuple(w0.tolist()), (0.0,) * n,
                        "D Lemma 4.5.5-4.5.8")


TEST_FUNCTIONS: dict[str, Callable[[], TestFunction]] = {"booth": booth, "rosenbrock": rosenbrock,
                                                         "ellipse": ellipse}
