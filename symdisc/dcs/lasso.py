"""The lasso check: DCS with a coordinate mask is the lasso with λ = 2α (dcs.md D4–D5, P7, P9).

On a random least-squares problem L(θ) = ‖y − Xθ‖² / (2N) (X ∈ ℝ^{N×d} Gaussian, y = Xθ* + noise, θ* sparse):

1. **Objective**: DCS with P = I (spred) minimised by L-BFGS over its latents reaches scikit-learn's ``Lasso``
   objective L(θ) + λ‖θ‖₁ with λ = 2α; ``relative_objective_gap`` = (F(T(z)) − F(θ_sklearn)) / F(θ_sklearn),
   both evaluated in float64 by the same formula (negative: DCS is the lower).
2. **Critical α** for a mask M (the first ``masked`` coordinates): with θ̂ the least-squares fit over the free
   coordinates (θ_M = 0), the DCS optimum has θ_M = 0 iff 2α ≥ ‖∇_M L(θ̂)‖_∞, i.e. α_crit = ‖∇_M L(θ̂)‖_∞ / 2
   (lasso KKT).  Run at ``above``·α_crit (expect max |θ_M| < 1e-10) and ``below``·α_crit (expect > 1e-3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from symdisc.architecture import make_generator
from symdisc.dcs.constraints import Sparse
from symdisc.dcs.model import DCS
from symdisc.dcs.optimizer import DCSOptimizer
from symdisc.errors import InputError
from symdisc.linalg import lstsq


def lasso_problem(n_samples: int = 200, n_features: int = 40, seed: int = 0, noise: float = 0.5,
                  support: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) in float64: X ~ N(0, 1), y = X θ* + noise·ε with θ* supported on ``support`` random coordinates."""
    if n_samples < 1 or n_features < 1 or not 0 <= support <= n_features:
        raise InputError(f"lasso problem: need n_samples, n_features ≥ 1 and 0 ≤ support ≤ n_features, got "
                         f"{n_samples}, {n_features}, {support}")
    g = make_generator(seed, 0)
    X = torch.randn(n_samples, n_features, generator=g, dtype=torch.float64)
    star = torch.zeros(n_features, dtype=torch.float64)
    idx = torch.randperm(n_features, generator=g)[:support]
    star[idx] = torch.randn(support, generator=g, dtype=torch.float64) * 2
    y = X @ star + noise * torch.randn(n_samples, generator=g, dtype=torch.float64)
    return X, y


def least_squares(X: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """L(θ) = ‖y − Xθ‖² / (2N) (scikit-learn's Lasso data term)."""
    return (y - X @ theta).pow(2).sum() / (2 * X.shape[0])


def minimize(dcs: DCS, objective: Callable[[torch.Tensor], torch.Tensor], max_iter: int = 5000) -> torch.Tensor:
    """argmin over the latents of a ``DCS.flat`` handle of objective(T(z)) + α‖z_pen‖², by L-BFGS (strong Wolfe,
    history 50, tolerances at machine precision) through ``DCSOptimizer``; returns T at the end (detached)."""
    inner = torch.optim.LBFGS(dcs.model.parameters(), lr=1, max_iter=max_iter, history_size=50,
                              tolerance_grad=1e-15, tolerance_change=1e-30, line_search_fn="strong_wolfe")
    opt = DCSOptimizer(inner, dcs)

    def closure():
        opt.zero_grad()
        loss = objective(dcs.theta_flat())
        loss.backward()
        return loss

    opt.step(closure)
    return dcs.theta_flat().detach()


def fit_dcs(X: torch.Tensor, y: torch.Tensor, alpha: float, mask: torch.Tensor | None = None,
            max_iter: int = 5000, theta0: torch.Tensor | None = None, **init) -> torch.Tensor:
    """argmin over DCS latents of L(T(z)) + α‖z_pen‖² (``minimize``), started at θ0 (OLS by default) with the
    ``DCS`` start ``init`` (default: spread, signs free)."""
    if theta0 is None:
        theta0 = lstsq(X, y.unsqueeze(1)).squeeze(1)
    dcs = DCS.flat(theta0, Sparse(X.shape[1], mask), alpha, **init)
    return minimize(dcs, lambda th: least_squares(X, y, th), max_iter)


def sklearn_lasso(X: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """scikit-learn's coordinate-descent Lasso (no intercept) at tolerance 1e-12."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Lasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=1_000_000).fit(X.numpy(), y.numpy())
    return torch.as_tensor(model.coef_, dtype=torch.float64)


def critical_alpha(X: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float:
    """α_crit = ‖∇_M L(θ̂)‖_∞ / 2, θ̂ the least-squares fit with θ_M = 0 (dcs.md D5)."""
    free = ~mask
    theta = torch.zeros(X.shape[1], dtype=X.dtype)
    if bool(free.any()):
        theta[free] = lstsq(X[:, free], y.unsqueeze(1)).squeeze(1)
    grad = -(X.T @ (y - X @ theta)) / X.shape[0]
    return float(grad[mask].abs().max()) / 2


def lasso_check(alpha: float = 0.05, n_samples: int = 200, n_features: int = 40, masked: int = 30,
                seed: int = 0, above: float = 1.2, below: float = 0.8) -> dict:
    """Both checks of the module docstring; a JSON-ready dict (``relative_objective_gap`` first)."""
    if alpha <= 0:
        raise InputError(f"the lasso check needs α > 0, got {alpha}")
    if not 1 <= masked <= n_features:
        raise InputError(f"masked must be between 1 and n_features = {n_features}, got {masked}")
    X, y = lasso_problem(n_samples, n_features, seed)
    lam = 2 * alpha
    objective = lambda th: float(least_squares(X, y, th) + lam * th.abs().sum())
    theta_dcs, theta_sk = fit_dcs(X, y, alpha), sklearn_lasso(X, y, lam)
    f_dcs, f_sk = objective(theta_dcs), objective(theta_sk)
    mask = torch.zeros(n_features, dtype=torch.bool)
    mask[:masked] = True
    a_crit = critical_alpha(X, y, mask)
    masked_max = {}
    for name, factor in (("above", above), ("below", below)):
        th = fit_dcs(X, y, factor * a_crit, mask)
        masked_max[name] = float(th[mask].abs().max())
    return {
        "relative_objective_gap": (f_dcs - f_sk) / abs(f_sk),
        "objective_dcs": f_dcs, "objective_sklearn": f_sk, "alpha": alpha, "lambda": lam,
        "max_coef_difference": float((theta_dcs - theta_sk).abs().max()),
        "nonzero_dcs": int((theta_dcs.abs() > 1e-6).sum()), "nonzero_sklearn": int((theta_sk.abs() > 1e-6).sum()),
        "alpha_crit": a_crit, "above_factor": above, "below_factor": below,
        "masked_max_above": masked_max["above"], "masked_max_below": masked_max["below"],
        "masked": masked, "n_samples": n_samples, "n_features": n_features, "seed": seed,
    }
