"""Lifting (dissertation §6.4; discovery.md B12–B14): a block's symmetry carried into a wider, deeper network or a
smaller batch keeps the outputs; the negative controls (skip connection, LayerNorm across units, random padding)
are detected, structurally and numerically."""

import json

import pytest
import torch
from torch import nn
from torch.func import jacrev

import symdisc
from symdisc import InputError, make_generator, zoo
from symdisc.cli.main import main
from symdisc.lifting import LiftedSymmetry, LiftError, Placement, lift, sequential_target
from symdisc.lifting.artefact import load_lifted
from symdisc.lifting.check import SLACK, check_lift

EXACT = 1e-10
LEARNED = "zoo/rescale-relu-3-3-1"  # data-dependent learned rescaling, batch 64


def known(arch, prefix):
    return next(s for s in arch.known_symmetries() if s.name.startswith(prefix))


def mlp(dims, act, **kw):
    return zoo.get("mlp", dims=dims, act=act, **kw)


@pytest.mark.parametrize("src_dims,act,sym,target,placement,kinds", [
    ("2,3,1", "linear", "GL", "2,5,1", Placement(units=(4, 0, 2)), ["wider"]),          # Cor. 6.4.2
    ("4,3,2", "relu", "rescale", "3,4,3,2,1", Placement(layer=2), ["deeper"]),          # Cor. 6.4.3
    ("4,3,2", "tanh", "sign-flip", "3,4,6,2,1", Placement(layer=2, units=(5, 0, 3)), ["wider", "deeper"]),
])
def test_known_lifts_keep_the_outputs(src_dims, act, sym, target, placement, kinds):
    src = mlp(src_dims, act, bias=True)
    lifted = lift(known(src, sym), src, mlp(target, act, bias=True), placement)
    r = check_lift(lifted, draws=4)
    assert r["valid"], r["reason"]
    assert r["kinds"] == kinds and r["output_change"]["max"] <= EXACT and r["moved_median"] > 0.05
    assert r["field_output_residual"] is None or r["field_output_residual"] <= EXACT


@pytest.mark.parametrize("target,placement", [("3,6,1", Placement(units=(5, 1, 3))),   # wider
                                              ("3,3,3,1", Placement(layer=2))])        # deeper: s = H_1
def test_learned_lift_keeps_the_outputs_to_the_sources_tolerance(target, placement):
    source = symdisc.load(LEARNED)
    r = check_lift(lift(source, None, mlp(target, "relu"), placement), draws=4, field_draws=2)
    assert r["valid"], r["reason"]
    recorded = source.card["verification"]["invariance"]["output_median"]
    assert r["output_change"]["max"] <= SLACK * r["source_output_change"]
    assert r["field_output_residual"] <= SLACK * recorded
    assert r["moved_median"] > 0.01


def test_learned_lift_to_a_smaller_batch_with_fixed_padding():
    source = symdisc.load(LEARNED)
    lifted = lift(source, None, mlp("3,3,1", "relu"), Placement(batch=16))
    assert lifted.data_shape == [16, 3] and lifted.kinds == ("smaller batch",) and lifted.padding.shape == (48, 3)
    r = check_lift(lifted, draws=3, field_draws=0)
    assert r["valid"], r["reason"]
    with pytest.raises(InputError, match="larger batch"):  # the converse fails (A.3.4)
        lift(source, None, mlp("3,3,1", "relu"), Placement(batch=65))


def test_skip_connection_is_detected():
    src = mlp("2,4,4", "tanh")
    with pytest.raises(LiftError, match="residual link of layer 2"):
        lift(known(src, "sign-flip"), src, zoo.get("mlp-skip"))
    r = check_lift(lift(known(src, "sign-flip"), src, zoo.get("mlp-skip"), strict=False), draws=3)
    assert not r["valid"] and r["block_output_change"]["max"] <= EXACT and r["output_change"]["max"] > 1e-2
    assert "skip" in r["reason"] and "beyond its output" in r["reason"]
    src = mlp("2,3,3", "linear")  # a continuous one: its fields leave the outputs too
    r = check_lift(lift(known(src, "GL"), src, mlp("2,3,3,1", "linear", skip=True), strict=False), draws=3)
    assert not r["valid"] and r["output_change"]["max"] > 1e-2 and r["field_output_residual"] > 1e-3


