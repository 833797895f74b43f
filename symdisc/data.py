"""Offline data sets (nothing is downloaded): scikit-learn's bundled digits in place of MNIST, and
synthetic classification in place of CIFAR-10 / Fashion-MNIST (teleport.md §4).  Results on them
are substitutes, never the papers' numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from symdisc.errors import InputError


@dataclass(frozen=True)
class Split:
    """Train / test tensors: X (n, d) standardised with the training statistics, y (n,) int64 labels."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    name: str

    @property
    def num_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1

    def to(self, dtype=None, device=None) -> Split:
        cast = lambda t: t.to(dtype=dtype, device=device) if t.is_floating_point() else t.to(device=device)
        return Split(cast(self.X_train), cast(self.y_train), cast(self.X_test), cast(self.y_test), self.name)

    def batches(self, batch_size: int, generator: torch.Generator):
        """One epoch of shuffled training mini-batches (X, y)."""
        order = torch.randperm(self.X_train.shape[0], generator=generator).to(self.X_train.device)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield self.X_train[idx], self.y_train[idx]


def _split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, name: str, dtype) -> Split:
    if not 0 < test_fraction < 1:
        raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    mean, std = X[train].mean(0), X[train].std(0)
    std[std == 0] = 1.0
    Xs = (X - mean) / std
    t = lambda a: torch.as_tensor(a, dtype=dtype)
    return Split(t(Xs[train]), torch.as_tensor(y[train], dtype=torch.int64), t(Xs[test]),
                 torch.as_tensor(y[test], dtype=torch.int64), name)


def digits(test_fraction: float = 0.25, seed: int = 0, dtype=torch.float32) -> Split:
    """scikit-learn's 8×8 digits (1,797 samples, 64 features, 10 classes), the MNIST substitute."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split(d.data.astype(np.float64), d.target, test_fraction, seed, "digits", dtype)


def synthetic(n_samples: int = 4000, n_features: int = 64, n_classes: int = 10, test_fraction: float = 0.25,
              seed: int = 0, dtype=torch.float32) -> Split:
    """``make_classification`` (20 informative features): the CIFAR-10 / Fashion-MNIST substitute."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n_samples, n_features=n_features, n_informative=min(20, n_features),
                               n_redundant=0, n_classes=n_classes, n_clusters_per_class=2, class_sep=1.0,
                               random_state=seed)
    return _split(X, y, test_fraction, seed, f"synthetic-{n_features}", dtype)
