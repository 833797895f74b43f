"""Every Symmetry implementation at a point where it should hold: the cases of the contract suite.

A case is a symmetry, a float64 point (θ, X), the quantity q(θ) the symmetry claims to keep on X
(outputs or per-sample losses) and its invariance tolerance: ``bound = None`` for exact (analytic)
actions, else the relative first-order residual a learned symmetry's card allows.  Data-dependent
actions get the largest batch ≤ the architecture's default at which ``exactness`` says they are
exact (and the identity); learned ones the batch they were trained for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import symdisc
from symdisc import make_generator, zoo
from symdisc.symmetry import DataDependentGL, ProductSymmetry, continuous_symmetries, hidden_layers_gl
from symdisc.teleport.testfunctions import TEST_FUNCTIONS, TestFunction, quadratic

from .cases import all_architectures

EXTRA_ARCHS = ("linear-bias", "radial", "relu-ce", "transformer-wo", "lora", "batchnorm")  # from tests/cases.py
LEARNED = ("rescale-relu-3-3-1", "fig6.4-sigmoid-2layer", "fig6.7-tiny-transformer", "fig6.3-linear-scalar-faithful")
LEARNED_SLACK = 10.0  # × the card's held-out p90 residual
NOT_INVARIANT = 1e-3  # a learned artefact whose own verification median exceeds this claims no invariance


@dataclass(frozen=True)
class Case:
    id: str
    sym: symdisc.Symmetry
    theta: torch.Tensor
    data: torch.Tensor | None  # the batch X: q is evaluated on it; data-dependent actions use it
    kept: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # (θ, X) ↦ q
    bound: float | None = None  # None: exact; else the learned residual allowed
    skip_invariance: str = ""  # why invariance is not claimed at all

    def X(self) -> torch.Tensor | None:
        """What to pass as X to the symmetry (None for data-free actions)."""
        return self.data if self.sym.data_dependent else None


def _kept(arch, sym, Y):
    if sym.preserves == "output":
        return lambda th, X: arch.forward(th, X)
    return lambda th, X: arch.per_sample_loss(th, X, Y)


def _batches(arch, sym):
    """Data-free: one batch of ≤ 8; data-dependent: from the default batch size down."""
    return range(arch.default_batch_size, 0, -1) if sym.data_dependent else [min(arch.default_batch_size, 8)]


def arch_case(cid: str, arch, sym, seed: int = 0) -> Case:
    """θ and the largest batch (X, Y) ≤ the default at which ``sym`` is exact and the identity at c = 0."""
    arch = arch.to(dtype=torch.float64)
    theta = arch.sample_params(make_generator(seed, 5))
    for b in _batches(arch, sym):
        X, Y = arch.sample_data(b, make_generator(seed, 6, b))
        report = sym.exactness(theta, X if sym.data_dependent else None)
        if report["exact"] and report.get("identity", True) is not False:
            return Case(f"{cid}:{sym.name}", sym, theta, X, _kept(arch, sym, Y))
    raise AssertionError(f"{cid}:{sym.name} is exact at no batch size")


def preset_cases() -> list[Case]:
    """Every known symmetry of every zoo preset (default options) and of the extra architectures."""
    out = [arch_case(name, zoo.get(name), s) for name in zoo.names() for s in zoo.get(name).known_symmetries()]
    extra = dict(all_architectures())
    return out + [arch_case(cid, extra[cid], s) for cid in EXTRA_ARCHS for s in extra[cid].known_symmetries()]


def literal_cases() -> list[Case]:
    """The papers' literal data-dependent actions (complement=False): the identity only at a square batch."""
    arch = zoo.get("mlp", dims="3,4,2", act="leakyrelu", bias=True)
    out = []
    for s in arch.known_symmetries():
        if isinstance(s, DataDependentGL):
            literal = DataDependentGL(arch.layout, s.layer_input, s.w_in, s.w_out, s.sigma, b_in=s.b_in,
                                      sigma_inv=s.sigma_inv, form=s.form, complement=False)
            out.append(arch_case("mlp-3-4-2-leaky", arch, literal))
    return out


def product_cases() -> list[Case]:
    reg = zoo.get("teleport-regression")
    tf = zoo.get("tiny-transformer")
    layers = [arch_case("teleport-regression", reg, hidden_layers_gl(reg, form)) for form in ("pinv", "sigma_inverse")]
    return layers + [arch_case("tiny-transformer", tf, ProductSymmetry(continuous_symmetries(tf)))]


