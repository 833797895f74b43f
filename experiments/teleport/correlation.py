"""The correlation study of sharpness φ and curvature ψ with validation loss (P §4.3 + F.3, Table 1;
teleport.md §2.4; experiment E8).

N three-layer LeakyReLU(0.1) MLPs without biases, W₃σ(W₂σ(W₁x)), differing only in their
initialisation (same data order), are trained by SGD (batch 20, 40 epochs).  For each model:

* φ_raw(w) = 1/(|T||D|) Σ_t Σ_d L_train(w + t d) (P eq. 13), |D| = 200 directions, T the paper's
  list 0.001, 0.011, …, 0.191; φ_delta = φ_raw − L_train(w) ("the change in the loss");
* ψ(w) = κ(γ_M, 0) for k = 1 random Lie algebra element M (P eq. 14), the orbit curve of the
  data-dependent GL actions of all hidden layers applied together (a ProductSymmetry), by default
  the σ-inverse action (action 1: the one of the papers' curvature derivation, P App. E.4) on a
  fixed batch X of b = min(d₀, …, d_{L−2}) training samples, the largest batch on which every factor
  keeps the outputs exactly (for d = 64-16-10-10: b = 16, so the second factor's input is square);
* the validation loss (the test split), with Pearson and Spearman correlations and percentile
  bootstrap CIs over the models.

D and M are drawn once per study and shared by all models (common random numbers).  Results on
digits / synthetic data are substitutes for the paper's MNIST / CIFAR-10, never its numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import grad, vmap

from symdisc import data as datasets
from symdisc import zoo
from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.progress import track
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.product import hidden_layers_gl
from symdisc.teleport import geometry

# P Table 1 (= D Table 5.1): Pearson correlation with validation loss on the real data sets.
PAPER_TABLE1 = {
    "MNIST": {"phi": 0.704, "psi": -0.050},
    "Fashion-MNIST": {"phi": 0.790, "psi": -0.232},
    "CIFAR-10": {"phi": 0.899, "psi": -0.167},
}
STREAM_INIT, STREAM_ORDER, STREAM_PROBES, STREAM_BOOT = 0, 1, 2, 3


@dataclass(frozen=True)
class StudySetup:
    """A data set of the study: its loader, widths d₀-h₁-h₂-10, SGD lr and the paper's column it stands in for."""

    loader: Callable[[], datasets.Split]
    dims: str
    lr: float
    substitute_for: str


SETUPS = {
    "digits": StudySetup(datasets.digits, "64,16,10,10", 0.01, "MNIST"),  # P F.3: 784-16-10-10, lr 0.01
    # P F.3 CIFAR: 3072-128-32-10, lr 0.02; the widths of P F.4's CIFAR net (32, 10) keep ψ affordable
    "synthetic": StudySetup(lambda: datasets.synthetic(n_samples=4000, n_features=64), "64,32,10,10", 0.02,
                            "CIFAR-10"),
}


def study_architecture(dims: str, dtype=torch.float64, device="cpu") -> Architecture:
    """The papers' net: LeakyReLU(0.1), no biases, cross-entropy."""
    return zoo.get("mlp", dims=dims, act="leakyrelu", bias=False, loss="cross_entropy").to(dtype=dtype, device=device)


def train_sgd(arch: Architecture, thetas: torch.Tensor, data: datasets.Split, epochs: int, lr: float,
              generator: torch.Generator, batch_size: int = 20,
              on_epoch: Callable[[int, torch.Tensor], None] | None = None, progress: bool = False) -> torch.Tensor:
    """Plain SGD θ ← θ − lr ∇L_batch(θ) for N independent models θ (N, p) at once (vmap over models;
    every model sees the same mini-batches).  ``on_epoch(epoch, θ)`` is called after each epoch."""
    step = vmap(grad(arch.batch_loss), in_dims=(0, None, None))
    for epoch in track(range(epochs), "training", total=epochs, enabled=progress):
        for X, Y in data.batches(batch_size, generator):
            thetas = thetas - lr * step(thetas, X, Y)
        if on_epoch is not None:
            on_epoch(epoch, thetas)
    return thetas


