"""The Symmetry contract (symdisc/symmetry/base.py), checked on every implementation in the package.

* identity      act(e, θ, X) = θ for the identity element e (c = 0; the identity permutation / signs),
                to 1e-12‖θ‖, wherever ``exactness`` does not say otherwise;
* tangents      Ξ(θ) = ∂/∂c act(c, θ, X)|_{c=0} of shape (p, k), against reverse mode (jacrev; the
                implementations use forward mode or closed forms), to 1e-10‖Ξ‖; p × 0 if discrete;
* field, orbit  field(c) = Ξ c;  orbit(c, θ, ts)[i] = act(ts_i c, θ)  (discrete: both raise InputError);
* pullback      pullback(v) = Ξᵀ v for a random cotangent v, to 1e-12‖Ξ‖‖v‖ (discrete: raises InputError);
* invariance    q(act(c, θ, X)) = q(θ) for the declared q (outputs or per-sample losses): exact actions
                to 1e-10·(1 + ‖q‖_∞) at small random c (data-dependent: where the moved point is still
                exact); learned ones (approximate) to 10× their card's held-out
                p90 of the first-order residual |Δq_i|/(‖∇q_i‖‖Δθ‖) at ‖Δθ‖ ≈ 1 % ‖θ‖;
* dtype/device  float32 in → float32 out, float64 → float64; cpu, and cuda when present;
* no mutation   θ, X, c and the symmetry itself are unchanged by every call;
* coverage      every concrete Symmetry subclass in symdisc has a case.
"""

import importlib
import inspect
from pathlib import Path

import pytest
import torch
from torch.func import jacrev

import symdisc
from symdisc import InputError, Symmetry, make_generator

from .contract_cases import all_cases
from .snapshots import assert_unchanged, snapshot

CASES = all_cases()
PARAMS = [pytest.param(c, id=c.id) for c in CASES]
CONTINUOUS = [pytest.param(c, id=c.id) for c in CASES if not c.sym.discrete]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def call(sym, method: str, *args, **kwargs):
    """sym.method(*args) asserting that neither the tensors passed nor the symmetry change."""
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    state = snapshot(sym)
    out = getattr(sym, method)(*args, **kwargs)
    for new, old in zip(args, before, strict=True):
        if isinstance(old, torch.Tensor):
            assert new.dtype == old.dtype and torch.equal(new, old), f"{method} mutated an argument"
    assert_unchanged(state, snapshot(sym), f"{sym.name} after {method}")
    return out


def coefficients(sym, scale: float = 0.3, seed: int = 0) -> torch.Tensor:
    return scale * torch.randn(sym.num_generators, generator=make_generator(seed, 8), dtype=torch.float64)


@pytest.mark.parametrize("case", PARAMS)
def test_identity_element_acts_as_identity(case):
    sym, theta, X = case.sym, case.theta, case.X()
    e = sym.identity_element()
    if e is None:
        pytest.skip(f"{sym.name} names no identity element")
    if call(sym, "exactness", theta, X).get("identity") is False:
        pytest.skip(f"{sym.name} is not the identity at c = 0 here (its exactness report says so)")
    moved = call(sym, "act", e, theta, X)
    assert (moved - theta).norm() <= 1e-12 * theta.norm()


@pytest.mark.parametrize("case", PARAMS)
def test_tangents_are_the_jacobian_of_the_action(case):
    sym, theta, X = case.sym, case.theta, case.X()
    xi = call(sym, "tangents", theta, X)
    assert xi.shape == (theta.shape[0], sym.num_generators) and xi.dtype == theta.dtype
    if sym.discrete:
        return
    ref = jacrev(lambda c: sym.act(c, theta, X))(torch.zeros(sym.num_generators, dtype=theta.dtype))
    assert (xi - ref).norm() <= 1e-10 * ref.norm().clamp_min(1e-300)


@pytest.mark.parametrize("case", PARAMS)
def test_field_and_orbit(case):
    sym, theta, X = case.sym, case.theta, case.X()
    if sym.discrete:
        for method, args in (("field", ()), ("orbit", (torch.zeros(1, dtype=theta.dtype),))):
            with pytest.raises(InputError, match="discrete"):
                call(sym, method, sym.identity_element(), theta, *args, X)
        return
    c = coefficients(sym)
    xi = call(sym, "field", c, theta, X)
    expected = call(sym, "tangents", theta, X) @ c
    assert (xi - expected).norm() <= 1e-12 * expected.norm().clamp_min(1e-300)
    ts = torch.tensor([-0.5, 0.0, 0.3, 1.0], dtype=theta.dtype)
    curve = call(sym, "orbit", c, theta, ts, X)
    assert curve.shape == (len(ts), theta.shape[0])
    for t, point in zip(ts, curve, strict=True):
        assert (point - call(sym, "act", t * c, theta, X)).norm() <= 1e-12 * theta.norm()


