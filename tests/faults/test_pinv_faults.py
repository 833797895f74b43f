"""Ill-conditioned pseudo-inverses in the data-dependent GL actions (issue 16): near-duplicate samples, inputs of tiny
scale, float32, a group element that saturates σ(gZ) — each detected, reported in one line with what to change, and
in a teleport a refused step (or a failed teleport) that leaves θ and the optimizer state as they were."""

import json
import math
import textwrap
import warnings

import pytest
import torch

import symdisc
from symdisc import make_generator
from symdisc.cli.main import main
from symdisc.errors import NumericalError
from symdisc.linalg import expm
from symdisc.symmetry import DataDependentGL, hidden_layers_gl
from symdisc.symmetry.data_dependent import pinv_condition_limit, pinv_conditioning
from symdisc.teleport import LossGuard, TeleportConfig, TeleportOptimizer, teleport
from symdisc.teleport.objectives import make_objective, value_and_grad

pytestmark = pytest.mark.usefixtures("one_thread")
ARCH = "4,6,5,2"  # widths 6 and 5 after input 4: a batch of 4 is exact for both forms


def problem(dims=ARCH, act="leakyrelu", batch=4, dtype=torch.float64, fault=None, seed=0):
    arch = symdisc.zoo.get("mlp", dims=dims, act=act, bias=True).to(dtype)
    gen = make_generator(seed)
    theta = arch.sample_params(gen)
    X, Y = arch.sample_data(batch, gen)
    if fault is not None:
        kind, size = fault
        if kind == "near-duplicate":  # sample 1 a copy of sample 0 up to `size`
            X[1] = X[0] + size * torch.randn(X.shape[1], generator=make_generator(3), dtype=torch.float64).to(dtype)
        elif kind == "duplicate":
            X[1] = X[0]
        elif kind == "scale":  # with biases every column of σ(Z) ≈ σ(b)
            X = X * size
    return arch, theta, X, Y


def first_layer(arch, form="pinv"):
    return next(s for s in arch.known_symmetries()
                if isinstance(s, DataDependentGL) and s.form == form and s.w_in == "W1")


def outputs_kept(arch, theta, moved, X) -> float:
    return float((arch.forward(moved, X) - arch.forward(theta, X)).abs().max())


@pytest.mark.parametrize("form", ["pinv", "sigma_inverse"])
def test_near_duplicate_samples_are_a_numerical_error_naming_the_batch(form):
    """Samples 1e-10 apart: σ(gZ) (pinv) or H (σ-inverse) has κ ≈ 1e10; the action used to change the outputs by
    up to 1e-4 (κ·ε) with no word.  Now one line with κ and what to change."""
    arch, theta, X, _ = problem(fault=("near-duplicate", 1e-10))
    sym = first_layer(arch, form)
    with pytest.raises(NumericalError, match=r"condition number .* > 6\.7e\+07 .*distinct samples") as info:
        sym.act(sym.sample_element(make_generator(1), 0.3), theta, X)
    assert "\n" not in str(info.value) and sym.name in str(info.value)
    with pytest.raises(NumericalError, match="distinct samples"):  # the fields (teleport's direction) as well
        sym.linearize(theta, X).field(sym.sample_element(make_generator(1), 0.3))


def test_inputs_of_tiny_scale_are_a_numerical_error():
    arch, theta, X, _ = problem(fault=("scale", 1e-10))
    sym = first_layer(arch)
    with pytest.raises(NumericalError, match="ordinary scale"):
        sym.act(sym.sample_element(make_generator(1), 0.3), theta, X)


def test_float32_has_its_own_limit_and_suggests_float64():
    arch, theta, X, _ = problem(dtype=torch.float32, fault=("near-duplicate", 1e-4))
    sym = first_layer(arch)
    assert pinv_condition_limit(torch.float32) == pytest.approx(2.9e3, rel=0.01)
    with pytest.raises(NumericalError, match=r"float32.*or float64"):
        sym.act(sym.sample_element(make_generator(1), 0.3).float(), theta, X)


def test_a_group_element_that_saturates_sigma_is_a_numerical_error_naming_the_step():
    """tanh, a step of ‖c‖ = 4 along the teleport's own first direction: σ(gZ) saturates to κ ≈ 1e11 (σ(Z) itself
    is fine, κ ≈ 10), so the message asks for a smaller group element, not another batch."""
    arch, theta, X, _, c, _ = saturating_step()
    sym = first_layer(arch)
    with pytest.raises(NumericalError, match="smaller group element") as info:
        sym.act(c, theta, X)
    assert "distinct samples" not in str(info.value)
    moved = sym.act(c / 8, theta, X)  # a smaller step is fine and keeps the outputs
    assert outputs_kept(arch, theta, moved, X) <= 1e-10


