"""The census's rank at the largest spectral gap (issue 11): unit cases, the LayerNorm over-count, ambiguity."""

import dataclasses
import json

import pytest
import torch

from symdisc import SymdiscError, census, zoo
from symdisc.cli.main import main
from symdisc.linalg import gap_cut, null_dimension, rtol_cut

D = dict(dtype=torch.float64)


def spectrum(*values):
    return torch.tensor(values, **D)


def test_gap_cut_picks_the_largest_gap_above_the_floor():
    c = gap_cut(spectrum(1.0, 0.5, 1e-3, 1e-5, 1e-17, 1e-30), 6, 6)
    assert (c.rank, c.ambiguous) == (4, False)  # 1e-17 and 1e-30 lie below the floor √6·ε ≈ 5e-16: no gap there
    assert 10.2 < c.gap_decades < 10.3 and 1e-11 < c.rtol < 1e-10  # 1e-5 → 5e-16, cut in the middle
    assert c.runner_up_rank == 2  # 0.5 → 1e-3
    # missing values (N < p) are zeros: the gap down to the floor decides, here full row rank
    c = gap_cut(spectrum(2.0, 1.0, 0.5), 5, 3)
    assert c.rank == 3 and c.gap_decades > 14
    assert gap_cut(torch.zeros(3, **D), 4, 3).rank == 0
    assert gap_cut(torch.ones(4, **D), 4, 4).rank == 4  # full rank: the gap to the floor


def test_gap_cut_flags_smooth_and_split_spectra():
    smooth = torch.logspace(0, -16, 40, **D)
    assert gap_cut(smooth, 40, 40).ambiguous
    two = spectrum(1.0, 1e-5, 0.9e-5, 1e-10, 1e-14)  # two 5-decade gaps: neither is clearly the cut
    c = gap_cut(two, 5, 5)
    assert c.ambiguous and {c.rank, c.runner_up_rank} == {1, 3}
    assert not gap_cut(two, 5, 5, margin=0.0).ambiguous


def test_rtol_cut_is_the_old_rule():
    J = torch.diag(spectrum(3.0, 1.0, 1e-14, 0.0))
    s = torch.linalg.svdvals(J)
    for rtol in (1e-10, 1e-15):
        c = rtol_cut(s, 4, rtol)
        dim, gap = null_dimension(J, rtol)
        assert 4 - c.rank == dim and c.gap_decades == gap and not c.ambiguous


def random_gamma(arch, decades: float):
    """``arch`` with LayerNorm γ = ±10^U(−decades, decades) (the rest as the preset draws it), and the
    same points in a clean configuration: γ' = 1, β' = β/γ, W₁' = W₁ diag γ — the same function and, the map
    being a diffeomorphism of θ with f∘g = f, the same null dimension, without γ's conditioning."""
    lay, base = arch.layout, arch.param_sampler
    d0 = lay.shapes[0][0]

    def raw(gen, dtype, device, n=None):
        parts = dict(lay.unflatten(base(gen, torch.float64, "cpu")))
        sign = torch.where(torch.rand(d0, generator=gen, **D) < 0.5, -1.0, 1.0)
        parts["0.weight"] = sign * 10 ** (decades * (2 * torch.rand(d0, generator=gen, **D) - 1))
        return lay.flatten(parts).to(dtype=dtype, device=device)

    def clean(gen, dtype, device, n=None):
        parts = dict(lay.unflatten(raw(gen, torch.float64, "cpu")))
        g = parts["0.weight"].clone()
        parts["0.weight"], parts["0.bias"], parts["1.weight"] = g / g, parts["0.bias"] / g, parts["1.weight"] * g
        return lay.flatten(parts).to(dtype=dtype, device=device)

    return dataclasses.replace(arch, param_sampler=raw), dataclasses.replace(arch, param_sampler=clean)


