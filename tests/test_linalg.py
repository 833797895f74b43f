"""symdisc.linalg's subspaces against dense references."""

import pytest
import torch


@pytest.mark.parametrize("shape,rank", [((6, 20), 4), ((30, 12), 7), ((5, 9), 5), ((0, 7), 0)])
def test_null_space_matches_the_dense_null_basis(shape, rank):
    """NullSpace (through the row space, nothing p×p) against an explicit null basis from the full SVD."""
    from symdisc.linalg import null_basis, null_space

    g = torch.Generator().manual_seed(sum(shape))
    N, p = shape
    J = torch.randn(N, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, p, generator=g, dtype=torch.float64)
    ns, dense = null_space(J), null_basis(J) if N else torch.eye(p, dtype=torch.float64)
    assert ns.dim == dense.shape[1] == p - rank
    xi = torch.randn(p, 3, generator=g, dtype=torch.float64)
    xi[:, 0] = dense @ torch.randn(dense.shape[1], generator=g, dtype=torch.float64) if dense.shape[1] else xi[:, 0]
    expected_share = (dense.T @ xi).pow(2).sum(0) / xi.pow(2).sum(0)
    torch.testing.assert_close(ns.share(xi), expected_share, rtol=0, atol=1e-12)
    A = torch.linalg.qr(torch.randn(p, 4, generator=g, dtype=torch.float64))[0]
    expected_cos2 = torch.linalg.svdvals(A.T @ dense).clamp(max=1).pow(2) if dense.shape[1] else A.new_zeros(0)
    torch.testing.assert_close(ns.cos2(A), expected_cos2, rtol=0, atol=1e-12)


def test_lstsq_repeats_bitwise_and_solves():
    """symdisc.linalg.lstsq gives the same bits for the same inputs, call after call (torch's default CPU driver,
    gelsy, does not: 1e-15 apart), and the least-squares / minimum-norm solution."""
    from symdisc.linalg import lstsq

    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(40, 30, generator=g, dtype=torch.float64), torch.randn(40, 100, generator=g, dtype=torch.float64)
    first = lstsq(A, B)
    for i in range(6):
        _ = [torch.empty(1000 + 7 * j) for j in range(i)]  # other allocations in between
        assert torch.equal(lstsq(A.clone(), B.clone()), first)
    assert torch.allclose(first, torch.linalg.pinv(A) @ B, atol=1e-12)
    low = A[:, :5] @ torch.randn(5, 30, generator=g, dtype=torch.float64)  # rank 5: the minimum-norm solution
    assert torch.allclose(lstsq(low, B), torch.linalg.pinv(low) @ B, atol=1e-9)
