"""Configuration of a discovery run (everything needed to repeat it, stored in checkpoints and cards)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from symdisc.discovery.action import ActionConfig
from symdisc.discovery.objective import Weights, resolve_preset
from symdisc.errors import InputError


@dataclass(frozen=True)
class DiscoveryConfig:
    """A run: generators, action, objective weights and the optimisation schedule.

    ``batch``: data samples per draw (the X the action sees); ``draws``: (θ, X, Y) draws per step,
    fresh every step from the training stream (seed, 10, step); held-out draws use another stream.
    """

    k: int = 1
    generator_kind: str = "free"
    rank: int = 1
    spectral_init: bool = True
    action: ActionConfig = field(default_factory=ActionConfig)
    preset: str = "unconstrained"
    weights: Weights = field(default_factory=Weights)
    steps: int = 1000
    warmup_frac: float = 0.2
    draws: int = 32
    batch: int | None = None
    lr_generators: float = 1e-2
    lr_action: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    patience: int = 300
    min_delta: float = 1e-3
    log_every: int = 10
    checkpoint_every: int = 100
    block: int | None = None  # incremental discovery: train ≤ block fresh fields per round (incremental.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscoveryConfig:
        d = dict(d)
        d["action"] = ActionConfig(**d["action"])
        d["weights"] = Weights(**d["weights"])
        return cls(**d)

    def validate(self, num_params: int) -> None:
        if self.k < 1:
            raise InputError(f"the number of generators k must be ≥ 1, got {self.k}")
        if self.k > num_params:
            raise InputError(f"the number of generators k = {self.k} exceeds the number of parameters "
                             f"p = {num_params}")
        if self.block is not None and self.block < 1:
            raise InputError(f"the block size must be ≥ 1, got {self.block}")
        if self.steps < 1 or self.draws < 1:
            raise InputError("steps and draws must be ≥ 1")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise InputError(f"checkpoints and logs need an interval ≥ 1, got {self.checkpoint_every} and "
                             f"{self.log_every}")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise InputError("warmup_frac must be in [0, 1)")
        if self.dtype not in ("float32", "float64"):
            raise InputError(f"dtype must be float32 or float64, got {self.dtype!r}")


def preset_config(preset: str, arch_name: str, **overrides: Any) -> DiscoveryConfig:
    """The configuration of a named preset (``default`` = ``constrained``, objective.DEFAULT_PRESET).

    ``constrained``: orbit encoding, hard identity with linear skip, spectral initialisation, warm-up with the
    action frozen, scale-free invariance (on the ambient fields) and independence; each field projected onto
    the output null space at (θ, X) and the finite action its flow (constraint.py), so neither composition
    nor bracket is trained (verification measures the bracket); the ambient action data-free.
    ``unconstrained``: the fields as the action gives them (so they can be loss-level symmetries), with
    composition and bracket terms and a data-dependent action; the default until issue 10.
    ``faithful``: the paper — matrix encoding vec(g − I), free output (no identity constraint), Adam
    at lr 1e-3 for everything, no warm-up or spectral start, eq. 6.3 weights of the experiment.
    """
    name, weights = resolve_preset(preset, arch_name)
    if name == "unconstrained":
        cfg = DiscoveryConfig(preset=name, weights=weights)
    elif name == "constrained":
        cfg = DiscoveryConfig(preset=name, weights=weights,
                              action=ActionConfig(constraint="output-null", use_data=False))
    else:
        cfg = DiscoveryConfig(
            preset=name, weights=weights, spectral_init=False, warmup_frac=0.0, lr_generators=1e-3, lr_action=1e-3,
            action=ActionConfig(width=128, depth=3, encoding="matrix", identity="free", linear_skip=False),
        )
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