def _function_case(tf: TestFunction, seed: int = 0) -> Case:
    theta = torch.tensor(tf.start, dtype=torch.float64) + 0.3 * torch.randn(
        len(tf.start), generator=make_generator(seed, 6), dtype=torch.float64)
    return Case(f"testfunction:{tf.name}", tf.symmetry, theta, None, lambda th, X: tf.loss(th)[None])


def function_cases() -> list[Case]:
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]], dtype=torch.float64)
    return [_function_case(make()) for make in TEST_FUNCTIONS.values()] + [_function_case(quadratic(A))]


def learned_case(name: str, seed: int = 0) -> Case:
    sym = symdisc.load(f"zoo/{name}", fields="all")  # the interface contract, whatever verification kept
    arch = sym.arch.to(dtype=torch.float64)
    theta, X, Y = (t[0] for t in arch.sample_draws(1, sym.data_shape[0], make_generator(seed, 7)))
    v = sym.card["verification"]["invariance"]
    skip = "" if v["median"] <= NOT_INVARIANT else f"its card's held-out residual {v['median']:.2g} claims none"
    return Case(f"learned:{name}", sym, theta, X, _kept(arch, sym, Y), bound=LEARNED_SLACK * v["p90"],
                skip_invariance=skip)


def lifted_cases() -> list[Case]:
    """symdisc.lifting: a known GL lifted wider and deeper, a padded data-dependent GL, a learned artefact wider."""
    from symdisc.lifting import Placement, lift

    src, target = zoo.get("mlp", dims="2,2,3", act="linear"), zoo.get("mlp", dims="3,2,4,3,1", act="linear")
    gl = next(s for s in src.known_symmetries() if s.name.startswith("GL"))
    out = [arch_case("lifted", target, lift(gl, src, target, Placement(layer=2, units=(3, 0))))]
    src = zoo.get("mlp", dims="3,3,1", act="leakyrelu")
    dd = next(s for s in src.known_symmetries() if "sigma_inverse" in s.name)
    padded = lift(dd, src, src, Placement(batch=2, pad_to=3))
    arch = src.to(dtype=torch.float64)
    theta, X, Y = (t[0] for t in arch.sample_draws(1, 2, make_generator(0, 9)))
    out.append(Case(f"lifted:{padded.name}", padded, theta, X, _kept(arch, padded, Y)))
    learned = symdisc.load("zoo/fig6.3-linear-scalar", fields="all")
    sym = lift(learned, None, zoo.get("mlp", dims="1,3,1", act="linear"), Placement(units=(2,)))
    arch = sym.arch.to(dtype=torch.float64)
    theta, X, Y = (t[0] for t in arch.sample_draws(1, 1, make_generator(0, 7)))
    bound = LEARNED_SLACK * learned.card["verification"]["invariance"]["p90"]
    return out + [Case(f"lifted:{sym.name}", sym, theta, X, _kept(arch, sym, Y), bound=bound)]


def detected_cases() -> list[Case]:
    """symdisc.detect on a user module: Linear → LayerNorm over the units → Linear (rescalings, β-shift, mean-zero,
    mean shifts and the stream rotation SO(3))."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    arch = zoo.from_module(net, lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)),
                           name="linear-ln-linear")
    return [arch_case("detected:linear-ln-linear", arch, s) for s in arch.known_symmetries()]


def dcs_case() -> Case:
    """DCS's rescaling of its latent pairs (symdisc.dcs): Sparse (masked), Group and LowRank blocks; q = T(z)."""
    from symdisc.dcs import DCS, DCSRescaling, Group, Sparse

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    dcs = DCS(net, {"0.weight": Sparse(12, [1, 0] * 6), "0.bias": Group([0, 0, 1, -1]), "2.weight": "lowrank"})
    sym = DCSRescaling(dcs)
    theta = sym.layout.flatten({k: t.detach() for k, t in dcs.latent_parameters(penalised=True).items()})
    free = {b.name: {k: t.detach() for k, t in b.latents().items() if k not in b.constraint.penalised()}
            for b in dcs.blocks}
    names = {b.name: b.latent_names("0." if b.name.startswith("0.") else "2.") for b in dcs.blocks}

    def kept(z, X):
        parts = sym.layout.unflatten(z)
        return torch.cat([b.constraint.transform({**free[b.name], **{k: parts[names[b.name][k]]
                                                                      for k in b.constraint.penalised()}})
                          for b in dcs.blocks])

    return Case("dcs:rescaling", sym, theta, None, kept)


def all_cases() -> list[Case]:
    return (preset_cases() + literal_cases() + product_cases() + function_cases()
            + [learned_case(name) for name in LEARNED] + lifted_cases() + detected_cases() + [dcs_case()])