@pytest.mark.parametrize("case", PARAMS)
def test_pullback_is_the_adjoint_of_the_field(case):
    sym, theta, X = case.sym, case.theta, case.X()
    v = torch.randn(theta.shape[0], generator=make_generator(0, 9), dtype=torch.float64).to(theta)
    if sym.discrete:
        with pytest.raises(InputError, match="discrete"):
            call(sym, "pullback", v, theta, X)
        return
    xi = call(sym, "tangents", theta, X)
    out = call(sym, "pullback", v, theta, X)
    assert out.shape == (sym.num_generators,) and out.dtype == theta.dtype
    assert (out - xi.T @ v).norm() <= 1e-12 * xi.norm() * v.norm()


def _first_order_residual(case, c) -> float:
    """median_i |q_i(act(c)) − q_i(θ)| / (‖∇q_i‖‖Δθ‖) over the samples with ∇q_i ≠ 0."""
    theta, X = case.theta, case.data
    moved = call(case.sym, "act", c, theta, case.X()).detach()
    with torch.no_grad():
        dq = (case.kept(moved, X) - case.kept(theta, X)).reshape(-1)
    J = jacrev(lambda th: case.kept(th, X).reshape(-1))(theta)
    scale = J.norm(dim=1) * (moved - theta).norm()
    return (dq.abs()[scale > 0] / scale[scale > 0]).median().item()


@pytest.mark.parametrize("case", PARAMS)
def test_invariance_at_the_declared_level(case):
    sym, theta, X = case.sym, case.theta, case.X()
    if case.skip_invariance:
        pytest.skip(f"{sym.name}: {case.skip_invariance}")
    if case.bound is not None:  # learned: approximate; a move of 1 % of ‖θ‖
        c = coefficients(sym, 1.0)
        c = c * 1e-2 * theta.norm() / call(sym, "field", c, theta, X).norm()
        assert _first_order_residual(case, c) <= case.bound
        return
    gen, scale = make_generator(1, 8), 0.05
    for _ in range(8):  # where the data-dependent action stays exact: σ(gZ) may lose rank at larger g
        g = sym.sample_element(gen, scale)
        moved = call(sym, "act", g, theta, X)
        if call(sym, "exactness", moved, X)["exact"] is not False:
            break
        scale /= 4
    assert sym.discrete or (moved - theta).norm() > 1e-6 * theta.norm()  # it really moves θ
    q0, q1 = case.kept(theta, case.data), case.kept(moved, case.data)
    assert (q1 - q0).abs().max() <= 1e-10 * (1 + q0.abs().max())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", PARAMS)
def test_dtype_and_device_preserved(case, dtype, device):
    sym = case.sym
    theta = case.theta.to(dtype=dtype, device=device)
    X = None if case.X() is None else case.X().to(dtype=dtype, device=device)
    outs = [call(sym, "tangents", theta, X)]
    if sym.discrete:
        outs.append(call(sym, "act", sym.sample_element(make_generator(2)), theta, X))
    else:
        c = coefficients(sym, 0.1).to(dtype=dtype, device=device)
        ts = torch.tensor([0.0, 0.5], dtype=dtype, device=device)
        outs += [call(sym, "act", c, theta, X), call(sym, "field", c, theta, X), call(sym, "orbit", c, theta, ts, X)]
    for out in outs:
        assert out.dtype == dtype and out.device == theta.device


def concrete_symmetry_classes() -> set[type]:
    """Every concrete Symmetry subclass defined in symdisc, after importing each of its modules.  The
    modules are found on disk: pkgutil.walk_packages skips namespace packages (symdisc/discovery has no
    __init__.py)."""
    root = Path(symdisc.__file__).parent
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    found, todo = set(), [Symmetry]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("symdisc.") and not inspect.isabstract(sub):
                found.add(sub)
    return found


def test_every_symmetry_class_has_a_case():
    covered = {type(c.sym) for c in CASES}
    missing = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in concrete_symmetry_classes() - covered)
    assert not missing, f"Symmetry classes without a contract case (add one to tests/contract_cases.py): {missing}"