def _sequential(*middle):
    def sample(B, g):
        return torch.randn(B, 3, generator=g, dtype=torch.float64), torch.randn(B, 1, generator=g, dtype=torch.float64)
    return sequential_target(nn.Sequential(nn.Linear(3, 6), nn.Tanh(), *middle, nn.Linear(6, 1)), sample)


def test_layernorm_across_units_is_detected():
    src = mlp("3,3,1", "tanh", bias=True)
    flip = known(src, "sign-flip")
    r = check_lift(lift(flip, src, _sequential(), Placement(units=(0, 2, 4))), draws=3)
    assert r["valid"] and r["output_change"]["max"] <= EXACT  # the same net without the norm: fine
    with pytest.raises(LiftError, match="LayerNorm across the units of hidden layer 1"):
        lift(flip, src, _sequential(nn.LayerNorm(6)), Placement(units=(0, 2, 4)))
    lifted = lift(flip, src, _sequential(nn.LayerNorm(6)), Placement(units=(0, 2, 4)), strict=False)
    r = check_lift(lifted, draws=3)
    assert not r["valid"] and r["output_change"]["max"] > 1e-2 and r["block_output_change"]["max"] <= EXACT
    theta = lifted.arch.to(dtype=torch.float64).sample_params(make_generator(0))
    assert lifted.exactness(theta)["exact"] is False


def test_random_padding_breaks_the_group_axioms():
    src = mlp("3,3,1", "leakyrelu")
    action = next(s for s in src.known_symmetries() if "sigma_inverse" in s.name)  # a group action at batch 3
    fixed = check_lift(lift(action, src, src, Placement(batch=2, pad_to=3)), draws=3)
    assert fixed["valid"] and fixed["composition_error"]["lifted_max"] <= EXACT and fixed["determinism_max"] == 0
    with pytest.raises(LiftError, match="drawn afresh"):
        lift(action, src, src, Placement(batch=2, pad_to=3, padding="random"))
    r = check_lift(lift(action, src, src, Placement(batch=2, pad_to=3, padding="random"), strict=False), draws=3)
    assert r["output_change"]["max"] <= EXACT  # the real points' outputs are kept: invariance alone misses it …
    assert r["determinism_max"] > 1e-3 and r["composition_error"]["lifted_max"] > 1e-3  # … the axioms do not
    assert not r["valid"] and "associativity" in r["reason"]


def test_lifted_fields_are_the_sources_embedded():
    src = mlp("2,3,2", "linear", bias=True)
    lifted = lift(known(src, "GL"), src, mlp("3,2,5,2", "linear", bias=True), Placement(layer=2, units=(4, 1, 2)))
    assert isinstance(lifted, LiftedSymmetry) and lifted.num_generators == 9
    theta = lifted.arch.to(dtype=torch.float64).sample_params(make_generator(1))
    xi = lifted.tangents(theta)
    ref = jacrev(lambda c: lifted.act(c, theta))(torch.zeros(9, dtype=torch.float64))
    assert torch.allclose(xi, ref, atol=1e-12)
    touched = xi.abs().sum(1) > 0  # only W2[S], b2[S], W3[:, S]: 3·2 + 3 + 2·3 = 15 coordinates
    assert int(touched.sum()) == 15
    assert lifted.describe()["kinds"] == ["wider", "deeper"]


