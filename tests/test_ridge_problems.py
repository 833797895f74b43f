"""The Ridge Rider problems (experiments/ridge): 2-D toy, binary-tree RL, lever game, colored digits."""

import itertools
import json

import pytest
import torch
from torch.func import grad, hessian, jacfwd, vmap

from experiments.ridge.colored import colored_digits
from symdisc import make_generator
from symdisc.errors import InputError
from symdisc.ridge.problems.lever import (
    LEVER_CLASSES,
    LEVER_PAYOFFS,
    agent_swap,
    cross_play,
    greedy_levers,
    lever_entropy,
    lever_permutation,
    lever_policies,
    lever_return,
    symmetric_theta,
)
from symdisc.ridge.problems.toy2d import TOY2D_START, toy2d_critical_points, toy2d_loss, toy2d_minima
from symdisc.ridge.problems.tree import (
    Tree,
    fraction_positive_found,
    leaf_probabilities,
    positive_leaves,
    random_tree,
    solution_leaf,
    tree_entropy,
    tree_return,
    visit_probabilities,
)

F64 = torch.float64


# ---------------------------------------------------------------- 2-D toy


def test_toy2d_start_is_strict_maximum_with_distinct_eigenvalues():
    x0 = torch.tensor(TOY2D_START, dtype=F64)
    assert grad(toy2d_loss)(x0).abs().max() == 0
    ev, vec = torch.linalg.eigh(hessian(toy2d_loss)(x0))
    assert torch.allclose(ev, torch.tensor([-2.0, -1.0], dtype=F64))
    assert abs(vec[0, 0]) == pytest.approx(1.0)  # the steep (most negative) direction is the x-axis


def test_toy2d_minima_local_along_steep_global_along_gentle():
    minima = toy2d_minima()
    kinds = [m["kind"] for m in minima]
    assert kinds == ["global", "global", "local", "local"]
    for m in minima:
        p = torch.tensor(m["location"], dtype=F64)
        assert grad(toy2d_loss)(p).norm() < 1e-8
        assert torch.linalg.eigvalsh(hessian(toy2d_loss)(p)).min() > 0
        assert float(toy2d_loss(p)) == pytest.approx(m["loss"], abs=1e-9)
    glob, loc = minima[:2], minima[2:]
    assert all(abs(m["location"][0]) < 1e-9 and m["loss"] == pytest.approx(-2.5) for m in glob)
    assert all(abs(m["location"][1]) < 1e-9 for m in loc)
    assert loc[0]["location"][0] < 0 < loc[1]["location"][0] and loc[0]["loss"] < loc[1]["loss"] - 0.5  # asymmetric
    assert max(m["loss"] for m in glob) < min(m["loss"] for m in loc)
    others = [c["kind"] for c in toy2d_critical_points() if c["kind"] not in ("global", "local")]
    assert sorted(others) == ["maximum"] + ["saddle"] * 4


def test_toy2d_gd_from_near_origin_finds_the_local_minima():
    theta = 1e-3 * torch.randn(32, 2, generator=make_generator(0), dtype=F64)
    g = vmap(grad(toy2d_loss))
    for _ in range(1500):
        theta = theta - 0.05 * g(theta)
    local = torch.tensor([m["location"] for m in toy2d_minima() if m["kind"] == "local"], dtype=F64)
    dist = torch.cdist(theta, local)
    assert dist.min(1).values.max() < 1e-6
    assert set(dist.argmin(1).tolist()) == {0, 1}
    assert torch.allclose(toy2d_loss(theta), vmap(toy2d_loss)(theta))


# ---------------------------------------------------------------- binary tree

PAPER_LIKE = Tree(left=[1, 3, 4, -1, -3, -6], right=[2, -2, 5, -4, -5, -7],
                  rewards=[-1.0, 10.0, -1.0, 10.0, -1.0, -1.0, 10.0])  # 6 decision nodes, 7 leaves (4 −, 3 +)


def _walk_reward(tree, actions):
    c = 0
    while c >= 0:
        c = tree.right[c] if actions[c] else tree.left[c]
    return tree.rewards[~c]


@pytest.mark.parametrize("tree", [PAPER_LIKE, random_tree(4, make_generator(1)), random_tree(5, make_generator(2))])
def test_tree_return_matches_brute_force_deterministic_policies(tree):
    n = tree.n_nodes
    assert n <= 12
    actions = torch.tensor(list(itertools.product([0, 1], repeat=n)), dtype=F64)  # 1 = right
    theta = 40.0 * (1 - 2 * actions)
    J = tree_return(theta, tree)
    expected = torch.tensor([_walk_reward(tree, a.long().tolist()) for a in actions], dtype=F64)
    assert torch.allclose(J, expected, atol=1e-12)
    best = leaf_probabilities(theta, tree).argmax(-1)
    assert torch.equal(torch.tensor(tree.rewards, dtype=F64)[best], expected)
    assert [solution_leaf(t, tree) for t in theta[::7]] == best[::7].tolist()


