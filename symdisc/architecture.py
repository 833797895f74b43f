"""An architecture: parameter layout, functional forward f(θ, X), per-sample loss L(θ, X, Y),
and samplers of θ and of data (X, Y).

All functionals are pure in θ (a flat vector, see :class:`ParamLayout`) and batched over the
leading axis of X.  ``samplewise`` says whether sample i's output depends on sample i alone (true
for MLPs and sequence models, false with batch-norm); per-sample Jacobians are then computed with
``vmap`` over samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from symdisc.errors import InputError
from symdisc.layout import ParamLayout
from symdisc.losses import PerSampleLoss

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NamedForward = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
ParamSampler = Callable[..., torch.Tensor]  # (gen, dtype, device[, n]) -> θ (p,) or (n, p)
DataSampler = Callable[[int, torch.Generator, torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Architecture:
    """A model family with explicit parameters θ ∈ ℝ^p.

    forward(θ, X) -> outputs (B, ...);   per_sample_loss(θ, X, Y) -> (B,);
    forward_named({name: tensor}, X): the same on named tensors (Jacobians per tensor are cheaper);
    sample_params(gen) -> θ (p,);        sample_data(B, gen) -> (X, Y).
    """

    name: str
    layout: ParamLayout
    forward_named: NamedForward
    loss: PerSampleLoss
    loss_name: str
    param_sampler: ParamSampler
    data_sampler: DataSampler
    source: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    default_batch_size: int = 64
    samplewise: bool = True
    coupling: str = ""  # how ``samplewise`` was decided (user modules: detected, given or batch norm)
    dtype: torch.dtype = torch.float32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    symmetry_factory: Callable[[Architecture], list] | None = None

    @property
    def num_params(self) -> int:
        return self.layout.num_params

    def to(self, dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> Architecture:
        """Same architecture, sampling in another dtype / on another device."""
        return replace(
            self,
            dtype=self.dtype if dtype is None else dtype,
            device=self.device if device is None else torch.device(device),
        )

    def forward(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """f(θ, X) for a flat θ."""
        return self.forward_named(self.layout.unflatten(theta), X)

    def per_sample_loss(self, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """L(θ, X, Y) ∈ ℝ^B: one loss per sample."""
        return self.loss(self.forward(theta, X), Y)

    def batch_loss(self, theta: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Mean of the per-sample losses."""
        return self.per_sample_loss(theta, X, Y).mean()

    def sample_params(self, generator: torch.Generator) -> torch.Tensor:
        theta = self.param_sampler(generator, self.dtype, self.device)
        if theta.shape != (self.num_params,):
            raise InputError(f"{self.name}: parameter sampler returned shape {tuple(theta.shape)}")
        return theta

    def sample_draws(self, n: int, batch_size: int, generator: torch.Generator):
        """n independent draws: θ (n, p), X (n, B, …), Y (n, B, …).  Data are i.i.d. samples, drawn as
        one batch of n·B and split; θ in one call when the sampler takes ``n``."""
        try:
            theta = self.param_sampler(generator, self.dtype, self.device, n)
        except TypeError:  # a user sampler of one θ
            theta = torch.stack([self.sample_params(generator) for _ in range(n)])
        if theta.shape != (n, self.num_params):
            raise InputError(f"{self.name}: parameter sampler returned shape {tuple(theta.shape)}")
        X, Y = self.sample_data(n * batch_size, generator)
        return theta, X.reshape(n, batch_size, *X.shape[1:]), Y.reshape(n, batch_size, *Y.shape[1:])

    def sample_data(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if batch_size < 1:
            raise InputError(f"batch size must be ≥ 1, got {batch_size}")
        X, Y = self.data_sampler(batch_size, generator, self.dtype, self.device)
        for what, t in (("inputs X", X), ("targets Y", Y)):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise InputError(f"{self.name}: sampled {what} contain NaN or inf")
        return X, Y

    def known_symmetries(self) -> list:
        return [] if self.symmetry_factory is None else list(self.symmetry_factory(self))

    def describe(self) -> dict[str, Any]:
        return {
            "architecture": self.name,
            "spec": self.spec,
            "num_params": self.num_params,
            "layout": self.layout.describe(),
            "layout_hash": self.layout.hash(),
            "loss": self.loss_name,
            "default_batch_size": self.default_batch_size,
            "samplewise": self.samplewise,
            "coupling": self.coupling,
            "source": self.source,
        }


def make_generator(seed: int, *stream: int) -> torch.Generator:
    """A CPU generator for (seed, *stream); samplers draw on the CPU and move to the device, so runs
    repeat across devices.  Streams are derived with numpy's SeedSequence: torch's Mersenne twister
    gives correlated first draws for nearby integer seeds, so never pass ``seed + j`` instead."""
    if int(seed) < 0:
        raise InputError(f"a seed must be a non-negative integer, got {seed}")
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(1, np.uint64)[0] >> 1))
    return g
