"""The learned group action a_X(g, θ): an MLP taking (group element, θ, data) and returning θ'.

The group element g = exp(M_n)···exp(M_1) enters through an *encoding*:

* ``matrix`` (the paper's reading, dissertation §6.5): vec(g − I) ∈ ℝ^{p²}; free generators only;
* ``orbit`` (scales with p): g θ − θ ∈ ℝ^p, the displacement of the linear action.

With ``lin = gθ − θ`` and N the MLP over [encoding, θ, vec(X)]:

* ``identity="hard"``:      a = θ + s·lin + N(enc, θ, X) − N(0, θ, X)   (a(I, θ) = θ exactly)
* ``identity="residual"``:  a = θ + s·lin + N(enc, θ, X)
* ``identity="free"``:      a = N(enc, θ, X)                          (the paper: outputs θ')

s = 1 with ``linear_skip`` (the action starts as the linear action gθ), else 0.  Because a
depends on g only through (enc, lin), the field of any algebra element M is one jvp:
ξ_M(θ) = D_g a|_{I,θ}(M) = ∂a/∂(enc, lin) · (enc_M, Mθ), with enc_M = vec(M) or Mθ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from symdisc.errors import InputError

Encoding = Literal["matrix", "orbit"]
Identity = Literal["hard", "residual", "free"]
Constraint = Literal["none", "output-null"]


@dataclass(frozen=True)
class ActionConfig:
    width: int = 128
    depth: int = 3  # hidden layers
    encoding: Encoding = "orbit"
    identity: Identity = "hard"
    linear_skip: bool = True
    use_data: bool = True
    activation: str = "silu"
    constraint: Constraint = "none"  # "output-null": fields projected onto null D_θf(θ, X), finite action = flow
    flow_steps: int = 8  # RK4 steps of the constrained action's flow per group element
    retract_steps: int = 3  # Gauss–Newton steps back onto the output level set after each RK4 step (0: none)

    def to_dict(self) -> dict:
        return asdict(self)


class _SiLU(nn.Module):
    """z·sigmoid(z) from primitive ops: nested forward-mode AD (brackets, ∂ξ/∂X) needs it, and
    torch's fused silu has no forward derivative of its backward."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.sigmoid(z)


_ACTS = {"silu": _SiLU, "tanh": nn.Tanh}


class ActionNet(nn.Module):
    """N(enc, θ, vec X) → ℝ^p, an MLP of ``depth`` hidden layers of ``width``."""

    def __init__(self, p: int, data_dim: int, cfg: ActionConfig, generator: torch.Generator | None = None):
        super().__init__()
        if cfg.encoding not in ("matrix", "orbit"):
            raise InputError(f"unknown action encoding {cfg.encoding!r}; choose matrix or orbit")
        if cfg.identity not in ("hard", "residual", "free"):
            raise InputError(f"unknown identity mode {cfg.identity!r}; choose hard, residual or free")
        if cfg.activation not in _ACTS:
            raise InputError(f"unknown action activation {cfg.activation!r}")
        if cfg.constraint not in ("none", "output-null"):
            raise InputError(f"unknown field constraint {cfg.constraint!r}; choose none or output-null")
        if cfg.flow_steps < 1 or cfg.retract_steps < 0:
            raise InputError(f"the constrained action needs flow_steps ≥ 1 and retract_steps ≥ 0, got "
                             f"{cfg.flow_steps} and {cfg.retract_steps}")
        if cfg.depth < 1 or cfg.width < 1:
            raise InputError("the action MLP needs depth ≥ 1 and width ≥ 1")
        self.p, self.cfg = p, cfg
        self.enc_dim = p * p if cfg.encoding == "matrix" else p
        self.data_dim = data_dim if cfg.use_data else 0
        dims = [self.enc_dim + p + self.data_dim] + [cfg.width] * cfg.depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), _ACTS[cfg.activation]()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cfg.width, p)
        if generator is not None:
            with torch.no_grad():
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        bound = 1.0 / m.in_features**0.5
                        m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
                        m.bias.copy_((torch.rand(m.bias.shape, generator=generator) * 2 - 1) * bound)
        if cfg.identity != "free":  # start at the (linear) identity action
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def is_linear(self) -> bool:
        """Whether a(g, θ) = gθ exactly: a (hard or residual) identity with the linear skip and a zero head."""
        cfg = self.cfg
        return (cfg.identity != "free" and cfg.linear_skip
                and not bool(self.head.weight.any()) and not bool(self.head.bias.any()))

    def net(self, enc: torch.Tensor, theta: torch.Tensor, xflat: torch.Tensor | None) -> torch.Tensor:
        parts = [enc, theta] + ([xflat] if self.data_dim else [])
        return self.head(self.body(torch.cat(parts)))

    def forward(self, enc, lin, theta, xflat):
        """a from the encoding ``enc`` and the linear displacement ``lin`` = gθ − θ."""
        cfg = self.cfg
        if cfg.identity == "free":
            return self.net(enc, theta, xflat)
        out = theta + (lin if cfg.linear_skip else 0.0) + self.net(enc, theta, xflat)
        if cfg.identity == "hard":
            out = out - self.net(torch.zeros_like(enc), theta, xflat)
        return out
