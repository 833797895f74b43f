"""What RR runs on, by name (the ``symdisc rr`` CLI's TARGET): the paper's problems or any architecture.

* ``toy2d``  the 2-D toy (Fig. 1), started at its maximum (no MIS search: the maximum is the saddle);
* ``tree``   a random binary tree (``depth``), loss −J, MIS by max entropy + min gradient norm ([P] §3);
* ``lever``  the lever game, loss −J, MIS likewise; its known symmetry is the per-agent softmax shift;
* a zoo preset or ``FILE.py:FUNC``: the architecture's batch loss on ``batch_size`` samples drawn once,
  started at θ₀ = ε·θ_init ("near zero": near the saddle at the origin) or at the MIS with ``mis``.

``Target`` bundles the loss, the start, the symmetry (``none`` | ``known`` | an artefact directory) and
``describe(θ)``, the problem's own reading of a solution (greedy leaf and reward, levers and payoff, loss).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from symdisc.architecture import make_generator
from symdisc.errors import InputError
from symdisc.ridge.mis import MISResult, find_mis
from symdisc.symmetry.base import Symmetry

PROBLEMS = ("toy2d", "tree", "lever")
TREE_ENT = 1.0  # λ_ent of the tree MIS (not given by the paper): the tree has no interior critical point, so the
# MIS trades gradient norm for entropy (experiments/ridge/tree_rl.py)
# each problem's RR defaults (options a user does not set): the tree as experiments/ridge/tree_rl.py, the lever
# game as symdisc.ridge.zsc.LEVER_RR (its MIS counts as a saddle, one ride + polish per solution)
TREE_RR = dict(n_ridges=6, alpha_min=0.01, max_ride_steps=10, max_depth=8, eigensolver="dense")


@dataclass
class Target:
    name: str
    loss: Callable[[torch.Tensor], torch.Tensor]
    start: torch.Tensor
    symmetry: Symmetry | None
    describe: Callable[[torch.Tensor], dict]
    mis: MISResult | None = None
    info: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # RR options this target sets unless the user does


def _problem_symmetry(name: str, symmetry: str) -> Symmetry | None:
    if symmetry == "none":
        return None
    if symmetry == "known" and name == "lever":
        from symdisc.ridge.problems.lever import lever_symmetry

        return lever_symmetry()
    raise InputError(f"--symmetry {symmetry!r}: the {name} problem has no continuous symmetry to use (choose none"
                     + (" or known" if name == "lever" else "") + ")")


def problem(name: str, seed: int = 0, symmetry: str = "none", depth: int = 4, init_scale: float = 1e-2) -> Target:
    """One of ``PROBLEMS`` (see the module docstring)."""
    sym = _problem_symmetry(name, symmetry)
    if name == "toy2d":
        from symdisc.ridge.problems.toy2d import TOY2D_START, toy2d_critical_points, toy2d_loss

        points = toy2d_critical_points()

        def describe(th):
            near = min(points, key=lambda c: sum((a - float(b)) ** 2 for a, b in zip(c["location"], th, strict=True)))
            return {"loss": float(toy2d_loss(th)), "nearest_critical_point": near}

        return Target(name, toy2d_loss, torch.tensor(TOY2D_START, dtype=torch.float64), sym, describe)
    if name == "tree":
        from symdisc.ridge.problems.tree import positive_leaves, random_tree, solution_leaf, tree_entropy, tree_return

        tree = random_tree(depth, make_generator(seed, 0))
        loss = lambda th: -tree_return(th, tree)
        start = init_scale * torch.randn(tree.n_nodes, generator=make_generator(seed, 1), dtype=torch.float64)
        mis = find_mis(loss, start, entropy=lambda th: tree_entropy(th, tree), ent_weight=TREE_ENT)
        positive = set(positive_leaves(tree))

        def describe(th):
            leaf = solution_leaf(th, tree)
            return {"return": float(tree_return(th, tree)), "leaf": leaf, "reward": tree.rewards[leaf],
                    "positive": leaf in positive}

        return Target(name, loss, mis.theta, sym, describe, mis,
                      {"tree": tree.to_dict(), "positive_leaves": sorted(positive)}, TREE_RR)
    if name == "lever":
        from symdisc.ridge.problems.lever import LEVER_PAYOFFS, greedy_levers, lever_entropy, lever_return
        from symdisc.ridge.zsc import LEVER_ENT, LEVER_RR

        loss = lambda th: -lever_return(th)
        start = init_scale * torch.randn(20, generator=make_generator(seed, 1), dtype=torch.float64)
        mis = find_mis(loss, start, entropy=lever_entropy, ent_weight=LEVER_ENT)

        def describe(th):
            a, b = greedy_levers(th)
            return {"self_play": float(lever_return(th)), "levers": [a, b],
                    "payoff": LEVER_PAYOFFS[a] if a == b else 0.0}

        return Target(name, loss, mis.theta, sym, describe, mis, defaults={k: v for k, v in LEVER_RR.items()
                                                                              if k != "budget"})
    raise InputError(f"unknown RR problem {name!r}; choose {', '.join(PROBLEMS)} or an architecture")


def resolve_symmetry(arch, symmetry: str) -> Symmetry | None:
    """``none``, ``known`` (the architecture's exact data-free continuous symmetries, output- and loss-level,
    detected for user modules) or an artefact directory / exported file."""
    if symmetry == "none":
        return None
    if symmetry == "known":
        from symdisc.symmetry.known import continuous_symmetries
        from symdisc.symmetry.product import ProductSymmetry

        exact = continuous_symmetries(arch, preserves=None)  # loss-level ones (softmax translation) keep RR's loss
        if not exact:
            raise InputError(f"{arch.name} has no known continuous symmetry (`symdisc known` says why): use "
                             "--symmetry none or a discovered artefact")
        return exact[0] if len(exact) == 1 else ProductSymmetry(exact, name=f"known symmetries of {arch.name}")
    if Path(symmetry).exists():
        from symdisc.discovery.artefact import load

        return load(symmetry, arch=arch, fields="all")
    raise InputError(f"--symmetry {symmetry!r}: choose none, known or an existing artefact directory")


def architecture(arch, seed: int = 0, symmetry: str = "none", batch_size: int = 64, init_scale: float = 1e-2,
                 mis: bool = False) -> Target:
    """RR on an architecture's batch loss (a fixed batch; see the module docstring)."""
    if batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {batch_size}")
    sym = resolve_symmetry(arch, symmetry)
    X, Y = arch.sample_data(batch_size, make_generator(seed, 1))
    loss = lambda th: arch.batch_loss(th, X, Y)
    start = init_scale * arch.sample_params(make_generator(seed, 0))
    found = find_mis(loss, start, symmetry=sym, X=X, mu=1.0 if sym is not None else 0.0) if mis else None
    describe = lambda th: {"loss": float(loss(th))}
    return Target(arch.name, loss, found.theta if found else start, sym, describe, found,
                  {"num_params": arch.num_params, "batch_size": batch_size, "X": X})
