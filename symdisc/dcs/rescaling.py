"""DCS's own symmetry: the rescaling of its latent pairs, as a ``Symmetry`` on the penalised latents.

T(z) is invariant under z ↦ (e^c w, e^{−c} u) for each pair (w_i, u_i) of ``Sparse``/``Basis``, (s_j, w_{G_j})
of ``Group`` and (A_{:j}, B_{:j}) of ``LowRank``; the penalty is not.  Its discrete element c = iπ-like
ρ = −1 is the mirror that makes DCS work (Theorem 1); its identity component gives the free "teleport"
that balances each pair, ‖scaled‖ = ‖counter-scaled‖, lowering the penalty to the induced regulariser at the
same T (dcs.md P16; for ``LowRank`` only the column rescalings, a subgroup of DCS's GL(r)).

θ here is the flat vector of the penalised latents, in the handle's block order (``layout``); the generator
count k is the number of pairs.
"""

from __future__ import annotations

import torch

from symdisc.dcs.model import DCS
from symdisc.layout import ParamLayout
from symdisc.optim.move import GroupMove
from symdisc.symmetry.base import Symmetry

MAX_LOG_SCALE = 18.0  # |c| ≤ 18 (a factor e^18 ≈ 7e7): a pair with one factor ~0 is not blown up


class DCSRescaling(Symmetry):
    """z ↦ (e^c w, e^{−c} u) per latent pair of a DCS handle (see the module docstring)."""

    name = "dcs-rescaling"

    def __init__(self, dcs: DCS):
        names = dcs.latent_parameters(penalised=True)
        super().__init__(ParamLayout.from_pairs([(n, tuple(t.shape)) for n, t in names.items()]))
        self.pieces = []  # (scaled name, counter name, rule, generator offset, count, group index)
        prefixes = {id(m): n for n, m in dcs.model.named_modules()}
        offset = 0
        for b in dcs.blocks:
            prefix = prefixes[id(b.module)]
            full = b.latent_names(f"{prefix}." if prefix else "")
            lat = b.latents()
            for scaled, counter, rule in b.constraint.pairs():
                count = lat[scaled].shape[-1] if rule == "column" else lat[scaled].shape[0]
                self.pieces.append((full[scaled], full[counter], rule, offset, count,
                                    getattr(b.constraint, "index", None)))
                offset += count
        self.num_generators = offset

    def act(self, coeffs, theta, X=None):
        parts = self.layout.unflatten(theta)
        out = dict(parts)
        for scaled, counter, rule, off, count, index in self.pieces:
            c = coeffs[off: off + count].to(theta)
            out[scaled] = parts[scaled] * torch.exp(c)  # columns of A broadcast along the last axis
            out[counter] = parts[counter] * torch.exp(-(c[index.to(c.device)] if rule == "group" else c))
        return self.layout.flatten(out)

    def balancing_coefficients(self, theta: torch.Tensor) -> torch.Tensor:
        """c with ‖e^c w‖ = ‖e^{−c} u‖ per pair: c = ½ log(‖u‖/‖w‖) (0 where either is 0; |c| ≤ MAX_LOG_SCALE)."""
        parts = self.layout.unflatten(theta)
        c = theta.new_zeros(self.num_generators)
        for scaled, counter, rule, off, count, index in self.pieces:
            if rule == "column":
                a, b = parts[scaled].norm(dim=0), parts[counter].norm(dim=0)
            elif rule == "group":
                a = parts[scaled].abs()
                b = parts[counter].new_zeros(count).index_add(0, index.to(theta.device), parts[counter] ** 2).sqrt()
            else:
                a, b = parts[scaled].abs(), parts[counter].abs()
            ok = (a > 0) & (b > 0)
            ratio = torch.where(ok, b / torch.where(ok, a, torch.ones_like(a)), torch.ones_like(a))
            c[off: off + count] = (0.5 * ratio.log()).clamp(-MAX_LOG_SCALE, MAX_LOG_SCALE)
        return c

    def scale_vector(self, coeffs: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """diag J of the (diagonal) action at c: act(c, θ) = J θ."""
        return self.act(coeffs, torch.ones_like(theta))


class DiagonalMove(GroupMove):
    """θ' = J θ for a diagonal J (a rescaling); covectors transform by J^{-T} v = v / diag J exactly."""

    def __init__(self, theta: torch.Tensor, scales: torch.Tensor):
        self.theta, self.scales = theta, scales

    def transport_covector(self, v: torch.Tensor, method: str = "auto") -> torch.Tensor:
        return v / self.scales.to(v)
