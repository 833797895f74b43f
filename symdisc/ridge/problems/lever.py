"""The lever game of RR Fig. 6 (zero-shot coordination): two players each pull one of 10 levers and both get
the lever's payoff r_k if they pull the same lever, else 0.

Payoff order (ours): levers 0–6 pay 1.0, levers 7–8 pay 0.8, lever 9 pays 0.6 (``LEVER_PAYOFFS``).
Parametrisation (ours; the paper gives none): θ ∈ ℝ²⁰, θ[:10] and θ[10:] are the softmax logits of agents 1
and 2, π_i = softmax(θ_i).  J(θ) = Σ_k π1_k π2_k r_k; RR minimises −J (MIS: −J − λ·H, reference §1.2).
Each agent's logits can be shifted by a constant without changing anything (so ∇²·1_agent = 0).
All functions take θ of shape (..., 20).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from symdisc.errors import InputError

N_LEVERS = 10
LEVER_PAYOFFS = (1.0,) * 7 + (0.8,) * 2 + (0.6,)
LEVER_CLASSES = (tuple(range(7)), (7, 8), (9,))  # levers with equal payoff, in LEVER_PAYOFFS order


def _split(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if theta.shape[-1] != 2 * N_LEVERS:
        raise InputError(f"lever-game θ must have {2 * N_LEVERS} entries (two agents' logits), got {theta.shape[-1]}")
    return theta[..., :N_LEVERS], theta[..., N_LEVERS:]


def _payoffs(theta: torch.Tensor) -> torch.Tensor:
    return torch.tensor(LEVER_PAYOFFS, dtype=theta.dtype, device=theta.device)


def lever_policies(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(π1, π2) = (softmax(θ[:10]), softmax(θ[10:])), each of shape (..., 10)."""
    t1, t2 = _split(theta)
    return t1.softmax(-1), t2.softmax(-1)


def lever_return(theta: torch.Tensor) -> torch.Tensor:
    """Self-play return J(θ) = Σ_k π1_k π2_k r_k ∈ [0, 1], shape (...)."""
    p1, p2 = lever_policies(theta)
    return (p1 * p2 * _payoffs(theta)).sum(-1)


def lever_entropy(theta: torch.Tensor) -> torch.Tensor:
    """H(π1) + H(π2), H(π) = −Σ_k π_k log π_k (from log_softmax: stable, twice differentiable).  Max 2·log 10."""
    def h(t):
        logp = t.log_softmax(-1)
        return -(logp.exp() * logp).sum(-1)

    t1, t2 = _split(theta)
    return h(t1) + h(t2)


def cross_play(theta_a: torch.Tensor, theta_b: torch.Tensor) -> torch.Tensor:
    """J(π^a_1, π^b_2): agent 1 of run a plays agent 2 of run b (reference §3.1)."""
    return lever_return(torch.cat([_split(theta_a)[0], _split(theta_b)[1]], -1))


def greedy_levers(theta: torch.Tensor) -> tuple[int, int]:
    """(argmax π1, argmax π2) for θ of shape (20,); ties go to the lowest lever index."""
    t1, t2 = _split(theta.detach())
    return int(t1.argmax()), int(t2.argmax())


def symmetric_theta(class_logits: Sequence[float], dtype=torch.float64) -> torch.Tensor:
    """θ with logit class_logits[c] on every lever of payoff class c (1.0, 0.8, 0.6), the same for both agents:
    a point fixed by every lever relabelling that preserves payoffs and by the agent swap (reference §4.4 T10)."""
    if len(class_logits) != len(LEVER_CLASSES):
        raise InputError(f"give one logit per payoff class ({len(LEVER_CLASSES)}), got {len(class_logits)}")
    one = [float(class_logits[c]) for c, levers in enumerate(LEVER_CLASSES) for _ in levers]
    return torch.tensor(one + one, dtype=dtype)


def lever_permutation(perm: Sequence[int]) -> torch.Tensor:
    """The θ index map (20,) of relabelling levers k → perm[k] for both agents: θ' = θ[idx] has θ'_{perm[k]} = θ_k.
    It is a symmetry of J and H iff perm preserves LEVER_PAYOFFS."""
    perm = [int(k) for k in perm]
    if sorted(perm) != list(range(N_LEVERS)):
        raise InputError(f"a lever permutation must reorder 0..{N_LEVERS - 1}, got {perm}")
    inv = [0] * N_LEVERS
    for k, pk in enumerate(perm):
        inv[pk] = k
    return torch.tensor(inv + [N_LEVERS + k for k in inv])


def agent_swap() -> torch.Tensor:
    """The θ index map (20,) exchanging the two agents' logits (a symmetry of J and H)."""
    return torch.cat([torch.arange(N_LEVERS, 2 * N_LEVERS), torch.arange(N_LEVERS)])


def lever_symmetry():
    """The game's continuous symmetry: each agent's logits shifted by a constant, θ ↦ θ + c₁·[1₁₀, 0] + c₂·[0, 1₁₀]
    (softmax invariance; a ``TranslationSymmetry`` keeping the return)."""
    from symdisc.layout import ParamLayout
    from symdisc.symmetry.translation import TranslationSymmetry

    V = torch.zeros(2 * N_LEVERS, 2, dtype=torch.float64)
    V[:N_LEVERS, 0], V[N_LEVERS:, 1] = 1.0, 1.0
    return TranslationSymmetry(ParamLayout.from_pairs([("theta", (2 * N_LEVERS,))]), V, "softmax shift (per agent)",
                               "loss", source="lever game: softmax(θ_i + c·1) = softmax(θ_i)")
