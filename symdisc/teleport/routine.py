"""The teleport routine over any Symmetry (D Alg. 1–2; teleport.md §1.2).

Each of ``steps`` ascent (``maximize``) or descent steps re-linearises at the identity:

    c ← ± lr · ∇_c J(m(c)) |_{c=0},    θ ← m(c)

where J is the objective (objectives.py) and m the parameterisation of the group element:

* ``exp`` (default):        m(c) = a_X(exp(Σ c_k h_k), θ)  — exact for exact symmetries;
* ``first_order`` (papers): m(c) = θ + ξ_h(θ), h = Σ c_k h_k — the I + T of D §4.6.1 with
  g⁻¹ ≈ I − T, which for a linear pair action (W₂(I − T), (I + T)W₁) is exactly θ + ξ_T(θ); it
  drifts the loss by O(‖c‖²), which the guard then corrects or refuses.

Both m have derivative Ξ(θ) at c = 0, so ∇_c J(m(c))|₀ = Ξᵀ∇_θJ(θ): one gradient in θ and one adjoint of the
fields (``Symmetry.linearize``), no derivative through the finite action (fastpaths.py lists what else is saved).

``metric`` chooses the coordinates the ascent is steepest in:

* ``coefficients`` (default, the papers'): c is the gradient in the generator basis, so the θ-step
  ΞΞᵀ∇J depends on how the generators are scaled and mixed (Ξ = tangents(θ), p×k);
* ``fields``: steepest ascent in the metric the fields induce on the orbit, c = lr·(ΞᵀΞ)⁺∇_cJ, whose
  first-order θ-step is lr·P_Ξ∇_θJ (P_Ξ the orthogonal projector onto span Ξ).  Implemented as the
  ascent in whitened coordinates c̃ with c = Bc̃, B = (ΞᵀΞ)^{+1/2} (singular values below
  ``metric_rcond``·s_max dropped), so that ``max_step`` bounds the first-order displacement ‖Ξc‖ = ‖c̃‖
  in θ's own units.  Invariant to any invertible recombination of the generators: a learned artefact
  (orthonormal h, arbitrary field scale) and the known action over the same span take the same steps.

``max_step`` (optional) caps ‖c‖₂ per step (‖c̃‖₂ with ``metric="fields"``): GL orbits are unbounded and
‖∇L‖² grows without limit along them (D:L1848), so a fixed lr can jump to points whose gradient no
optimizer step survives.  The ascent direction is projected onto {c : ∇_c L(m(c))|₀ · c = 0}, the
coefficients that keep the loss to first order (a no-op for exact symmetries).  Every step passes the
loss guard (guard.py).  With ``monotone`` a step is also kept only if it improves J enough (Armijo):
±(J(new) − J(old)) ≥ ``armijo``·|∇_c J · c|; otherwise lr is halved
(at most ``max_halvings`` times) and the step retried.  A plain ascent with the papers' fixed lr
overshoots on Booth; ``armijo`` = ½ keeps near-optimal steps (for a quadratic J it accepts only
steps that at least halve the distance to the optimum).  ``monotone=False`` is the papers' plain
ascent.  Discrete symmetries (k = 0) are
searched by random sampling (D:L1447): the best of ``samples`` elements that passes the guard.
The routine is functional: it returns θ' and never modifies its inputs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch.func import grad

from symdisc.errors import InputError, NumericalError, SymdiscWarning
from symdisc.optim.move import GroupMove
from symdisc.symmetry.base import Symmetry
from symdisc.teleport.guard import LossGuard
from symdisc.teleport.objectives import LossFn, ObjectiveFn, ObjectiveSpec, make_objective, value_and_grad

Parameterisation = Literal["exp", "first_order"]
Metric = Literal["coefficients", "fields"]


@dataclass(frozen=True)
class TeleportConfig:
    """Hyper-parameters of one teleport (defaults: Booth's 10 steps; lr per experiment)."""

    objective: str = "grad_norm"
    maximize: bool = True
    steps: int = 10
    lr: float = 1e-2
    parameterisation: Parameterisation = "exp"
    monotone: bool = True
    armijo: float = 0.5
    max_halvings: int = 12
    max_step: float | None = None
    metric: Metric = "coefficients"
    metric_rcond: float = 1e-6
    samples: int = 32
    guard: LossGuard = field(default_factory=LossGuard)
    spec: ObjectiveSpec = field(default_factory=ObjectiveSpec)

    def validate(self) -> None:
        if self.steps < 0 or self.lr <= 0 or not math.isfinite(self.lr):
            raise InputError(f"teleport needs steps ≥ 0 and a finite lr > 0 (got steps={self.steps}, lr={self.lr})")
        if self.max_step is not None and not self.max_step > 0:
            raise InputError(f"max_step must be > 0, got {self.max_step}")
        if self.parameterisation not in ("exp", "first_order"):
            raise InputError(f"unknown parameterisation {self.parameterisation!r}; choose exp or first_order")
        if self.metric not in ("coefficients", "fields"):
            raise InputError(f"unknown teleport metric {self.metric!r}; choose coefficients or fields")
        if not 0 < self.metric_rcond < 1:
            raise InputError(f"metric_rcond must lie in (0, 1), got {self.metric_rcond}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TeleportResult(GroupMove):
    """θ' and the record of a teleport; a ``GroupMove``, so ``transport_covector(v)`` = J^{-T} v along it
    (P4: ∇L(g·θ) = J^{-T} ∇L(θ)).  ``moves`` are (c, θ before) of the accepted steps."""

    theta: torch.Tensor
    loss_before: float
    loss_after: float
    objective_before: float
    objective_after: float
    log: list[dict]
    exactness: dict
    moves: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list, repr=False)
    symmetry: Symmetry | None = field(default=None, repr=False)
    X: torch.Tensor | None = field(default=None, repr=False)
    parameterisation: Parameterisation = "exp"

    @property
    def loss_change(self) -> float:
        return self.loss_after - self.loss_before

    def counts(self) -> dict[str, int]:
        out = {"accepted": 0, "corrected": 0, "refused": 0}
        for entry in self.log:
            out[entry["status"]] += 1
        return out

    def maps(self):
        """The accepted steps as maps θ ↦ m(c, θ) at the points they were taken (a guard correction is not
        part of the move, so it is not transported)."""
        for c, before in self.moves:
            yield (lambda th, c=c: move(self.symmetry, self.parameterisation, c, th, self.X)), before

    def summary(self) -> dict:
        return {"loss_before": self.loss_before, "loss_after": self.loss_after, "loss_change": self.loss_change,
                "objective_before": self.objective_before, "objective_after": self.objective_after,
                "steps": self.counts(), "exactness": self.exactness,
                "refused": next((e["reason"] for e in self.log if e["status"] == "refused"), None)}


def _tangent(g: torch.Tensor, drift: torch.Tensor) -> torch.Tensor:
    """g without its component along ``drift`` = ∇_c L(m(c))|₀: the ascent direction whose move keeps L to
    first order.  For an exact symmetry drift = 0 and g is returned; for an approximate one (a learned action,
    the pinv action on a batch wider than the layer) the guard then only has second-order drift to correct,
    instead of undoing most of the step."""
    dd = drift @ drift
    if not dd > 0:
        return g
    return g - (g @ drift) / dd * drift


def whitening(tangents: torch.Tensor, rcond: float) -> torch.Tensor:
    """B = (ΞᵀΞ)^{+1/2} = V_r S_r⁻¹ V_rᵀ (k×k) from the SVD Ξ = U S Vᵀ of the tangents at θ, singular values
    below rcond·s_max dropped: ΞB = U_r V_rᵀ, so ‖ΞBc̃‖ = ‖c̃‖ for c̃ in span V_r."""
    _, s, Vh = torch.linalg.svd(tangents, full_matrices=False)
    if not (torch.isfinite(s).all() and s.numel() and s[0] > 0):
        raise NumericalError("teleport: the symmetry's tangents vanish or are not finite at θ; no fields metric "
                             "exists there (use metric='coefficients')")
    keep = s > rcond * s[0]
    V = Vh[keep].T
    return (V / s[keep]) @ V.T


SKIP_UNUSED_DRIFT = True  # no loss-drift gradient when the guard's tolerance is infinite (it cannot use it)
PULLBACK = True  # ∇_c J(m(c))|₀ = Ξᵀ∇_θJ(θ) by Symmetry.pullback (False: grad through the move; benchmarks)
FUSE_OBJECTIVE = True  # without Armijo, J and ∇_θJ at an accepted proposal in one pass, reused by the next step


def _coefficient_gradients(symmetry, config, objective, loss_fn, theta, X, need_drift: bool = True, grad_J=None,
                           tangent_map=None):
    """(∇_c J(m(c))|₀, ∇_c L(m(c))|₀, B).  Both parameterisations have derivative Ξ = tangents(θ) at c = 0 and
    m(0) = θ, so by the chain rule these are Ξᵀ∇_θJ(θ) and Ξᵀ∇_θL(θ): one gradient in θ and one vjp of the
    action (``Symmetry.pullback``), never a derivative through the finite action (for a flow an integration).
    With ``metric="fields"`` they are taken in the whitened coordinates c̃, c = Bc̃ (B symmetric, so
    ∇_c̃ = B∇_c).  ``grad_J``: ∇_θJ(θ) when already known; ``tangent_map``: ``symmetry.linearize(θ, X)``, which the
    step also moves with.  Without ``need_drift`` the drift is 0 (not computed)."""
    grad_J = value_and_grad(objective, theta)[1] if grad_J is None else grad_J
    if config.metric == "fields":
        tangents = symmetry.tangents(theta, X).detach()
        B = whitening(tangents, config.metric_rcond)
        drift = B @ (tangents.T @ value_and_grad(loss_fn, theta)[1]) if need_drift else \
            torch.zeros(B.shape[0], dtype=theta.dtype, device=theta.device)
        return B @ (tangents.T @ grad_J), drift, B
    if not PULLBACK:  # the path before issue 14: reverse mode through the move
        zero = torch.zeros(symmetry.num_generators, dtype=theta.dtype, device=theta.device)
        g = grad(lambda c: objective(move(symmetry, config.parameterisation, c, theta, X)))(zero).detach()
        drift = grad(lambda c: loss_fn(move(symmetry, config.parameterisation, c, theta, X)))(zero).detach() \
            if need_drift else torch.zeros_like(g)
        return g, drift, None
    g = tangent_map.pullback(grad_J).detach()
    drift = tangent_map.pullback(value_and_grad(loss_fn, theta)[1]).detach() if need_drift else torch.zeros_like(g)
    return g, drift, None


def move(symmetry: Symmetry, parameterisation: str, c: torch.Tensor, theta: torch.Tensor, X=None) -> torch.Tensor:
    """The group element with coefficients c applied to θ: a_X(exp(Σ c_k h_k), θ) (``exp``) or its first-order
    form θ + ξ_h(θ) (``first_order``, the papers' I + T)."""
    if parameterisation == "exp":
        return symmetry.act(c, theta, X)
    return theta + symmetry.field(c, theta, X)


def _try_move(symmetry, parameterisation, c, theta, X, tangent_map=None) -> tuple[torch.Tensor | None, str | None]:
    """(the proposal, None), or (None, why) when the action cannot be evaluated there (an overflowing exp, an
    ill-conditioned pseudo-inverse in a data-dependent action, non-finite values): a refused step.  A first-order
    move uses ``tangent_map`` (the fields at θ) when given."""
    try:
        out = (theta + tangent_map.field(c) if tangent_map is not None and parameterisation == "first_order"
               else move(symmetry, parameterisation, c, theta, X)).detach()
    except NumericalError as e:
        return None, str(e)
    except (RuntimeError, torch.linalg.LinAlgError) as e:
        return None, f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return (out, None) if torch.isfinite(out).all() else (None, "the moved parameters are not finite")


def teleport(
    symmetry: Symmetry,
    theta: torch.Tensor,
    loss_fn: LossFn,
    X: torch.Tensor | None = None,
    config: TeleportConfig = TeleportConfig(),
    objective: ObjectiveFn | None = None,
    generator: torch.Generator | None = None,
    accumulator: torch.Tensor | None = None,
) -> TeleportResult:
    """Teleport θ along ``symmetry`` to improve ``objective`` (default: ``config.objective``) while
    ``loss_fn`` (θ ↦ batch loss on the teleport batch, whose inputs are X) stays within the guard."""
    config.validate()
    if theta.shape != (symmetry.layout.num_params,):
        raise InputError(f"{symmetry.name} acts on {symmetry.layout.num_params} parameters; "
                           f"θ has shape {tuple(theta.shape)} (does the symmetry belong to this model?)")
    X = X if symmetry.data_dependent else None
    if symmetry.data_dependent and X is None:
        raise InputError(f"{symmetry.name} is data-dependent: pass the teleport batch's inputs X")
    theta = theta.detach()
    generator = generator or torch.Generator().manual_seed(0)
    if objective is None:
        objective = make_objective(config.objective, loss_fn, symmetry, theta, X, generator, config.spec, accumulator)
    exactness = symmetry.exactness(theta, X)
    if exactness.get("exact") is False:
        warnings.warn(f"teleport along {symmetry.name} is not exact here ({exactness['condition']}); "
                      "the loss guard corrects or refuses drifting steps", SymdiscWarning, stacklevel=2)
    loss0 = float(loss_fn(theta))
    grad_J = None  # ∇_θJ at the current point, when an evaluation of J has given it
    if FUSE_OBJECTIVE and PULLBACK and not symmetry.discrete and config.steps > 0:
        value, grad_J = value_and_grad(objective, theta)  # the first step needs ∇J(θ) anyway
        obj0 = float(value)
    else:
        obj0 = float(objective(theta))
    if not (math.isfinite(loss0) and math.isfinite(obj0)):
        raise NumericalError(f"teleport: non-finite loss or objective at the start (L = {loss0}, J = {obj0})")
    result = TeleportResult(theta, loss0, loss0, obj0, obj0, [], exactness, symmetry=symmetry, X=X,
                            parameterisation=config.parameterisation)
    sign = 1.0 if config.maximize else -1.0
    improves = lambda new, old, gain=0.0: sign * (new - old) > gain
    if symmetry.discrete:
        _search(symmetry, result, loss_fn, objective, config, generator, improves)
        return result
    current, obj = theta, obj0
    need_drift = not (SKIP_UNUSED_DRIFT and math.isinf(config.guard.tolerance(loss0)))
    for step in range(config.steps):
        try:
            tangent_map = symmetry.linearize(current, X) if PULLBACK and config.metric == "coefficients" else None
            g, drift, B = _coefficient_gradients(symmetry, config, objective, loss_fn, current, X, need_drift,
                                                 grad_J, tangent_map)
        except NumericalError as e:
            if step == 0:
                raise
            # the fields cannot be trusted at the point reached (e.g. an ill-conditioned pseudo-inverse there):
            # keep the steps taken, which the guard accepted, and stop
            result.log.append({"step": step, "status": "refused", "lr": config.lr, "halvings": 0, "objective": obj,
                               "drift": None, "reason": str(e)})
            break
        if not (torch.isfinite(g).all() and torch.isfinite(drift).all()):
            raise NumericalError(f"teleport step {step}: the objective's gradient is not finite; parameters unchanged")
        # project only where the drift is real: the first-order loss change of a full step exceeds the guard's
        # tolerance (for exact symmetries `drift` is rounding noise, and in 1-D the projection would remove g)
        real = abs(float(drift @ g)) * config.lr > config.guard.tolerance(loss0)
        ascent = _tangent(g, drift) if real else g
        # without Armijo an admissible proposal is the next point: evaluate J there with its gradient, in one pass
        fuse = FUSE_OBJECTIVE and PULLBACK and not config.monotone and step + 1 < config.steps
        lr, entry, reason = config.lr, None, None
        for halving in range(config.max_halvings + 1):
            c = sign * lr * ascent
            if config.max_step is not None and c.norm() > config.max_step:
                c = c * (config.max_step / c.norm())
            gain = config.armijo * abs(float(g @ c))
            c = c if B is None else B @ c
            proposal, why = _try_move(symmetry, config.parameterisation, c, current, X, tangent_map)
            reason = why or reason
            proposal, status, drift = (current, "refused", math.inf) if proposal is None else \
                config.guard.check(loss_fn, proposal, loss0)
            next_grad, new_obj = None, math.nan
            if status != "refused" and fuse:
                value, next_grad = value_and_grad(objective, proposal)
                new_obj = float(value)
            elif status != "refused":
                new_obj = float(objective(proposal))
            if status != "refused" and math.isfinite(new_obj) and (not config.monotone or improves(new_obj, obj, gain)):
                entry = {"step": step, "status": status, "lr": lr, "halvings": halving, "objective": new_obj,
                         "drift": drift}
                result.moves.append((c.detach(), current))
                current, obj, grad_J = proposal, new_obj, next_grad
                break
            lr /= 2
        if entry is None:
            entry = {"step": step, "status": "refused", "lr": lr * 2, "halvings": config.max_halvings,
                     "objective": obj, "drift": None, "reason": reason or "every halved step changed the loss beyond "
                     "the guard's tolerance or did not improve the objective"}
            result.log.append(entry)
            break  # no admissible step: the orbit offers no further improvement at this resolution
        result.log.append(entry)
    result.theta, result.objective_after = current, obj
    result.loss_after = float(loss_fn(current))
    return result


def _search(symmetry, result, loss_fn, objective, config, generator, improves) -> None:
    """Best of ``config.samples`` random discrete elements that passes the guard and improves J."""
    best, best_obj = result.theta, result.objective_before
    for i in range(config.samples):
        element = symmetry.sample_element(generator)
        proposal = symmetry.act(element, result.theta, None)
        proposal, status, drift = config.guard.check(loss_fn, proposal, result.loss_before)
        value = float(objective(proposal)) if status != "refused" else math.nan
        if status != "refused" and improves(value, best_obj):
            best, best_obj = proposal, value
            result.log.append({"step": i, "status": status, "objective": value, "drift": drift,
                               "element": element.tolist()})
    result.theta, result.objective_after = best, best_obj
    result.loss_after = float(loss_fn(best))