def test_a_group_element_that_overflows_is_a_numerical_error():
    arch, theta, X, _ = problem()
    sym = first_layer(arch)
    with pytest.raises(NumericalError, match="not finite .*overflows.*smaller group element"):
        sym.act(torch.full((36,), 1e3, dtype=torch.float64), theta, X)


def test_clean_rank_deficiency_is_not_an_error():
    """Exact duplicates: σ(Z) loses rank exactly (singular value ≈ 1e-17·σ_max, cut by the pseudo-inverse): the
    action stays exact and is not refused; the documented exactness report says rank 3 for batch 4."""
    arch, theta, X, _ = problem(fault=("duplicate", 0.0))
    for form in ("pinv", "sigma_inverse"):
        sym = first_layer(arch, form)
        moved = sym.act(sym.sample_element(make_generator(1), 0.3), theta, X)
        assert outputs_kept(arch, theta, moved, X) <= 1e-10
        assert "rank 3 for batch 4" in sym.exactness(theta, X)["condition"]


def test_well_conditioned_results_are_unchanged(monkeypatch):
    """The check reads two norms of what is at hand and changes no value: bitwise the same θ' and fields."""
    arch, theta, X, _ = problem()
    syms = [hidden_layers_gl(arch, form) for form in ("pinv", "sigma_inverse")]
    c = [s.sample_element(make_generator(1), 0.3) for s in syms]
    checked = [(s.act(ci, theta, X), s.linearize(theta, X).field(ci)) for s, ci in zip(syms, c, strict=True)]
    monkeypatch.setattr(DataDependentGL, "_check_conditioning", lambda *a, **k: None)
    for s, ci, (moved, xi) in zip(syms, c, checked, strict=True):
        assert torch.equal(moved, s.act(ci, theta, X)) and torch.equal(xi, s.linearize(theta, X).field(ci))


def saturating_step():
    """(arch, θ, X, Y, c, ‖g‖): tanh 4-6-2, a batch of 4, g the grad-norm teleport's first ascent direction (its
    coefficient gradient) and c = 4·g/‖g‖."""
    arch, theta, X, Y = problem(dims="4,6,2", act="tanh")
    sym = first_layer(arch)
    J = make_objective("grad_norm", lambda th: arch.batch_loss(th, X, Y), sym, theta, X, make_generator(0))
    g = sym.linearize(theta, X).pullback(value_and_grad(J, theta)[1])
    c = 4.0 * g / g.norm()
    Z = sym._pre_activation(arch.layout.unflatten(theta), X.T)
    assert pinv_conditioning(sym.sigma(Z))[0] < 1e3  # the batch is fine ...
    assert 1e9 < pinv_conditioning(sym.sigma(expm(c.reshape(6, 6)) @ Z))[0] < 1e14  # ... the step is not
    return arch, theta, X, Y, c, float(g.norm())


def test_a_teleport_refuses_the_ill_conditioned_step_and_keeps_theta():
    """With the loss guard off (it would otherwise refuse on the drift) nothing but the check stands between the
    step and θ: the step of ‖c‖ = 4 is refused and θ unchanged; allowed to halve, the teleport takes c/2 instead."""
    arch, theta, X, Y, _, g_norm = saturating_step()
    loss = lambda th: arch.batch_loss(th, X, Y)
    sym = hidden_layers_gl(arch)
    config = lambda halvings: TeleportConfig(steps=1, lr=4.0 / g_norm, max_halvings=halvings, monotone=False,
                                             guard=LossGuard(atol=math.inf))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the batch is exact: no warning
        refused, halved = teleport(sym, theta, loss, X, config(0)), teleport(sym, theta, loss, X, config(4))
    assert refused.log[0]["status"] == "refused" and torch.equal(refused.theta, theta)
    assert halved.log[0]["status"] == "accepted" and halved.log[0]["halvings"] == 1
    assert outputs_kept(arch, theta, halved.theta, X) <= 1e-10


MODULE = textwrap.dedent('''
    from dataclasses import replace

    import torch

    from symdisc import zoo


    def near_duplicates():
        """A tanh 3-8-1 MLP whose data are four distinct inputs, repeated with a jitter of 1e-10."""
        arch = zoo.get("mlp", dims="3,8,1", act="tanh", bias=True)

        def sample(b, g, dtype, device):
            pool = torch.randn(4, 3, generator=g, dtype=torch.float64)
            X = pool[torch.arange(b) % 4] + 1e-10 * torch.randn(b, 3, generator=g, dtype=torch.float64)
            return X.to(dtype=dtype, device=device), torch.randn(b, 1, generator=g, dtype=torch.float64).to(
                dtype=dtype, device=device)

        return replace(arch, data_sampler=sample)
''')


