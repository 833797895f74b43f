import pytest
import torch

from symdisc import ParamLayout, SymdiscError


def test_roundtrip_and_views():
    lay = ParamLayout.from_pairs([("W1", (3, 2)), ("b1", (3,)), ("W2", (1, 3))])
    assert lay.num_params == 12
    theta = torch.arange(12.0)
    parts = lay.unflatten(theta)
    assert parts["W1"].shape == (3, 2) and parts["b1"].tolist() == [6.0, 7.0, 8.0]
    assert torch.equal(lay.flatten(parts), theta)
    parts["b1"][0] = -1.0  # a view: writes through
    assert theta[6] == -1.0
    assert lay.slice("W2") == slice(9, 12)


def test_hash_depends_on_names_and_shapes():
    a = ParamLayout.from_pairs([("W", (2, 3))])
    assert a.hash() == ParamLayout.from_pairs([("W", (2, 3))]).hash()
    assert a.hash() != ParamLayout.from_pairs([("W", (3, 2))]).hash()
    assert a.hash() != ParamLayout.from_pairs([("V", (2, 3))]).hash()


def test_errors():
    lay = ParamLayout.from_pairs([("W", (2, 2))])
    with pytest.raises(SymdiscError, match="expects"):
        lay.unflatten(torch.zeros(5))
    with pytest.raises(SymdiscError, match="no parameter"):
        lay.shape("V")
    with pytest.raises(SymdiscError, match="unique"):
        ParamLayout.from_pairs([("W", (1,)), ("W", (2,))])
    with pytest.raises(SymdiscError, match="missing"):
        lay.flatten({})
