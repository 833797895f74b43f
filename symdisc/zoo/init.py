"""Parameter and data samplers shared by the presets."""

from __future__ import annotations

import math

import torch

from symdisc.layout import ParamLayout

BIAS_STD = 0.5


def fan_in_sampler(layout: ParamLayout, fan_in_axis: dict[str, int] | None = None):
    """θ with W ~ N(0, 1/fan_in) (fan_in = product of the non-output axes) and 1-D tensors ~ N(0, ½²).

    ``fan_in_axis`` names, per tensor, the axis that indexes inputs when it is not the last one.
    """
    fan_in_axis = fan_in_axis or {}

    def sample(gen: torch.Generator, dtype: torch.dtype, device: torch.device, n: int | None = None) -> torch.Tensor:
        """θ (p,), or n draws (n, p) when ``n`` is given."""
        parts = []
        for name, shape in zip(layout.names, layout.shapes, strict=True):
            z = torch.randn((n or 1, math.prod(shape)), generator=gen, dtype=torch.float64)
            if len(shape) <= 1:
                std = BIAS_STD
            else:
                axis = fan_in_axis.get(name)
                fan = shape[axis] if axis is not None else math.prod(shape[1:])
                std = 1.0 / math.sqrt(max(fan, 1))
            parts.append(std * z)
        theta = torch.cat(parts, dim=1).to(dtype=dtype, device=device)
        return theta if n is not None else theta[0]

    return sample


def gaussian_data(x_shape: tuple[int, ...], y_shape: tuple[int, ...] | None, num_classes: int | None = None):
    """X ~ N(0, I) of shape (B, *x_shape); Y ~ N(0, I) (regression) or uniform labels (classification)."""

    def sample(batch: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device):
        X = torch.randn((batch, *x_shape), generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
        if num_classes is not None:
            Y = torch.randint(0, num_classes, (batch,), generator=gen).to(device)
        else:
            Y = torch.randn((batch, *y_shape), generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
        return X, Y

    return sample


def uniform_sampler(layout: ParamLayout, low: float = 0.0, high: float = 1.0):
    """θ ~ U[low, high] entrywise (the teleportation regression E3 initialises W ~ U[0, 1])."""

    def sample(gen: torch.Generator, dtype: torch.dtype, device: torch.device, n: int | None = None) -> torch.Tensor:
        u = torch.rand((n or 1, layout.num_params), generator=gen, dtype=torch.float64)
        theta = (low + (high - low) * u).to(dtype=dtype, device=device)
        return theta if n is not None else theta[0]

    return sample


def uniform_data(x_shape: tuple[int, ...], y_shape: tuple[int, ...]):
    """X, Y ~ U[0, 1] (teleport.md E3)."""

    def sample(batch: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device):
        X = torch.rand((batch, *x_shape), generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
        Y = torch.rand((batch, *y_shape), generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
        return X, Y

    return sample