def test_tree_probabilities_return_bounds_and_entropy():
    tree = random_tree(6, make_generator(3))
    theta = 3.0 * torch.randn(200, tree.n_nodes, generator=make_generator(4), dtype=F64)
    p = leaf_probabilities(theta, tree)
    assert torch.allclose(p.sum(-1), torch.ones(200, dtype=F64))
    J = tree_return(theta, tree)
    assert J.min() >= -1 and J.max() <= 10
    # the visitation-weighted node entropy is the entropy of the leaf distribution (chain rule)
    assert torch.allclose(tree_entropy(theta, tree), -(p * p.log()).sum(-1))
    assert visit_probabilities(theta, tree)[:, 0].eq(1).all()
    zero = torch.zeros(tree.n_nodes, dtype=F64)
    log2 = 0.6931471805599453
    assert float(tree_entropy(zero, tree)) == pytest.approx(float(visit_probabilities(zero, tree).sum()) * log2)
    # vmap and second-order autodiff
    assert torch.allclose(vmap(tree_return, in_dims=(0, None))(theta, tree), J)
    H = hessian(tree_return)(theta[0], tree)
    assert torch.allclose(H, H.T) and torch.allclose(H, jacfwd(grad(tree_return))(theta[0], tree))
    assert torch.autograd.gradcheck(lambda t: tree_return(t, tree) - 0.1 * tree_entropy(t, tree),
                                    theta[0].clone().requires_grad_())


@pytest.mark.parametrize("depth", [1, 2, 4, 6, 8, 10])
def test_random_tree_depth_and_rewards(depth):
    for i in range(10):
        tree = random_tree(depth, make_generator(5, depth, i))
        assert tree.depth == depth
        assert tree.n_leaves == tree.n_nodes + 1
        assert all(len(p) <= depth for p in tree.leaf_paths())
        assert set(tree.rewards) == {-1.0, 10.0}
        assert positive_leaves(tree) == [j for j, r in enumerate(tree.rewards) if r == 10.0]
    assert random_tree(depth, make_generator(6)) == random_tree(depth, make_generator(6))


def test_tree_json_round_trip_and_validation():
    tree = random_tree(8, make_generator(7))
    back = Tree.from_dict(json.loads(json.dumps(tree.to_dict())))
    assert back == tree
    theta = torch.randn(tree.n_nodes, generator=make_generator(8), dtype=F64)
    assert float(tree_return(theta, back)) == float(tree_return(theta, tree))
    with pytest.raises(InputError):
        Tree([1, -1], [2, -2], [1.0, 1.0, 1.0])  # node 2 does not exist
    with pytest.raises(InputError):
        Tree([-1, 2, 1], [-2, -3, -4], [0.0] * 4)  # nodes 1 and 2 form a cycle off the root
    with pytest.raises(InputError):
        tree_return(torch.zeros(tree.n_nodes + 1, dtype=F64), tree)


def test_fraction_positive_found():
    tree = PAPER_LIKE
    pos = positive_leaves(tree)
    assert pos == [1, 3, 6]

    def theta_for(leaf):
        t = torch.zeros(tree.n_nodes, dtype=F64)
        for s, a in tree.leaf_paths()[leaf]:
            t[s] = -5.0 if a else 5.0
        return t

    assert all(solution_leaf(theta_for(j), tree) == j for j in range(tree.n_leaves))
    assert fraction_positive_found([theta_for(j) for j in range(tree.n_leaves)], tree) == 1.0
    thetas = torch.stack([theta_for(1), theta_for(1), theta_for(0)])
    assert fraction_positive_found(thetas, tree) == pytest.approx(1 / 3)
    assert fraction_positive_found([theta_for(0), theta_for(2)], tree) == 0.0


# ---------------------------------------------------------------- lever game


def _mis_loss(theta, lam=0.05):
    return -lever_return(theta) - lam * lever_entropy(theta)


def _perm_matrix(idx):
    return torch.eye(len(idx), dtype=F64)[idx]


def test_lever_return_entropy_cross_play_greedy():
    assert LEVER_PAYOFFS == (1.0,) * 7 + (0.8,) * 2 + (0.6,)
    zero = torch.zeros(20, dtype=F64)
    assert float(lever_return(zero)) == pytest.approx(sum(LEVER_PAYOFFS) / 100)
    assert float(lever_entropy(zero)) == pytest.approx(2 * torch.log(torch.tensor(10.0)).item())
    theta = torch.randn(50, 20, generator=make_generator(9), dtype=F64)
    J = lever_return(theta)
    assert J.min() >= 0 and J.max() <= 1
    assert torch.allclose(cross_play(theta, theta), J)
    assert torch.allclose(vmap(lever_return)(theta), J)
    a, b = torch.zeros(20, dtype=F64), torch.zeros(20, dtype=F64)
    a[[9, 19]] = 30.0
    b[[8, 19]] = 30.0
    assert greedy_levers(a) == (9, 9) and greedy_levers(b) == (8, 9)
    assert float(lever_return(a)) == pytest.approx(0.6) and float(lever_return(b)) == pytest.approx(0.0)
    assert float(cross_play(b, a)) == pytest.approx(0.0) and float(cross_play(a, b)) == pytest.approx(0.6)


