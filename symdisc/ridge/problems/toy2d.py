"""The 2-D toy of RR Fig. 1 (the paper does not give the function; this one is ours):

    L(x, y) = −(a/2)x² + (s/3)x³ + x⁴/4 − (b/2)y² + (c/4)y⁴ + k·x²y²,   (a, b, c, s, k) = (2, 1, 0.1, 0.5, 0.5).

* The origin is a strict local maximum: ∇²L(0) = diag(−a, −b) = diag(−2, −1), two distinct eigenvalues, so
  four ridges ±e_x, ±e_y.
* Steep direction x (λ = −2): two local minima of different depth (the cubic s·x³ makes the basins asymmetric),
  at x = (−s ± √(s² + 4a))/2 on y = 0: (1.186, 0) with L = −0.634 and (−1.686, 0) with L = −1.621.
* Gentle direction y (λ = −1): two global minima (0, ±√(b/c)) = (0, ±3.162) with L = −b²/(4c) = −2.5.
* The coupling k·x²y² makes the four axis points minima; the other critical points are four saddles.
GD from near the origin amplifies x fastest (reference §4.3 D.1), so it ends in the local minima; the two
y-ridges reach the global ones.  All functions take θ of shape (..., 2) (batched, vmap- and hessian-safe).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from symdisc.linalg import lstsq

TOY2D_PARAMS = {"a": 2.0, "b": 1.0, "c": 0.1, "s": 0.5, "k": 0.5}
TOY2D_START = (0.0, 0.0)  # the central maximum; torch.tensor(TOY2D_START, dtype=torch.float64)


def toy2d_loss(theta: torch.Tensor) -> torch.Tensor:
    """L(θ) for θ = (x, y) of shape (..., 2); the formula is in the module docstring."""
    a, b, c, s, k = (TOY2D_PARAMS[n] for n in "abcsk")
    x, y = theta[..., 0], theta[..., 1]
    return -0.5 * a * x**2 + s / 3 * x**3 + 0.25 * x**4 - 0.5 * b * y**2 + 0.25 * c * y**4 + k * x**2 * y**2


def _grad_hess(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form gradient (n, 2) and Hessian (n, 2, 2) of toy2d_loss at the points p (n, 2)."""
    a, b, c, s, k = (TOY2D_PARAMS[n] for n in "abcsk")
    x, y = p[:, 0], p[:, 1]
    g = torch.stack([-a * x + s * x**2 + x**3 + 2 * k * x * y**2, -b * y + c * y**3 + 2 * k * x**2 * y], -1)
    hxy = 4 * k * x * y
    h = torch.stack([torch.stack([-a + 2 * s * x + 3 * x**2 + 2 * k * y**2, hxy], -1),
                     torch.stack([hxy, -b + 3 * c * y**2 + 2 * k * x**2], -1)], -2)
    return g, h


@lru_cache(maxsize=1)
def _critical_points() -> tuple[tuple[float, float, float, str], ...]:
    """Newton's method from a 41×41 grid on [−5, 5]², deduplicated, classified by the Hessian's eigenvalues."""
    grid = torch.linspace(-5.0, 5.0, 41, dtype=torch.float64)
    p = torch.cartesian_prod(grid, grid)
    for _ in range(100):
        g, h = _grad_hess(p)
        p = p - lstsq(h, g.unsqueeze(-1)).squeeze(-1)
    g, h = _grad_hess(p)
    p = p[torch.isfinite(p).all(1) & (g.norm(dim=1) < 1e-10)]
    found: list[torch.Tensor] = []
    for q in p:
        if all((q - r).norm() > 1e-6 for r in found):
            found.append(q)
    out = []
    for q in found:
        ev = torch.linalg.eigvalsh(_grad_hess(q[None])[1][0])
        kind = "minimum" if ev[0] > 1e-9 else "maximum" if ev[1] < -1e-9 else "saddle"
        out.append((round(float(q[0]), 10) + 0.0, round(float(q[1]), 10) + 0.0, float(toy2d_loss(q)), kind))
    lowest = min(v for *_, v, kind in out if kind == "minimum")
    out = [(x, y, v, ("global" if v < lowest + 1e-9 else "local") if kind == "minimum" else kind)
           for x, y, v, kind in out]
    return tuple(sorted(out, key=lambda t: (t[2], t[0], t[1])))


def toy2d_critical_points() -> list[dict]:
    """All critical points in [−5, 5]², sorted by loss: {"location": (x, y), "loss", "kind"} with kind one of
    'global', 'local' (minima), 'saddle', 'maximum'.  Found numerically (grid + Newton), cached."""
    return [{"location": (x, y), "loss": v, "kind": kind} for x, y, v, kind in _critical_points()]


def toy2d_minima() -> list[dict]:
    """The local minima, sorted by loss: {"location": (x, y), "loss", "kind": 'global' | 'local'}.
    Two global at (0, ±3.162), L = −2.5; two local at (−1.686, 0), L = −1.621 and (1.186, 0), L = −0.634."""
    return [m for m in toy2d_critical_points() if m["kind"] in ("global", "local")]
