"""Colored digits: the colored-MNIST construction of RR §3.2 / Table 1 (after Arjovsky et al.'s IRM) on
scikit-learn's 8×8 digits (1,797 images, values 0–16), the substitute for MNIST.

Per sample: preliminary label ỹ = 1[digit ≥ 5]; label y = ỹ XOR Bernoulli(p_label = 0.25); colour
z = y XOR Bernoulli(p_env); features x = [z·img, (1 − z)·img] ∈ [0, 1]¹²⁸ with img = pixels/16 (64 values):
features 0–63 are the red channel (used when z = 1), 64–127 the green one (z = 0).  The samples are shuffled
and split into 3 disjoint environments of 599 with p_env = 0.2, 0.1 (train) and 0.9 (test), so colour agrees
with the label 80% / 90% of the time in training and 10% at test, while the digit shape agrees 75% everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from symdisc.errors import InputError

P_LABEL = 0.25
P_ENVS = (0.2, 0.1, 0.9)


def colored_digits(generator: torch.Generator, p_envs: Sequence[float] = P_ENVS, p_label: float = P_LABEL,
                   dtype=torch.float64) -> dict:
    """The environments, deterministic given the generator (one permutation, then per environment the label
    flips, then the colour flips).  Returns
    {"envs": [{"X": (n, 128) dtype, "y": (n,) int64, "color": (n,) int64 (1 = red), "digit": (n,) int64,
    "index": (n,) int64 (rows of load_digits), "p_color": p_env}, ...], "p_label": p_label,
    "train": (0, …, m − 2), "test": m − 1} with m = len(p_envs) environments of near-equal size."""
    from sklearn.datasets import load_digits

    if len(p_envs) < 2 or not all(0.0 <= p <= 1.0 for p in (*p_envs, p_label)):
        raise InputError(f"need ≥ 2 environments and probabilities in [0, 1], got p_envs={p_envs}, p_label={p_label}")
    d = load_digits()
    images = torch.as_tensor(d.data, dtype=dtype) / 16.0
    digits = torch.as_tensor(d.target, dtype=torch.int64)
    order = torch.randperm(len(digits), generator=generator)
    envs = []
    for idx, p in zip(torch.tensor_split(order, len(p_envs)), p_envs, strict=True):
        n = len(idx)
        y = (digits[idx] >= 5).long() ^ (torch.rand(n, generator=generator, dtype=torch.float64) < p_label).long()
        z = y ^ (torch.rand(n, generator=generator, dtype=torch.float64) < float(p)).long()
        img, zc = images[idx], z.to(dtype)[:, None]
        envs.append({"X": torch.cat([zc * img, (1 - zc) * img], 1), "y": y, "color": z, "digit": digits[idx],
                     "index": idx, "p_color": float(p)})
    return {"envs": envs, "p_label": float(p_label), "train": tuple(range(len(p_envs) - 1)), "test": len(p_envs) - 1}