@pytest.mark.filterwarnings("ignore:teleport along .* is not exact here")  # batch 8 = width 8, rank 7 at 1e-10
def test_teleport_optimizer_failure_leaves_theta_and_state_and_training_goes_on():
    """A teleport on a near-duplicate batch fails as a whole (the fields at θ are untrustworthy): NumericalError
    from step(), after which θ and the momentum are exactly those of the plain optimizer, and training goes on."""
    arch, theta0, X, Y = problem(dims="3,8,1", act="tanh", batch=8, fault=("near-duplicate", 1e-10))
    loss = lambda th: arch.batch_loss(th, X, Y)
    theta, plain = theta0.clone().requires_grad_(True), theta0.clone().requires_grad_(True)
    ref = torch.optim.SGD([plain], lr=0.05, momentum=0.9)
    opt = TeleportOptimizer(torch.optim.SGD([theta], lr=0.05, momentum=0.9), hidden_layers_gl(arch), params=theta,
                            loss_fn=lambda th, b: loss(th), batches=lambda g: (X, Y), schedule=[1])
    for step in (1, 2):
        for o, p in ((opt, theta), (ref, plain)):
            o.zero_grad()
            loss(p).backward()
        ref.step()
        if step == 1:
            with pytest.raises(NumericalError, match="distinct samples"):
                opt.step()
        else:
            opt.step()
        assert torch.equal(theta, plain)
        assert torch.equal(opt.optimizer.state[theta]["momentum_buffer"], ref.state[plain]["momentum_buffer"])
    assert opt.events == []


def test_cli_teleport_records_the_failure_and_trains_on(tmp_path, capsys, monkeypatch):
    """symdisc teleport … --symmetry known-data on near-duplicate data: every teleport fails with the one-line
    reason in teleport_failures, the run finishes (exit 0) and the teleport arm equals the plain one."""
    (tmp_path / "faulty.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    code = main(["teleport", f"{tmp_path / 'faulty.py'}:near_duplicates", "--symmetry", "known-data", "--steps", "4",
                 "--teleport-at", "1,3", "--train-size", "64", "--batch-size", "16", "--teleport-steps", "2",
                 "--json"])
    doc = json.loads(capsys.readouterr().out)
    failures = doc["teleport"]["teleport_failures"]
    assert code == 0 and [f["step"] for f in failures] == [1, 3] and doc["teleport"]["teleports"] == []
    assert all("condition number" in f["error"] and "distinct samples" in f["error"] for f in failures)
    assert doc["teleport"]["loss"] == doc["plain"]["loss"] and doc["summary"]["teleport_failures"] == 2


def test_fields_that_fail_mid_teleport_keep_the_steps_taken(monkeypatch):
    """The fields cannot be formed at the point the third ascent step reached: the teleport keeps the steps the
    guard accepted (the objective improved, the loss kept) and records why it stopped; at the start the same
    failure is an error (nothing was taken)."""
    from symdisc.teleport.compare import known_symmetry
    from symdisc.teleport.routine import TeleportConfig, teleport

    arch = symdisc.zoo.get("mlp", act="leakyrelu", dims="4,6,2").to(torch.float64)
    sym = known_symmetry(arch, "known-data")
    theta = arch.sample_params(make_generator(0))
    X, Y = arch.sample_data(4, make_generator(1))
    loss = lambda th: arch.batch_loss(th, X, Y)
    config = TeleportConfig(steps=6, lr=1e-2, max_step=0.2, metric="coefficients")
    real, calls = sym.linearize, []

    def flaky(th, X):
        calls.append(1)
        if len(calls) >= 3:
            raise NumericalError("the fields are ill-conditioned here: use a smaller group element")
        return real(th, X)

    monkeypatch.setattr(sym, "linearize", flaky)
    result = teleport(sym, theta, loss, X, config)
    assert len(calls) >= 3 and result.log[-1]["status"] == "refused" and "smaller" in result.log[-1]["reason"]
    assert sum(e["status"] != "refused" for e in result.log) >= 1 and result.objective_after > result.objective_before
    assert abs(result.loss_after - result.loss_before) <= 1e-8 * abs(result.loss_before)
    assert result.summary()["refused"] == result.log[-1]["reason"]
    calls.extend([1, 1])
    with pytest.raises(NumericalError, match="ill-conditioned"):
        teleport(sym, theta, loss, X, config)
