"""Known-symmetry detection by tracing (issue 11): on third-party-style modules the detected orbit dimension
equals the null dimension of this test's own output Jacobian (torch.autograd, float64), every detected symmetry
keeps the outputs to 1e-10, and detection is conservative where it cannot follow the graph."""

import json
import textwrap
import warnings

import pytest
import torch
from torch import nn

from experiments.census.models import GPT, LlamaBlockLM, cnn, image_batches, token_batches
from symdisc import SymdiscWarning, census, make_generator, zoo
from symdisc.cli.main import main
from symdisc.detect import declared, detect, detect_known
from symdisc.symmetry import continuous_symmetries

TOL = 1e-10


def own_null_dim(arch, batch: int, seed: int = 7) -> int:
    """p − rank D_θ f(θ, X) at a random θ, X: this test's Jacobian, not symdisc's."""
    a = arch.to(dtype=torch.float64)
    theta = a.sample_params(make_generator(seed, 0))
    X, _ = a.sample_data(batch, make_generator(seed, 1))
    J = torch.autograd.functional.jacobian(lambda th: a.forward(th, X).reshape(-1), theta)
    s = torch.linalg.svdvals(J)
    return arch.num_params - int((s > TOL * s[0]).sum())


def invariant_at_module_theta(arch, module, sym) -> float:
    """max |f(g·θ, X) − f(θ, X)| / max |f| at the module's own θ (not a sampled one), random g."""
    a = arch.to(dtype=torch.float64)
    theta = zoo.module_theta(module, arch.layout).to(torch.float64)
    X, _ = a.sample_data(4, make_generator(3))
    c = 0.3 * torch.randn(sym.num_generators, generator=make_generator(4), dtype=torch.float64)
    f0, f1 = a.forward(theta, X), a.forward(sym.act(c, theta), X)
    return float((f1 - f0).abs().max() / f0.abs().max())


@pytest.mark.parametrize("bias,flash", [(True, False), (False, True)], ids=["biases", "no-biases-sdpa"])
def test_gpt_detected_orbit_equals_the_census_null_space(bias, flash):
    """Token + position embeddings, pre-LN attention with 2 heads (fused QKV), GELU MLP, tied head, vocab 16 ≥
    n_embd 8: every output null direction at B = 32 (3072 rows ≥ p) is explained by a detected symmetry."""
    torch.manual_seed(0)
    module = GPT(16, 8, 8, 2, 1, bias=bias, flash=flash).eval()
    arch = zoo.from_module(module, token_batches(16, 6), "cross_entropy")
    found = detect_known(arch)
    assert found.traced and not found.rejected or all(not e.verified for e in found.rejected)
    assert all(e.verified and e.max_rel_change <= TOL for e in found.entries)
    kinds = found.by_kind()
    assert kinds["GL"] == 2 * 2 * 16  # q/k and v/o per head: GL(d_head = 4), 2 heads
    assert kinds["norm-mean-zero"] >= 24 + 32 and kinds["mean-shift"] > 0
    assert kinds["unused"] == 2 * 8 - 2  # wpe rows 6, 7 (T = 6): 16 entries, 2 of them already mean shifts
    assert ("bias-shift" in kinds) == bias and ("translation" in kinds) == bias  # value bias; key bias
    assert found.orbit_dim == own_null_dim(arch, 32) == (232 if bias else 199)
    for sym in found.symmetries:
        assert invariant_at_module_theta(arch, module, sym) <= TOL, sym.name
    # the census uses the detected symmetries as its known ones: nothing unexplained
    row = census(arch, [32], level="output", points=1).rows[0]
    assert census(arch, [2], level="output", points=1).known_orbit_dim == found.orbit_dim == row.output_null_dim


@pytest.mark.parametrize("bias", [True, False])
def test_cnn_rescalings_explain_the_census(bias):
    module = cnn(bias)
    arch = zoo.from_module(module, image_batches((2, 4, 4)))
    found = detect_known(arch)
    assert found.by_kind() == {"rescaling": 3} and found.orbit_dim == own_null_dim(arch, 8) == 3
    assert found.symmetries[0].describe()["group"] == "diag"


