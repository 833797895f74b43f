"""Per-sample losses c(f(θ, x), y): each returns one value per sample (leading batch axis)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from symdisc.errors import InputError

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ℓ_i = mean_j (f_ij − y_ij)² over all non-batch axes."""
    return (outputs - targets).pow(2).reshape(outputs.shape[0], -1).mean(dim=1)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ℓ_i = −log softmax(z_i)[y_i], softmax over the class axis (the last one)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none").reshape(
        logits.shape[0], -1
    ).mean(dim=1)


LOSSES: dict[str, PerSampleLoss] = {"mse": mse, "cross_entropy": cross_entropy}


def resolve_loss(loss: str | PerSampleLoss) -> tuple[str, PerSampleLoss]:
    """Name or callable → (name, per-sample loss)."""
    if callable(loss):
        return getattr(loss, "__name__", "custom"), loss
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)} or pass a callable")
    return loss, LOSSES[loss]
