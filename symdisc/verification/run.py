"""Held-out verification of any continuous symmetry (known, product, data-dependent or learned), in float64.

Held-out (θ, X, Y) come from the stream SeedSequence([seed, 20, j]), never used in training.  For each draw
and field ξ_k(θ) = D_g a_X|_{I,θ}(h_k):

* invariance      r = |Ĵ_i · ξ̂_k| per sample (per-sample loss Jacobian; also the output Jacobian);
* curves          max_t |L(γ(t)) − L(θ)| along γ(t) = a_X(exp(t h), θ) and along the RK4 flow of ξ_h,
                  against random h ∈ gl(p) with ‖ξ_rand(θ)‖ matched, as the ratio of medians (fig. 6.6);
* identity        ‖a_X(I, θ) − θ‖/‖θ‖;   composition ‖a(g₂, a(g₁, θ)) − a(g₂g₁, θ)‖/‖a(g₂g₁, θ) − θ‖ at t;
* bracket         ‖[ξ_a, ξ_b] + ξ_{[h_a,h_b]}‖ / (‖[ξ_a, ξ_b]‖ + ‖ξ_{[h_a,h_b]}‖) and the distance of
                  [ξ_a, ξ_b] from span{ξ} (closure);
* data dependence ‖D_X ξ_k‖_F / ‖ξ_k‖ (exact up to DDEP_EXACT numbers in X, beyond that estimated from
                  DDEP_PROBES directional derivatives: E_v‖D_X ξ·v‖² = ‖D_X ξ‖_F² for v ~ N(0, I));
* verified        the fields kept for use: invariant (class below) and independent — greedily, most invariant
                  first, a field is kept when its median distance ‖(I − P)ξ̂‖ from the span of those kept before
                  is ≥ INDEPENDENT (a field in the span of others adds no symmetry);
* tangent space   each field's class (functional: keeps the outputs; loss-only; not invariant), its
                  share in the census null spaces ‖P_null ξ‖²/‖ξ‖², the principal angles between
                  span{ξ} and the null space / the known symmetries' span, and novelty
                  ρ = ‖(I − Π_known) ξ‖/‖ξ‖ (discovery.md §6 B9).

Composition, bracket and the random comparator come from ``probes`` (null, with the reason, where the
symmetry cannot supply them).  The symmetry is never modified: a learned one (anything with modules to move,
``to(dtype=…)``) is verified on a float64 deep copy, made once (casting its weights at every call is
several times slower).
"""

from __future__ import annotations

import copy
import math

import torch
from torch.func import jacfwd, jvp, vmap

from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.jacobians import loss_jacobian, output_jacobian
from symdisc.linalg import null_basis, null_space, orth
from symdisc.symmetry.base import Symmetry, stacked_tangents
from symdisc.symmetry.known import continuous_symmetries
from symdisc.verification.config import HELD_OUT_STREAM, VerifyConfig
from symdisc.verification.curves import drift
from symdisc.verification.probes import BRACKET, COMPOSITION, Probe, probe_for
from symdisc.verification.report import summarise

ROWS = ("xi", "inv", "inv_out", "ident", "ddep", "null_out", "null_loss", "known_share", "cos2_null_out",
        "cos2_null_loss", "cos2_known", "null_dims_out", "null_dims_loss", "bracket", "closure", "exact", "condition")


FAST_NULL_SPACE = True  # null spaces through the row space, nothing p×p (False: full SVD; benchmarks' "before")
SKIP_UNUSED_DRAWS = True  # no random p×p comparator drawn when nothing uses it (False: drawn; "before")


class _DenseNull:
    """The path before issue 14: an explicit null basis N (p × d) from the full SVD; the same interface."""

    def __init__(self, J: torch.Tensor, rtol: float):
        self.N = null_basis(J, rtol)
        self.dim = self.N.shape[1]

    def share(self, xi):
        return _share(self.N, xi)

    def cos2(self, A):
        return _cos2_angles(A, self.N)


def _null_space(J: torch.Tensor, rtol: float):
    return null_space(J, rtol) if FAST_NULL_SPACE else _DenseNull(J, rtol)


def check_verifiable(sym: Symmetry, arch: Architecture, batch: int, draws: int) -> None:
    if sym.discrete:
        raise InputError(f"verify checks continuous symmetries; {sym.name} is discrete (a finite group has no fields "
                         "to test): check it with act on sample_element instead")
    if sym.layout != arch.layout:
        raise InputError(f"{sym.name} acts on {sym.layout.num_params} parameters laid out as {sym.layout.names}, "
                         f"not on {arch.name} (p = {arch.num_params}): pass the architecture it belongs to (arch=)")
    if batch < 1 or draws < 1:
        raise InputError(f"batch and draws must be ≥ 1, got batch={batch}, draws={draws}")
    trained = getattr(sym, "data_shape", None)
    if sym.data_dependent and trained and batch != trained[0]:
        raise InputError(f"{sym.name} takes data batches of {trained[0]} samples (its training batch), "
                         f"got batch={batch}")