def test_pooled_cnn_rescalings_pass_through_pooling_and_flatten():
    """max-pool and average-pool keep per-channel rescalings; flatten repeats each channel over its positions."""
    arch = zoo.from_module(cnn(True, pooled=True), image_batches((5,)))
    found = detect_known(arch)
    assert found.by_kind() == {"rescaling": 3 + 4}
    assert all(e.max_rel_change <= TOL for e in found.entries)


@pytest.mark.parametrize("name,options", [
    ("mlp", dict(dims="3,4,4,2", act="linear", bias=True)),
    ("mlp", dict(dims="3,4,2", act="relu", bias=True)),
    ("mlp", dict(dims="3,4,2", act="tanh")),
    ("tiny-transformer", {}),
    ("tiny-transformer", dict(variant="wo")),
    ("mlp", dict(dims="3,4,3", act="relu", bias=True, loss="cross_entropy")),
    ("mlp", dict(dims="3,4,3", act="linear", loss="cross_entropy")),
])
def test_detection_on_a_preset_finds_what_the_preset_declares(name, options):
    """Output level and with the loss-level softmax translation of a cross-entropy head."""
    arch = zoo.get(name, **options)
    found, known = detect(arch), declared(arch)
    assert (found.orbit_dim, found.loss_orbit_dim) == (known.orbit_dim, known.loss_orbit_dim)
    assert (found.loss_orbit_dim > found.orbit_dim) == (options.get("loss") == "cross_entropy")


def test_normalisation_across_units_breaks_gl_and_detection_says_nothing_wrong():
    """Linear → LayerNorm over the units → Linear: no GL between the linears (a negative control); what is found
    (LN rescaling, β-shift, mean-zero and mean-shift directions) is exactly the null space."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    arch = zoo.from_module(module, lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)))
    found = detect_known(arch)
    assert "GL" not in found.by_kind()
    assert found.orbit_dim == own_null_dim(arch, 64)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.export cannot trace it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:
            h = torch.relu(h)
        return self.b(h)


def test_untraceable_module_falls_back_to_the_census_with_a_clear_message():
    arch = zoo.from_module(Branchy(), lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)))
    found = detect_known(arch)
    assert not found.traced and "could not be traced" in found.message and found.orbit_dim == 0
    assert "\n" not in found.message
    with pytest.warns(SymdiscWarning, match="could not be traced"):
        result = census(arch, [4], level="output", points=1)
    assert result.known_orbit_dim == 0 and result.rows[0].output_null_dim > 0


class Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.spare = nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(3, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_unused_parameters_are_null_directions_and_detected():
    arch = zoo.from_module(Unused(), lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)))
    found = detect_known(arch)
    assert found.by_kind() == {"rescaling": 4, "unused": 12}
    assert found.orbit_dim == own_null_dim(arch, 128) == 16  # (B = 32 still shows one data-dependent direction)


class Cumulative(nn.Module):
    """An op detection does not follow (cumsum across units) between two linears: no claim through it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(torch.cumsum(self.a(x), dim=-1))


def test_unknown_op_makes_detection_conservative():
    arch = zoo.from_module(Cumulative(), lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)))
    found = detect_known(arch)
    assert "cumsum" in found.unknown_ops and found.orbit_dim == 0
    assert own_null_dim(arch, 32) == 26 - 8  # GL(4) and bias shifts hold (cumsum is linear): not claimed