def losses(arch: Architecture, thetas: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Mean loss of each model on (X, Y): shape (N,)."""
    return vmap(arch.batch_loss, in_dims=(0, None, None))(thetas, X, Y)


def accuracies(arch: Architecture, thetas: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    return vmap(lambda th: (arch.forward(th, X).argmax(-1) == Y).to(X.dtype).mean())(thetas)


def exact_batch(dims: str | tuple[int, ...], form: str) -> int:
    """Largest batch on which every hidden-layer action keeps the outputs exactly: σ-inverse needs
    b ≤ each layer's input width d₀…d_{L−2}; pinv needs b ≤ each hidden width d₁…d_{L−1}."""
    d = zoo.parse_dims(dims)
    return min(d[:-2]) if form == "sigma_inverse" else min(d[1:-1])


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (nan where x or y is constant)."""
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))


def correlation(x, y, generator: np.random.Generator, n_boot: int = 2000, level: float = 0.95) -> dict:
    """Pearson and Spearman r of (x, y) with percentile bootstrap CIs (models resampled with replacement)."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    idx = generator.integers(0, len(x), size=(n_boot, len(x)))
    xb, yb = x[idx], y[idx]
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    out = {}
    for name, a, b, ab, bb in (("pearson", x, y, xb, yb),
                               ("spearman", rankdata(x), rankdata(y), rankdata(xb, axis=1), rankdata(yb, axis=1))):
        boot = pearson(ab, bb)
        out[name] = float(pearson(a, b))
        out[f"{name}_ci"] = [float(v) for v in np.nanpercentile(boot, q)]
    out["n"], out["bootstrap"], out["ci_level"] = len(x), n_boot, level
    return out


def curvature_probe(arch: Architecture, split: datasets.Split, form: str, batch: int | None, generator):
    """(symmetry, X, c): the product action, its fixed batch X (``batch`` random training samples)
    and one random algebra element c ~ N(0, I) in its generator basis, all shared by the models."""
    symmetry = hidden_layers_gl(arch, form)
    b = batch or exact_batch(arch.spec["dims"], form)
    rows = torch.randperm(split.X_train.shape[0], generator=generator)[:b].to(split.X_train.device)
    return symmetry, split.X_train[rows].to(torch.float64), geometry.random_algebra_elements(symmetry, 1, generator)


def model_psi(symmetry: Symmetry, theta: torch.Tensor, X: torch.Tensor, coeffs: torch.Tensor) -> float:
    """ψ in float64 (nested forward-mode derivatives through the pseudo-inverses)."""
    return float(geometry.psi(symmetry, theta.to(torch.float64), coeffs, X))


def run_correlation(dataset: str = "digits", n_models: int = 100, epochs: int = 40, seed: int = 0,
                    device: str = "cpu", progress: bool = False, *, dims: str | None = None, lr: float | None = None,
                    batch_size: int = 20, directions: int = geometry.PAPER_DIRECTIONS,
                    displacements=geometry.PAPER_DISPLACEMENTS, psi_form: str = "sigma_inverse",
                    psi_batch: int | None = None, chunk_size: int = 200, dtype=torch.float64,
                    n_boot: int = 2000) -> dict:
    """Table 1's protocol on a substitute data set (``digits`` or ``synthetic``); returns per-model
    values, the correlations with validation loss and the setup."""
    if dataset not in SETUPS:
        raise InputError(f"unknown data set {dataset!r}; choose one of {', '.join(SETUPS)}")
    if n_models < 3:
        raise InputError(f"a correlation needs at least 3 models, got {n_models}")
    setup = SETUPS[dataset]
    dims, lr = dims or setup.dims, lr if lr is not None else setup.lr
    split = setup.loader().to(dtype=dtype, device=device)
    arch = study_architecture(dims, dtype, device)
    if arch.layout.shape("W1")[1] != split.num_features:
        raise InputError(f"dims {dims} do not match the {split.num_features} features of {dataset}")
    timings = {}
    t0 = time.perf_counter()
    thetas = torch.stack([arch.sample_params(make_generator(seed, STREAM_INIT, i)) for i in range(n_models)])
    thetas = train_sgd(arch, thetas, split, epochs, lr, make_generator(seed, STREAM_ORDER), batch_size,
                       progress=progress)
    timings["training"] = time.perf_counter() - t0
    finite = torch.isfinite(thetas).all(dim=1)
    val = losses(arch, thetas, split.X_test, split.y_test)
    train = losses(arch, thetas, split.X_train, split.y_train)
    acc = accuracies(arch, thetas, split.X_test, split.y_test)

    probes = make_generator(seed, STREAM_PROBES)
    D = geometry.random_directions(directions, arch.num_params, probes, dtype, device)
    symmetry, X_psi, coeffs = curvature_probe(arch, split, psi_form, psi_batch, probes)
    exactness = symmetry.exactness(thetas[0].to(torch.float64), X_psi)
    train_loss = lambda th: arch.batch_loss(th, split.X_train, split.y_train)
    t0 = time.perf_counter()
    phi = [float(geometry.sharpness(train_loss, th, D, displacements, chunk_size=chunk_size))
           for th in track(thetas, "sharpness φ", total=n_models, enabled=progress)]
    timings["phi"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    psi = [model_psi(symmetry, th, X_psi, coeffs) for th in track(thetas, "curvature ψ", total=n_models,
                                                                  enabled=progress)]
    timings["psi"] = time.perf_counter() - t0

    columns = {"val_loss": val.tolist(), "train_loss": train.tolist(), "val_accuracy": acc.tolist(), "phi": phi,
               "phi_delta": [p - t for p, t in zip(phi, train.tolist(), strict=True)], "psi": psi}
    keep = np.array([bool(f) and all(math.isfinite(columns[k][i]) for k in columns) for i, f in enumerate(finite)])
    boot = np.random.default_rng(np.random.SeedSequence([seed, STREAM_BOOT]))
    y = np.asarray(columns["val_loss"])[keep]
    corr = {k: correlation(np.asarray(columns[k])[keep], y, boot, n_boot) for k in ("phi", "phi_delta", "psi",
                                                                                     "train_loss")}
    paper = PAPER_TABLE1[setup.substitute_for]
    return {
        "dataset": split.name, "substitute_for": setup.substitute_for,
        "note": f"substitute: {split.name} stands in for {setup.substitute_for}; the paper's numbers are on "
                f"{setup.substitute_for} and are not comparable numerically",
        "config": {"n_models": n_models, "epochs": epochs, "seed": seed, "dims": dims, "lr": lr,
                   "batch_size": batch_size, "optimizer": "SGD", "activation": "leakyrelu(0.1)", "bias": False,
                   "dtype": str(dtype).removeprefix("torch."), "device": str(device),
                   "train_samples": int(split.X_train.shape[0]), "val_samples": int(split.X_test.shape[0]),
                   "phi": {"directions": directions, "displacements": list(displacements), "loss": "full training set",
                           "shared_across_models": True},
                   "psi": {"k": 1, "symmetry": symmetry.name, "form": psi_form, "batch": int(X_psi.shape[0]),
                           "batch_from": "training set (fixed random rows)", "coefficients": "c ~ N(0, I), shared",
                           "exactness_model0": exactness}},
        "models": columns, "diverged": int((~finite).sum()), "used": int(keep.sum()),
        "correlations_with_val_loss": corr,
        "paper_table1": {"column": setup.substitute_for, "phi_pearson": paper["phi"], "psi_pearson": paper["psi"],
                         "source": "P Table 1 / D Table 5.1 (real data; not a reproduction target)"},
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