def test_lever_hessian_commutes_with_payoff_preserving_permutations():
    theta = symmetric_theta([0.3, -0.2, 0.7])
    H = hessian(_mis_loss)(theta)
    gens = [[k if k not in (0, j) else (j if k == 0 else 0) for k in range(10)] for j in range(1, 7)]
    gens += [[0, 1, 2, 3, 4, 5, 6, 8, 7, 9]]  # swap the two 0.8 levers
    for perm in gens:
        P = _perm_matrix(lever_permutation(perm))
        assert torch.allclose(P @ H @ P.T, H, atol=1e-14)
        assert float(_mis_loss(theta[lever_permutation(perm)])) == pytest.approx(float(_mis_loss(theta)), abs=1e-15)
    S = _perm_matrix(agent_swap())
    assert torch.allclose(S @ H @ S.T, H, atol=1e-14)
    bad = _perm_matrix(lever_permutation([9, 1, 2, 3, 4, 5, 6, 7, 8, 0]))  # moves a 1.0 lever onto the 0.6 one
    assert not torch.allclose(bad @ H @ bad.T, H, atol=1e-6)
    # Theorem 5 (reference §4.1): N = 7 sets of m = 2 logits ⇒ at most 20 − 2·5 = 10 distinct eigenvalues
    ev = torch.linalg.eigvalsh(H)
    distinct = 1 + int((ev.diff() > 1e-9).sum())
    assert distinct <= 10
    # a 6-fold eigenvalue for each agent-(anti)symmetric copy of the S7 standard representation
    counts = torch.unique_consecutive(torch.round(ev * 1e9), return_counts=True)[1]
    assert sorted(counts.tolist())[-2:] == [6, 6]


def test_lever_softmax_shift_is_flat_everywhere():
    for theta in torch.randn(5, 20, generator=make_generator(10), dtype=F64):
        H = hessian(_mis_loss)(theta)
        for agent in range(2):
            one = torch.zeros(20, dtype=F64)
            one[10 * agent:10 * (agent + 1)] = 1.0
            assert (H @ one).abs().max() < 1e-14
            assert float(grad(_mis_loss)(theta) @ one) == pytest.approx(0.0, abs=1e-15)


def test_lemma6_softmax_policy_gradient():
    g = make_generator(11)
    theta, r = torch.randn(10, generator=g, dtype=F64), torch.randn(10, generator=g, dtype=F64)
    p = theta.softmax(-1)
    assert torch.allclose(grad(lambda t: (t.softmax(-1) * r).sum())(theta), p * (r - (p * r).sum()))
    # in the lever game agent 1 faces the per-lever reward q_k = π2_k r_k
    theta = torch.randn(20, generator=g, dtype=F64)
    p1, p2 = lever_policies(theta)
    q = p2 * torch.tensor(LEVER_PAYOFFS, dtype=F64)
    assert torch.allclose(grad(lever_return)(theta)[:10], p1 * (q - (p1 * q).sum()))
    assert LEVER_CLASSES == (tuple(range(7)), (7, 8), (9,))


# ---------------------------------------------------------------- colored digits


@pytest.fixture(scope="module")
def colored():
    return colored_digits(make_generator(12))


def test_colored_digits_structure(colored):
    envs = colored["envs"]
    assert [e["p_color"] for e in envs] == [0.2, 0.1, 0.9] and colored["train"] == (0, 1) and colored["test"] == 2
    idx = torch.cat([e["index"] for e in envs])
    assert len(idx) == 1797 and len(idx.unique()) == 1797
    for e in envs:
        X, y, z = e["X"], e["y"], e["color"]
        assert X.dtype == F64 and X.shape == (599, 128) and y.dtype == torch.int64 and y.shape == (599,)
        assert X.min() >= 0 and X.max() <= 1
        red, green = X[:, :64].sum(1), X[:, 64:].sum(1)
        assert torch.equal(red > 0, z == 1) and torch.equal(green > 0, z == 0)
        assert set(y.tolist()) <= {0, 1}
    again = colored_digits(make_generator(12))["envs"]
    assert all(torch.equal(a["X"], b["X"]) and torch.equal(a["y"], b["y"]) for a, b in zip(envs, again, strict=True))


def test_colored_digits_statistics(colored):
    for e in colored["envs"]:
        n, p = len(e["y"]), e["p_color"]
        agree_color = (e["y"] == e["color"]).double().mean().item()
        agree_digit = (e["y"] == (e["digit"] >= 5).long()).double().mean().item()
        assert abs(agree_color - (1 - p)) < 4 * (p * (1 - p) / n) ** 0.5
        assert abs(agree_digit - 0.75) < 4 * (0.75 * 0.25 / n) ** 0.5
