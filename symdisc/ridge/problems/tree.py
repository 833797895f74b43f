"""Binary-tree RL of RR Fig. 2–3 (reference §5), with the exact expected return.

A tree has decision nodes s = 0..n−1 (root 0; random_tree numbers them breadth-first) and terminal leaves
j = 0..n (a binary tree with n decision nodes has n + 1 leaves).  ``left[s]`` / ``right[s]`` is the child
after action left / right: a decision node index c ≥ 0, or a leaf j encoded as ~j = −j − 1.
Leaf j pays ``rewards[j]`` ∈ {−1, 10}.

Policy (decision): one logit per decision node, π(left | s) = σ(θ_s), π(right | s) = σ(−θ_s), so θ ∈ ℝⁿ.
Then P(leaf j) = Π_{(s, a) on the path to j} π(a | s) and J(θ) = Σ_j r_j P(leaf j); RR minimises −J.
Everything is evaluated as exp(A·logσ(θ) + B·logσ(−θ)) with 0/1 path matrices A, B, so it is exact, stable at
large |θ|, twice differentiable and accepts θ of shape (..., n).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from symdisc.errors import InputError

REWARD_NEGATIVE = -1.0
REWARD_POSITIVE = 10.0


@dataclass
class Tree:
    """Plain-data binary decision tree (JSON-able; treat as immutable: path matrices are cached)."""

    left: list[int]
    right: list[int]
    rewards: list[float]
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.left, self.right = [int(c) for c in self.left], [int(c) for c in self.right]
        self.rewards = [float(r) for r in self.rewards]
        n = len(self.left)
        if n < 1 or len(self.right) != n or len(self.rewards) != n + 1:
            raise InputError(f"a tree with {len(self.left)}/{len(self.right)} left/right children needs "
                             f"n ≥ 1 decision nodes and n + 1 leaf rewards, got {len(self.rewards)}")
        kids = self.left + self.right
        nodes, leaves = sorted(c for c in kids if c >= 0), sorted(~c for c in kids if c < 0)
        if nodes != list(range(1, n)) or leaves != list(range(n + 1)):
            raise InputError("every decision node but the root and every leaf must be the child of exactly one node")
        if len(self.node_paths()) != n:
            raise InputError("the tree has a cycle: some decision nodes are not reachable from the root")

    @property
    def n_nodes(self) -> int:
        return len(self.left)

    @property
    def n_leaves(self) -> int:
        return len(self.rewards)

    @property
    def depth(self) -> int:
        """The largest number of decisions on a root-to-leaf path."""
        return max(len(p) for p in self.leaf_paths())

    def children(self, s: int) -> tuple[int, int]:
        return self.left[s], self.right[s]

    def _paths(self) -> tuple[dict[int, list], dict[int, list]]:
        """(node → path, leaf → path), a path being the list of (node, action) pairs, action 0 = left, 1 = right."""
        if "paths" not in self._cache:
            node_paths: dict[int, list] = {0: []}
            leaf_paths: dict[int, list] = {}
            stack = [0]
            while stack:
                s = stack.pop()
                for a, c in enumerate(self.children(s)):
                    path = node_paths[s] + [(s, a)]
                    if c < 0:
                        leaf_paths[~c] = path
                    elif c not in node_paths and len(path) <= len(self.left):
                        node_paths[c] = path
                        stack.append(c)
            self._cache["paths"] = (node_paths, leaf_paths)
        return self._cache["paths"]

    def node_paths(self) -> list[list[tuple[int, int]]]:
        """For each decision node reachable from the root, its path of (node, action) pairs from the root."""
        node_paths = self._paths()[0]
        return [node_paths[s] for s in sorted(node_paths)]

    def leaf_paths(self) -> list[list[tuple[int, int]]]:
        """For each leaf, the (node, action) pairs on its path from the root (action 0 = left, 1 = right)."""
        leaf_paths = self._paths()[1]
        return [leaf_paths[j] for j in range(self.n_leaves)]

    def path_matrices(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, ...]:
        """(A_leaf, B_leaf, A_node, B_node): A[j, s] = 1 if the path to leaf (node) j goes left at s, B for right."""
        key = ("mat", dtype, str(device))
        if key not in self._cache:
            mats = []
            for paths, rows in ((self.leaf_paths(), self.n_leaves), (self.node_paths(), self.n_nodes)):
                A, B = torch.zeros(rows, self.n_nodes, dtype=dtype), torch.zeros(rows, self.n_nodes, dtype=dtype)
                for j, path in enumerate(paths):
                    for s, a in path:
                        (B if a else A)[j, s] = 1.0
                mats += [A.to(device), B.to(device)]
            self._cache[key] = tuple(mats)
        return self._cache[key]

    def to_dict(self) -> dict:
        return {"left": list(self.left), "right": list(self.right), "rewards": list(self.rewards)}

    @classmethod
    def from_dict(cls, d: dict) -> Tree:
        return cls(list(d["left"]), list(d["right"]), list(d["rewards"]))


def random_tree(depth: int, generator: torch.Generator, q: float = 0.5, p_pos: float = 0.3) -> Tree:
    """A random tree whose longest root-to-leaf path has exactly ``depth`` decisions (our generator; the paper
    gives none).  A spine (a uniformly random root-to-depth path) is made of decision nodes; every other child of
    a node at level ℓ < depth − 1 (root: level 0) is a decision node with probability q, else a leaf; children of
    level depth − 1 nodes are leaves.  Each leaf pays 10 with probability p_pos, else −1; if all leaves pay the
    same, one uniformly chosen leaf is switched, so there is at least one positive and one negative leaf.
    Nodes and leaves are numbered breadth-first, left before right.  With q = 1/2 a subtree hanging off the spine
    is a critical branching process, so E[n_nodes] = depth + depth(depth − 1)/4: 7 at depth 4 (the paper's
    example has 6 nodes, 7 leaves), 32.5 at depth 10; E[#positive leaves] ≈ p_pos·(n_nodes + 1)."""
    if depth < 1:
        raise InputError(f"the tree depth must be at least 1, got {depth}")
    if not (0.0 <= q <= 1.0 and 0.0 <= p_pos <= 1.0):
        raise InputError(f"q and p_pos must be probabilities, got q={q}, p_pos={p_pos}")
    spine = torch.randint(0, 2, (depth,), generator=generator).tolist()
    left: list[int] = []
    right: list[int] = []
    queue = [(0, True)]  # (level, on the spine), in node order
    n_leaves = 0
    s = 0
    while s < len(queue):  # breadth-first: queue[s] is decision node s
        level, on_spine = queue[s]
        s += 1
        kids = []
        for a in (0, 1):
            spine_child = on_spine and spine[level] == a
            inner = level + 1 < depth and (spine_child or float(torch.rand((), generator=generator)) < q)
            if inner:
                kids.append(len(queue))
                queue.append((level + 1, spine_child))
            else:
                kids.append(~n_leaves)
                n_leaves += 1
        left.append(kids[0])
        right.append(kids[1])
    positive = (torch.rand(n_leaves, generator=generator, dtype=torch.float64) < p_pos).tolist()
    if all(positive) or not any(positive):
        j = int(torch.randint(0, n_leaves, (), generator=generator))
        positive[j] = not positive[j]
    rewards = [REWARD_POSITIVE if p else REWARD_NEGATIVE for p in positive]
    return Tree(left, right, rewards)


def _check(theta: torch.Tensor, tree: Tree) -> None:
    if theta.shape[-1] != tree.n_nodes:
        raise InputError(f"θ has {theta.shape[-1]} entries but the tree has {tree.n_nodes} decision nodes")


def leaf_log_probabilities(theta: torch.Tensor, tree: Tree) -> torch.Tensor:
    """log P(leaf j) = Σ_{path} log σ(±θ_s), shape (..., n_leaves)."""
    _check(theta, tree)
    A, B = tree.path_matrices(theta.dtype, theta.device)[:2]
    return F.logsigmoid(theta) @ A.T + F.logsigmoid(-theta) @ B.T


def leaf_probabilities(theta: torch.Tensor, tree: Tree) -> torch.Tensor:
    """P(reach leaf j) under π(left | s) = σ(θ_s), shape (..., n_leaves); sums to 1."""
    return leaf_log_probabilities(theta, tree).exp()


def visit_probabilities(theta: torch.Tensor, tree: Tree) -> torch.Tensor:
    """P(visit decision node s), shape (..., n_nodes); 1 at the root."""
    _check(theta, tree)
    A, B = tree.path_matrices(theta.dtype, theta.device)[2:]
    return (F.logsigmoid(theta) @ A.T + F.logsigmoid(-theta) @ B.T).exp()


def tree_return(theta: torch.Tensor, tree: Tree) -> torch.Tensor:
    """J(θ) = Σ_j r_j P(leaf j) ∈ [min r, max r] (exact expectation), shape (...)."""
    r = torch.tensor(tree.rewards, dtype=theta.dtype, device=theta.device)
    return leaf_probabilities(theta, tree) @ r


def tree_entropy(theta: torch.Tensor, tree: Tree) -> torch.Tensor:
    """Σ_s P(visit s)·H(π(·|s)), H(p) = −p log p − (1−p) log(1−p) with p = σ(θ_s): the state-visitation-weighted
    sum of per-node entropies, which equals the entropy of the leaf (trajectory) distribution.  Shape (...).
    Its maximum, log(#leaves), is at the uniform leaf distribution — not θ = 0 on an unbalanced tree."""
    p = torch.sigmoid(theta)
    h = -(p * F.logsigmoid(theta) + (1 - p) * F.logsigmoid(-theta))
    return (visit_probabilities(theta, tree) * h).sum(-1)


def solution_leaf(theta: torch.Tensor, tree: Tree) -> int:
    """The leaf the greedy policy reaches: from the root, go left iff θ_s ≥ 0 (ties go left).  θ of shape (n,)."""
    _check(theta, tree)
    go_left = (theta.detach() >= 0).tolist()
    c = 0
    while c >= 0:
        c = tree.left[c] if go_left[c] else tree.right[c]
    return ~c


def positive_leaves(tree: Tree) -> list[int]:
    """Indices of the leaves with a positive reward."""
    return [j for j, r in enumerate(tree.rewards) if r > 0]


def fraction_positive_found(thetas: Iterable[torch.Tensor], tree: Tree) -> float:
    """|{solution_leaf(θ) : θ ∈ thetas} ∩ positive leaves| / |positive leaves| (the paper's "% of positive
    solutions found"; thetas: an iterable of (n,) tensors or an (m, n) tensor)."""
    positive = set(positive_leaves(tree))
    if not positive:
        raise InputError("the tree has no positive leaf")
    found = {solution_leaf(t, tree) for t in thetas}
    return len(found & positive) / len(positive)