@pytest.mark.parametrize("make,fragment", [
    (lambda s: lift(known(s, "GL"), s, mlp("3,3,1", "linear")), "maps width 2"),
    (lambda s: lift(known(s, "GL"), s, mlp("2,5,1", "linear"), Placement(units=(0, 1))), "3 distinct"),
    (lambda s: lift(known(s, "GL"), s, mlp("2,5,1", "linear"), Placement(units=(0, 1, 7))), "3 distinct"),
    (lambda s: lift(known(s, "GL"), s, mlp("2,5,1", "tanh")), "another function"),
    (lambda s: lift(known(s, "GL"), s, mlp("2,5,1", "linear"), Placement(layer=2)), "do not fit"),
    (lambda s: lift(known(s, "GL"), s, mlp("2,5,1", "linear", bias=True)), "bias"),
    (lambda s: lift(known(s, "GL"), s, zoo.get("tiny-transformer")), "MLP-family"),
    (lambda s: lift(known(s, "GL"), s, mlp("2,5,1", "linear"), Placement(padding="sometimes")), "fixed or random"),
])
def test_bad_placements_are_input_errors(make, fragment):
    with pytest.raises(InputError, match=fragment):
        make(mlp("2,3,1", "linear"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_learned_lift_writes_and_reloads(capsys, tmp_path):
    out = tmp_path / "lifted"
    argv = ["lift", "zoo/fig6.3-linear-scalar", "--to", "mlp", "--dims", "1,3,1", "--act", "linear", "--units", "2",
            "--draws", "3", "--out", str(out)]
    code, stdout, err = run(capsys, *argv, "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["valid"] and doc["out"] == str(out) and doc["kinds"] == ["wider"]
    assert {"conditions", "tolerance", "output_change", "block_output_change", "field_output_residual"} <= set(doc)
    assert doc["output_change"]["max"] <= doc["tolerance"]["output"]
    assert (out / "card.json").is_file() and (out / "source" / "symmetry.safetensors").is_file()
    again = load_lifted(out)
    fresh = lift(symdisc.load("zoo/fig6.3-linear-scalar"), None, mlp("1,3,1", "linear"), Placement(units=(2,)))
    arch = again.arch.to(dtype=torch.float64)
    theta, X, _ = (t[0] for t in arch.sample_draws(1, 1, make_generator(2)))
    c = torch.tensor([0.3], dtype=torch.float64)
    assert torch.equal(again.act(c, theta, X), fresh.act(c, theta, X))
    code, _, err = run(capsys, *argv)  # never overwritten silently
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert run(capsys, *argv, "--force")[0] == 0


def test_cli_known_lift_with_padding_reloads_the_same_points(capsys, tmp_path):
    out = tmp_path / "padded"
    code, _, err = run(capsys, "lift", "known", "--symmetry", "data-dependent-GL[sigma_inverse](W2,W1)", "--to",
                       "mlp", "--dims", "2,3,3,1", "--act", "leakyrelu", "--layer", "2", "--batch", "1",
                       "--pad-batch", "3", "--draws", "3", "--out", str(out))
    assert code == 0, err
    lifted = load_lifted(out)
    assert lifted.kinds == ("deeper", "smaller batch") and lifted.padding.shape == (2, 3)
    card = json.loads((out / "card.json").read_text())
    assert card["source"]["kind"] == "known" and card["tensors"]["file"] == "lift.safetensors"
    before = (out / "card.json").read_bytes()
    code, stdout, err = run(capsys, "verify", str(out), "--draws", "2", "--json")  # a lifted directory verifies too
    assert code == 0, err
    assert json.loads(stdout)["verified"]["count"] == 9 and (out / "card.json").read_bytes() == before


def test_cli_invalid_lift_writes_nothing(capsys, tmp_path):
    out = tmp_path / "skip"
    argv = ["lift", "known", "--symmetry", "sign-flip(h1)", "--to", "mlp-skip", "--draws", "2", "--out", str(out)]
    code, stdout, err = run(capsys, *argv)
    assert code == 2 and "the lift is invalid" in err and "skip" in err and err.count("\n") == 1
    code, stdout, err = run(capsys, *argv, "--json")
    doc = json.loads(stdout)
    assert code == 2 and doc["valid"] is False and doc["out"] is None and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("argv,fragment,exit_code", [
    (["known", "--to", "mlp", "--dims", "2,3,1"], "--symmetry must name", 2),
    (["known", "--symmetry", "GL(h1)", "--to", "tiny-transformer"], "MLP-family", 2),
    (["known", "--symmetry", "GL(h1)", "--to", "net.py:make"], "nn.Sequential", 2),
    (["zoo/fig6.3-linear-scalar", "--symmetry", "GL(h1)", "--to", "mlp"], "an artefact brings its own", 2),
    (["zoo/fig6.3-linear-scalar", "--to", "mlp", "--dims", "1,3,1", "--act", "linear", "--units", "x"],
     "malformed units", 2),
    (["zoo/fig6.3-linear-scalar", "--to", "mlp", "--dims", "1,3,1", "--act", "linear", "--padding", "often"],
     "fixed or random", 2),
    (["no/such/artefact", "--to", "mlp"], "no artefact", 3),
])
def test_cli_bad_input_one_line(capsys, tmp_path, argv, fragment, exit_code):
    code, _, err = run(capsys, "lift", *argv, "--out", str(tmp_path / "x"))
    assert code == exit_code and fragment in err and err.count("\n") == 1