class Masked(nn.Module):
    """Boolean inputs: features where the mask is set."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(12, 4), nn.Linear(4, 1)

    def forward(self, mask):
        return self.b(torch.relu(self.a(mask.to(self.a.weight.dtype))))


def test_boolean_inputs_census_and_detection():
    arch = zoo.from_module(Masked(), lambda B, g: (torch.rand(B, 12, generator=g) > 0.5,
                                                   torch.randn(B, 1, generator=g)))
    X, _ = arch.sample_data(3, make_generator(0))
    assert X.dtype == torch.bool
    found = detect_known(arch)
    assert found.by_kind() == {"rescaling": 4}
    # binary inputs leave some ReLU units dead at some θ (extra, data-dependent null directions): the census runs
    # on bool X and contains the detected orbit
    assert census(arch, [256], level="output", points=1).rows[0].output_null_dim >= found.orbit_dim == 4


def test_known_command_lists_detected_symmetries(tmp_path, capsys):
    script = tmp_path / "model.py"
    script.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def build():
            net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
            return net, lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)), "mse"

        class Branchy(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(3, 2)
            def forward(self, x):
                return self.a(x) if x.sum() > 0 else -self.a(x)

        def branchy():
            return Branchy(), lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)), "mse"
    """))
    assert main(["known", f"{script}:build", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["traced"] and doc["orbit_dim"] == 5 and doc["by_kind"] == {"rescaling": 5}
    assert {"name", "kind", "num_generators", "rule", "max_rel_change", "verified", "rank_added"} <= set(
        doc["entries"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["known", f"{script}:branchy"]) == 0
    assert "could not be traced" in capsys.readouterr().out.replace("\n", " ")
    assert main(["known", "mlp", "--dims", "3,4,2", "--json"]) == 0  # a preset: its declared symmetries
    assert json.loads(capsys.readouterr().out)["orbit_dim"] == 4
    assert main(["known", "mlp", "--dims", "3,4,2", "--detect", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["orbit_dim"] == 4


def test_detected_symmetries_feed_every_consumer():
    """--symmetry known for a user module means the detected ones: continuous_symmetries sees them."""
    arch = zoo.from_module(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
                           lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)))
    syms = continuous_symmetries(arch)
    assert len(syms) == 1 and syms[0].num_generators == 4


def test_teleport_along_the_detected_symmetries_of_a_user_module(tmp_path, capsys):
    """`--symmetry known` on FILE.py:FUNC teleports along what detection found (a LayerNorm net: rescalings, shifts,
    mean-zero directions and the stream rotation), with no symmetry named by hand."""
    script = tmp_path / "net.py"
    script.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def build():
            torch.manual_seed(0)
            net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
            return net, lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)), "mse"
    """))
    assert main(["teleport", f"{script}:build", "--symmetry", "known", "--steps", "2", "--train-size", "64",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["symmetry"]["num_generators"] >= 4 + 4 + 2 + 3


def test_boolean_inputs_discover_and_verify_end_to_end(tmp_path, capsys):
    script = tmp_path / "mask.py"
    script.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Masked(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Linear(6, 3), nn.Linear(3, 1)
            def forward(self, mask):
                return self.b(torch.relu(self.a(mask.to(self.a.weight.dtype))))

        def build():
            torch.manual_seed(0)
            return Masked(), lambda B, g: (torch.rand(B, 6, generator=g) > 0.5, torch.randn(B, 1, generator=g)), "mse"
    """))
    run = tmp_path / "run"
    assert main(["discover", f"{script}:build", "-k", "2", "--steps", "10", "--draws", "4", "--verify-draws", "2",
                 "--no-figures", "--out", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verification"]["unavailable"]["data_dependence_median"].startswith("integer or boolean")
    assert main(["verify", str(run), "--arch", f"{script}:build", "--draws", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_dependence_median"] is None


def test_llama_style_block_rmsnorm_rotations_and_swiglu_rescalings():
    """RMSNorm written out (x·rsqrt(mean x²+ε)·w), SwiGLU, untied head: per-head GL, the stream's full SO(d)
    (RMS norms keep any rotation), RMSNorm-weight and SwiGLU rescalings explain the whole null space."""
    torch.manual_seed(0)
    arch = zoo.from_module(LlamaBlockLM(16).eval(), token_batches(16, 6), "cross_entropy")
    found = detect_known(arch)
    assert found.by_kind() == {"GL": 64, "SO": 28, "rescaling": 3 * 8 + 16, "softmax-translation": 8}
    assert found.orbit_dim == own_null_dim(arch, 32) == 132


def test_large_models_are_not_ranked_densely(monkeypatch):
    """Above RANK_MAX_BYTES the p × Σk fields are not formed: every verified symmetry is kept, counted by its
    generators (an upper bound), and the report says so."""
    import symdisc.detect.api as api

    arch = zoo.get("mlp", dims="3,4,4,2", act="linear", bias=True)
    exact = detect(arch)
    monkeypatch.setattr(api, "RANK_MAX_BYTES", 8)
    bound = detect(arch)
    assert exact.orbit_dim == 38 < bound.orbit_dim == 16 + 16 + 4 + 4
    assert any("not ranked" in n for n in bound.notes)
