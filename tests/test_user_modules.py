"""A census to trust on a user's own module (issue 11): batch coupling detected, not assumed; dropout left in
training mode switched off; a random forward refused in one line; token inputs through census, discovery and
verification end to end."""

import json
import textwrap
import warnings

import pytest
import torch
from torch import nn

from symdisc import InputError, SymdiscWarning, census, make_generator, zoo
from symdisc.cli.main import main


class BatchStandardise(nn.Module):
    """Linear → standardise each unit over the batch (no nn.BatchNorm) → ReLU → Linear."""

    def __init__(self):
        super().__init__()
        self.inp, self.out = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.inp(x)
        h = (h - h.mean(0)) / (h.var(0, unbiased=False) + 1e-5).sqrt()
        return self.out(torch.relu(h))


def _data(B, g):
    return torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)


def test_batch_statistics_module_is_detected_and_its_census_is_right():
    """Per-sample Jacobians would see each sample standardised alone (null = p − 2); the coupling is detected, the
    census takes the batched forward's Jacobian and agrees with this test's own (torch.autograd, float64)."""
    torch.manual_seed(0)
    arch = zoo.from_module(BatchStandardise(), _data)
    assert not arch.samplewise and arch.coupling.startswith("detected")
    result = census(arch, [8], level="output", points=1, seed=3)
    assert not result.samplewise and "coupled" in result.mode()
    arch64 = arch.to(dtype=torch.float64)
    theta = arch64.sample_params(make_generator(3, 0, 0))  # the census's point (seed 3, point 0, batch 8)
    X, _ = arch64.sample_data(8, make_generator(3, 1, 0, 8))
    J = torch.autograd.functional.jacobian(lambda th: arch64.forward(th, X).reshape(-1), theta)
    s = torch.linalg.svdvals(J)
    own = arch.num_params - int((s > 1e-10 * s[0]).sum())
    assert result.rows[0].output_null_dim == own < arch.num_params
    plain = zoo.from_module(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), _data)
    assert plain.samplewise and plain.coupling.startswith("none detected")
    given = zoo.from_module(BatchStandardise(), _data, samplewise=True)  # the silent error this replaces
    assert given.samplewise and given.coupling == "given"
    # per sample, each sample is standardised alone to 0: only out.bias (2 numbers) seems to move the outputs
    assert census(given, [8], level="output", points=1, seed=3).rows[0].output_null_dim == arch.num_params - 2


def test_dropout_in_training_mode_is_switched_off_with_a_warning():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    with pytest.warns(SymdiscWarning, match="dropout in training mode"):
        arch = zoo.from_module(net, _data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # eval mode: nothing to say
        reference = zoo.from_module(net.eval(), _data)
    assert net.training is False and arch.samplewise
    a, b = (census(x, [1, 8], level="output", points=1) for x in (arch, reference))
    assert [r.output_null_dim for r in a.rows] == [r.output_null_dim for r in b.rows]


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x) + 0.01 * torch.randn(x.shape[0], 2)


class Float32Only(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x.float())


def test_random_or_float32_only_forward_is_refused():
    with pytest.raises(InputError, match="the forward is random"):
        zoo.from_module(Noisy(), _data)
    with pytest.raises(InputError, match="does not run in float64"):
        zoo.from_module(Float32Only(), _data)


TOKEN_MODEL = '''
import torch
from torch import nn
import symdisc


class TinyLM(nn.Module):
    """Token and position embeddings, LayerNorm, ReLU mixer, a head on the mean token."""

    def __init__(self, vocab=7, d=4, T=3):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Parameter(0.1 * torch.randn(T, d))
        self.ln, self.mix, self.head = nn.LayerNorm(d), nn.Linear(d, d), nn.Linear(d, vocab)

    def forward(self, idx):
        h = self.tok(idx) + self.pos
        return self.head(self.mix(torch.relu(self.ln(h))).mean(1))


def sample_batch(B, g):
    return torch.randint(0, 7, (B, 3), generator=g), torch.randint(0, 7, (B,), generator=g)


def build():
    torch.manual_seed(0)
    return symdisc.zoo.from_module(TinyLM(), sample_batch, "cross_entropy")
'''


def test_token_model_census_discover_verify_end_to_end(tmp_path, capsys):
    """Integer inputs: the census counts, discovery trains and verifies, ``verify`` re-checks, and the data
    dependence (∂ξ/∂X, undefined for tokens) is reported unavailable instead of crashing."""
    spec = tmp_path / "lm.py"
    spec.write_text(textwrap.dedent(TOKEN_MODEL))
    assert main(["census", f"{spec}:build", "--batch-sizes", "1,8", "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["samplewise"] and c["coupling"].startswith("none detected")
    assert 0 < c["rows"][1]["output_null_dim"] < c["rows"][0]["output_null_dim"] < c["num_params"]
    out = tmp_path / "run"
    for preset in ("default", "unconstrained"):
        run = out / preset
        assert main(["discover", f"{spec}:build", "-k", "2", "--steps", "10", "--draws", "4", "--verify-draws", "2",
                     "--no-figures", "--preset", preset, "--out", str(run), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["verification"]["unavailable"]["data_dependence_median"].startswith("integer or boolean")
    assert main(["verify", str(out / "default"), "--arch", f"{spec}:build", "--draws", "2", "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert v["verified"]["count"] == 2 and v["data_dependence_median"] is None
