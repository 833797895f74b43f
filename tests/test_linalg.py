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