def _cos2_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """cos² of the principal angles between span A and span B (orthonormal columns)."""
    if A.shape[1] == 0 or B.shape[1] == 0:
        return A.new_zeros(0)
    return torch.linalg.svdvals(A.T @ B).clamp(max=1.0).pow(2)


def _share(P: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    """‖P Pᵀ ξ‖²/‖ξ‖² per column."""
    return (P.T @ xi).pow(2).sum(0) / xi.pow(2).sum(0).clamp_min(1e-300)


def float64_copy(sym: Symmetry, device: str | torch.device = "cpu") -> Symmetry:
    """A float64 deep copy on ``device`` of a symmetry with weights of its own (``to``); analytic ones (which
    follow θ's device) are returned as is."""
    if not callable(getattr(sym, "to", None)):
        return sym
    return copy.deepcopy(sym).to(dtype=torch.float64, device=device)


def verify_symmetry(sym: Symmetry, arch: Architecture, batch: int, cfg: VerifyConfig | None = None) -> dict:
    """All metrics (JSON-able) plus a plain-language ``verdict`` for the continuous symmetry ``sym`` of ``arch``."""
    cfg = cfg or VerifyConfig()
    check_verifiable(sym, arch, batch, cfg.draws)
    arch = arch.to(dtype=torch.float64, device=cfg.device)
    sym = float64_copy(sym, cfg.device)
    probe = probe_for(sym)
    k, p = sym.num_generators, arch.num_params
    gen = make_generator(cfg.seed, HELD_OUT_STREAM)
    thetas, Xs, Ys = arch.sample_draws(cfg.draws, batch, gen)
    known = continuous_symmetries(arch, None)
    rows: dict[str, list] = {key: [] for key in ROWS}
    comp: dict[float, list] = {t: [] for t in cfg.composition_ts}
    curve = {"orbit": ([], []), "flow": ([], [])}
    flow_action = getattr(sym, "constrained", False)  # a_X(exp(M), θ) is defined as the flow of ξ_M
    with torch.no_grad():
        for j in range(cfg.draws):
            theta, Xd, Y = thetas[j], Xs[j], Ys[j]
            X = Xd if sym.data_dependent else None
            exactness = sym.exactness(theta, X)
            rows["exact"].append(exactness["exact"])
            rows["condition"].append(exactness["condition"])
            Xi = sym.tangents(theta, X)  # (p, k)
            xi_n = Xi.norm(dim=0).clamp_min(1e-300)
            rows["xi"].append(Xi / xi_n)
            Jl, Jo = loss_jacobian(arch, theta, Xd, Y), output_jacobian(arch, theta, Xd)
            rows["inv"].append((Jl @ Xi).abs() / (Jl.norm(dim=1, keepdim=True).clamp_min(1e-300) * xi_n))
            rows["inv_out"].append((Jo @ Xi).norm(dim=0) / (Jo.norm() * xi_n))
            if cfg.structure:
                identity = sym.identity_element().to(theta)
                rows["ident"].append(((sym.act(identity, theta, X) - theta).norm() / theta.norm()).item())
            if sym.data_dependent and cfg.structure and Xd.is_floating_point():
                probes = make_generator(cfg.seed, HELD_OUT_STREAM, DDEP_STREAM, j)  # leaves the draws' stream alone
                rows["ddep"].append(_data_dependence(sym, theta, Xd, probes) / xi_n)
            Nout, Nloss = _null_space(Jo, cfg.rtol), _null_space(Jl, cfg.rtol)
            rows["null_dims_out"].append(Nout.dim)
            rows["null_dims_loss"].append(Nloss.dim)
            rows["null_out"].append(Nout.share(Xi))
            rows["null_loss"].append(Nloss.share(Xi))
            span = orth(Xi)
            rows["cos2_null_out"].append(Nout.cos2(span))
            rows["cos2_null_loss"].append(Nloss.cos2(span))
            K = orth(stacked_tangents(known, theta))
            rows["known_share"].append(_share(K, Xi) if K.shape[1] else theta.new_zeros(k))
            rows["cos2_known"].append(_cos2_angles(span, K))
            for t in cfg.composition_ts if cfg.structure else ():
                c1, c2 = (t * torch.randn(k, generator=gen, dtype=theta.dtype).to(theta.device) / math.sqrt(k)
                          for _ in range(2))
                both = probe.composed(c1, c2, theta, X)
                if both is not None:
                    err = (sym.act(c2, sym.act(c1, theta, X), X) - both).norm()
                    comp[t].append((err / (both - theta).norm().clamp_min(1e-300)).item())
            if k >= 2 and cfg.structure:
                a, b = torch.randperm(k, generator=gen)[:2].tolist()
                lie = _lie(sym, theta, X, a, b, Xi)
                scale = Xi[:, a].norm() * Xi[:, b].norm() / theta.norm().clamp_min(1e-300)
                xi_m = probe.bracket_field(a, b, theta, X)
                if xi_m is not None:
                    rows["bracket"].append(((lie + xi_m).norm() / (lie.norm() + xi_m.norm() + scale)).item())
                resid = lie - span @ (span.T @ lie)
                rows["closure"].append((resid.norm() / (lie.norm() + scale)).item())
            for kind, (own, rand) in curve.items():
                for i, e in enumerate(torch.eye(k, dtype=theta.dtype, device=theta.device)):
                    if SKIP_UNUSED_DRAWS and not (cfg.curves or cfg.structure):
                        continue  # nothing else draws from gen: skipping the O(p²) draw changes no result
                    R = torch.randn(p, p, generator=gen, dtype=theta.dtype)  # drawn even when skipped: same stream
                    R = R.to(theta.device)
                    if cfg.curves:
                        if kind == "flow" and flow_action:  # its orbit is this flow: the same curve, already drawn
                            own.append(curve["orbit"][0][j * k + i])
                        else:
                            own.append(_own_drift(sym, arch, theta, X, Xd, Y, e, kind, cfg))
                        rand.append(_random_drift(probe, arch, theta, X, Xd, Y, R / R.norm(), kind, cfg))
    missing = dict(probe.missing)
    if sym.data_dependent and not Xs.is_floating_point():
        missing["data_dependence_median"] = f"integer or boolean inputs ({Xs.dtype}): ∂ξ/∂X is not defined"
    if not cfg.curves:
        missing["curves"] = "skipped (curves=False)"
    if not cfg.structure:
        for metric in (COMPOSITION, BRACKET, "closure_residual_median", "data_dependence_median",
                       "identity_error_median"):
            missing[metric] = "skipped (structure=False: invariance and independence only)"
    if k < 2:
        missing[BRACKET] = missing["closure_residual_median"] = f"needs k ≥ 2 generators, {sym.name} has {k}"
    return summarise(sym, arch, batch, cfg, rows, comp, curve, missing)


DDEP_EXACT, DDEP_PROBES, DDEP_STREAM = 64, 16, 1


def _data_dependence(sym, theta, X, gen) -> torch.Tensor:
    """‖D_X ξ_k(θ, X)‖_F for each field k (see the module docstring)."""
    fields = lambda x: sym.tangents(theta, x)
    if X.numel() <= DDEP_EXACT:
        return jacfwd(fields)(X).reshape(theta.shape[0], sym.num_generators, -1).norm(dim=(0, 2))
    V = torch.randn(DDEP_PROBES, *X.shape, generator=gen, dtype=X.dtype).to(X.device)
    dirs = torch.stack([jvp(fields, (X,), (v,))[1] for v in V])  # (probes, p, k)
    return dirs.pow(2).sum(1).mean(0).sqrt()


def _own_drift(sym, arch, theta, X, Xd, Y, c, kind, cfg) -> float:
    """Drift along the symmetry's own curve for the algebra element Σ c_k h_k."""
    return drift(arch, theta, Xd, Y, lambda th: sym.field(c, th, X), lambda ts: sym.orbit(c, theta, ts, X), kind, cfg)


def _random_drift(probe: Probe, arch, theta, X, Xd, Y, R, kind, cfg) -> float:
    """Drift along the comparator's curve for a random R ∈ gl(p) (‖R‖_F = 1)."""
    return drift(arch, theta, Xd, Y, lambda th: probe.random_field(R, th, X),
                 lambda ts: vmap(lambda t: probe.random_point(R, t, theta, X))(ts), kind, cfg)


def _lie(sym, theta, X, a, b, Xi):
    """[ξ_a, ξ_b](θ) = Dξ_b·ξ_a − Dξ_a·ξ_b."""
    e = torch.eye(sym.num_generators, dtype=theta.dtype, device=theta.device)
    field = lambda i: (lambda th: sym.field(e[i], th, X))
    return jvp(field(b), (theta,), (Xi[:, a],))[1] - jvp(field(a), (theta,), (Xi[:, b],))[1]