def test_layernorm_random_gamma_over_count_is_fixed_by_the_gap_cut():
    """LayerNorm(16) → Linear → ReLU → Linear, γ over ±5 decades: at rtol 1e-10 two of three points over-count
    (54, 49 for 48) — their spectra run on to ~1e-12 — while the gap cut, rtol 1e-12 and the clean
    configuration of the same points all give 48, 48, 48; the Gram method with float64 refinement agrees."""
    raw, clean = random_gamma(zoo.get("layernorm-mlp", dims="16,8,4", act="relu", batch=64), 5.0)
    run = lambda arch, **kw: census(arch, [64], level="output", points=3, seed=0, **kw).rows[0]
    fixed, gap, fine, truth = run(raw, rtol=1e-10), run(raw), run(raw, rtol=1e-12), run(clean, rtol=1e-10)
    assert truth.output_null_dims == [48, 48, 48] and truth.output_gap_decades > 6  # the clean point: no doubt
    assert fixed.output_null_dims == [54, 48, 49] and fixed.output_null_dim == 49
    assert fixed.output_gap_decades < 0.5  # the old rule's own warning
    assert gap.output_null_dims == fine.output_null_dims == truth.output_null_dims
    assert gap.output_null_dim == 48 and not any(gap.output_ambiguous) and gap.output_gap_decades > 3
    assert all(1e-13 < r < 1e-10 for r in gap.output_cut_rtols)  # the cut the gap chose, shown per point
    assert run(raw, method="gram").output_null_dims == truth.output_null_dims


def test_ambiguous_points_are_flagged_and_left_unreported():
    """tanh after a LayerNorm with γ over ±3 decades saturates: smooth spectra without a gap."""
    raw, _ = random_gamma(zoo.get("layernorm-mlp", dims="8,8,4", act="tanh", batch=32), 3.0)
    row = census(raw, [32], level="output", points=3, seed=0).rows[0]
    assert row.output_ambiguous == [True, True, True] and row.output_null_dim is None
    assert row.output_unexplained is None and all(isinstance(d, int) for d in row.output_null_dims)
    assert row.output_gap_decades < 3
    faithful = census(raw, [32], level="output", points=3, seed=0, rtol=1e-10).rows[0]
    assert isinstance(faithful.output_null_dim, int) and not any(faithful.output_ambiguous)


def test_unexplained_and_cli_columns(capsys):
    r = census(zoo.get("mlp", dims="3,4,2", act="linear", bias=True), [256], points=1)
    row = r.row(256)
    assert row.output_unexplained == row.output_null_dim - r.known_orbit_dim == 0  # GL_4 and the bias shift
    relu = census(zoo.get("mlp", dims="3,4,2", act="relu", bias=True), [64], points=1).row(64)
    assert relu.output_unexplained == 3 and relu.loss_unexplained == 4  # a unit dead on this batch (3 + 1 loss)
    assert r.cut == "gap" and r.rtol is None and row.output_methods == ["svd"]
    assert main(["census", "mlp", "--dims", "3,4,2", "--act", "relu", "--bias", "--batch-sizes", "64", "--points",
                 "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    keys = {"output_unexplained", "loss_unexplained", "output_ambiguous", "output_cut_rtols", "output_methods",
            "output_runner_up_null_dims", "output_gap_decades", "output_null_dim"}
    assert keys <= set(doc["rows"][0]) and doc["cut"] == "gap" and doc["rtol"] is None
    assert main(["census", "mlp", "--dims", "3,4,2", "--batch-sizes", "64", "--points", "1", "--rtol", "1e-12",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cut"] == "rtol" and doc["rtol"] == 1e-12 and doc["rows"][0]["output_cut_rtols"] == [1e-12]


def test_cli_prints_ambiguous_rows(capsys):
    spec = "layernorm-mlp"
    raw, _ = random_gamma(zoo.get(spec, dims="8,8,4", act="tanh", batch=32), 3.0)
    from symdisc.cli import census_cmd

    census_cmd._print_table(census(raw, [32], level="output", points=3))
    out = capsys.readouterr().out
    assert "ambiguous" in out and " or " in out


def test_cut_arguments_are_checked():
    arch = zoo.get("tanh-3layer")
    with pytest.raises(SymdiscError, match="fixed cut"):
        census(arch, [1], cut="gap", rtol=1e-10)
    with pytest.raises(SymdiscError, match="unknown cut"):
        census(arch, [1], cut="middle")
    with pytest.raises(SymdiscError, match="method"):
        census(arch, [1], method="qr")
    assert census(arch, [1], cut="rtol").rtol == 1e-10
