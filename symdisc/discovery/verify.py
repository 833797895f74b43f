"""Honest verification of a learned symmetry on held-out draws, in float64.

Held-out (θ, X, Y) come from the stream SeedSequence([seed, 20, j]), never used in training.  For
each draw and learned field ξ_k(θ) = D_g a_X|_{I,θ}(h_k):

* invariance      r = |Ĵ_i · ξ̂_k| per sample (per-sample loss Jacobian; also the output Jacobian);
* curves          max_t |L(γ(t)) − L(θ)| along γ(t) = a_X(exp(t h), θ) and along the RK4 flow of ξ_h,
                  against random h ∈ gl(p) with ‖ξ_rand(θ)‖ matched, as the ratio of medians (fig. 6.6);
* identity        ‖a_X(I, θ) − θ‖/‖θ‖;   composition ‖a(g₂, a(g₁, θ)) − a(g₂g₁, θ)‖/‖a(g₂g₁, θ) − θ‖ at t;
* bracket         ‖[ξ_a, ξ_b] + ξ_{[h_a,h_b]}‖ / (‖[ξ_a, ξ_b]‖ + ‖ξ_{[h_a,h_b]}‖) and the distance of
                  [ξ_a, ξ_b] from span{ξ} (closure);
* data dependence ‖D_X ξ_k‖_F / ‖ξ_k‖;
* tangent space   each field's class (functional: keeps the outputs; loss-only; not invariant), its
                  share in the census null spaces ‖P_null ξ‖²/‖ξ‖², the principal angles between
                  span{ξ} and the null space / the known symmetries' span, and novelty
                  ρ = ‖(I − Π_known) ξ‖/‖ξ‖ (discovery.md §6 B9).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch
from torch.func import jacfwd, jvp, vmap

from symdisc.architecture import Architecture, make_generator
from symdisc.discovery.learned import LearnedSymmetry
from symdisc.jacobians import loss_jacobian, output_jacobian
from symdisc.linalg import DEFAULT_RTOL, null_basis, orth
from symdisc.symmetry.base import stacked_tangents
from symdisc.symmetry.known import continuous_symmetries

HELD_OUT_STREAM = 20
INVARIANT = 1e-3  # a field is invariant when its median relative residual is at most this


@dataclass(frozen=True)
class VerifyConfig:
    draws: int = 16
    seed: int = 0
    curve_points: int = 9
    curve_rel: float = 0.1  # curves move ‖θ‖·curve_rel along ξ at the ends
    flow_steps: int = 8
    composition_ts: tuple[float, ...] = (0.05, 0.1)
    rtol: float = DEFAULT_RTOL


def _med(xs) -> float:
    xs = [float(x) for x in xs]
    return float(statistics.median(xs)) if xs else float("nan")


def _cos2_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """cos² of the principal angles between span A and span B (orthonormal columns)."""
    if A.shape[1] == 0 or B.shape[1] == 0:
        return A.new_zeros(0)
    return torch.linalg.svdvals(A.T @ B).clamp(max=1.0).pow(2)


def _share(P: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    """‖P Pᵀ ξ‖²/‖ξ‖² per column."""
    return (P.T @ xi).pow(2).sum(0) / xi.pow(2).sum(0).clamp_min(1e-300)


def verify(sym: LearnedSymmetry, arch: Architecture, batch: int, cfg: VerifyConfig = VerifyConfig()) -> dict:
    """All metrics (JSON-able) plus a plain-language ``verdict``."""
    arch = arch.to(dtype=torch.float64, device="cpu")
    sym.gens.to(torch.float64)
    sym.action.to(torch.float64)
    k, p = sym.num_generators, arch.num_params
    gen = make_generator(cfg.seed, HELD_OUT_STREAM)
    thetas, Xs, Ys = arch.sample_draws(cfg.draws, batch, gen)
    known = continuous_symmetries(arch, None)
    rows: dict[str, list] = {key: [] for key in (
        "inv", "inv_out", "ident", "ddep", "null_out", "null_loss", "known_share", "cos2_null_out",
        "cos2_null_loss", "cos2_known", "null_dims_out", "null_dims_loss", "bracket", "closure")}
    comp: dict[float, list] = {t: [] for t in cfg.composition_ts}
    curve = {"orbit": ([], []), "flow": ([], [])}
    H = sym.gens.matrices().detach()
    with torch.no_grad():
        for j in range(cfg.draws):
            theta, X, Y = thetas[j], Xs[j], Ys[j]
            Xi = sym.tangents(theta, X)  # (p, k)
            xi_n = Xi.norm(dim=0).clamp_min(1e-300)
            Jl, Jo = loss_jacobian(arch, theta, X, Y), output_jacobian(arch, theta, X)
            rows["inv"].append((Jl @ Xi).abs() / (Jl.norm(dim=1, keepdim=True).clamp_min(1e-300) * xi_n))
            rows["inv_out"].append((Jo @ Xi).norm(dim=0) / (Jo.norm() * xi_n))
            zero = torch.zeros(k, dtype=theta.dtype)
            rows["ident"].append(((sym.act(zero, theta, X) - theta).norm() / theta.norm()).item())
            if sym.data_dependent:
                dX = jacfwd(lambda x, th=theta: sym.tangents(th, x))(X).reshape(p, k, -1)
                rows["ddep"].append(dX.norm(dim=(0, 2)) / xi_n)
            Nout, Nloss = null_basis(Jo, cfg.rtol), null_basis(Jl, cfg.rtol)
            rows["null_dims_out"].append(Nout.shape[1])
            rows["null_dims_loss"].append(Nloss.shape[1])
            rows["null_out"].append(_share(Nout, Xi))
            rows["null_loss"].append(_share(Nloss, Xi))
            span = orth(Xi)
            rows["cos2_null_out"].append(_cos2_angles(span, Nout))
            rows["cos2_null_loss"].append(_cos2_angles(span, Nloss))
            K = orth(stacked_tangents(known, theta))
            rows["known_share"].append(_share(K, Xi) if K.shape[1] else torch.zeros(k, dtype=theta.dtype))
            rows["cos2_known"].append(_cos2_angles(span, K))
            for t in cfg.composition_ts:
                c1, c2 = (t * torch.randn(k, generator=gen, dtype=theta.dtype) / math.sqrt(k) for _ in range(2))
                both = sym.act(torch.stack([c1, c2]), theta, X)
                err = (sym.act(c2, sym.act(c1, theta, X), X) - both).norm() / (both - theta).norm().clamp_min(1e-300)
                comp[t].append(err.item())
            if k >= 2:
                b, c = torch.randperm(k, generator=gen)[:2].tolist()
                rows["bracket"].append(_bracket(sym, theta, X, b, c, H, Xi))
                lie = _lie(sym, theta, X, b, c, Xi)
                resid = lie - span @ (span.T @ lie)
                scale = _bracket_scale(Xi, b, c, theta)
                rows["closure"].append((resid.norm() / (lie.norm() + scale)).item())
            for kind, (learned, rand) in curve.items():
                for e in torch.eye(k, dtype=theta.dtype):
                    learned.append(_drift(sym, arch, theta, X, Y, e, None, kind, cfg))
                    R = torch.randn(p, p, generator=gen, dtype=theta.dtype)
                    rand.append(_drift(sym, arch, theta, X, Y, None, R / R.norm(), kind, cfg))
    return _summarise(sym, arch, batch, cfg, rows, comp, curve)


def _field_of(sym, theta, X, c=None, M=None):
    """ξ at θ for coefficients c (learned generators) or for an arbitrary algebra element M (p×p)."""
    if M is None:
        return sym.field(c, theta, X)
    return sym.algebra_field(M @ theta, M.reshape(-1), theta, X)


def _act_along(sym, theta, X, t, c=None, M=None):
    """a_X(exp(t h), θ) for h = Σ c_k h_k or h = M (an arbitrary element, through the encoding)."""
    if M is None:
        return sym.act(t * c, theta, X)
    g = torch.linalg.matrix_exp(t * M)
    if sym.action.cfg.encoding == "matrix":
        enc = (g - torch.eye(M.shape[0], dtype=M.dtype)).reshape(-1)
    else:
        enc = g @ theta - theta
    xflat = sym._xflat(X, theta)
    return sym._run_action(enc, g @ theta - theta, theta, xflat)


def _drift(sym, arch, theta, X, Y, c, M, kind, cfg):
    """max_t |L(γ(t)) − L(θ)| with the curve scaled so that ‖ξ‖·t_max = curve_rel·‖θ‖."""
    xi = _field_of(sym, theta, X, c, M)
    t_max = cfg.curve_rel * theta.norm() / xi.norm().clamp_min(1e-300)
    L0 = arch.batch_loss(theta, X, Y)
    ts = torch.linspace(-1, 1, cfg.curve_points, dtype=theta.dtype) * t_max
    if kind == "orbit":
        pts = vmap(lambda t: _act_along(sym, theta, X, t, c, M))(ts)
    else:
        pts = vmap(lambda t: _flow(sym, theta, X, t, c, M, cfg.flow_steps))(ts)
    return (vmap(lambda q: arch.batch_loss(q, X, Y))(pts) - L0).abs().max().item()


def _flow(sym, theta, X, t, c, M, steps):
    """RK4 integration of θ' = ξ_h(θ) from 0 to t."""
    h, y = t / steps, theta
    f = lambda z: _field_of(sym, z, X, c, M)
    for _ in range(steps):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def _lie(sym, theta, X, a, b, Xi):
    """[ξ_a, ξ_b](θ) = Dξ_b·ξ_a − Dξ_a·ξ_b."""
    k = sym.num_generators
    e = torch.eye(k, dtype=theta.dtype)
    field = lambda i: (lambda th: sym.field(e[i], th, X))
    return jvp(field(b), (theta,), (Xi[:, a],))[1] - jvp(field(a), (theta,), (Xi[:, b],))[1]


def _bracket_scale(Xi, a, b, theta) -> torch.Tensor:
    """‖ξ_a‖‖ξ_b‖/‖θ‖: the size a bracket of two such fields has when it is not zero (so that the
    residuals of commuting fields, where both sides vanish, read 0 and not noise/noise)."""
    return Xi[:, a].norm() * Xi[:, b].norm() / theta.norm().clamp_min(1e-300)


def _bracket(sym, theta, X, a, b, H, Xi) -> float:
    lie = _lie(sym, theta, X, a, b, Xi)
    M = (H[a] @ H[b] - H[b] @ H[a]).to(theta)
    xi_m = sym.algebra_field(M @ theta, M.reshape(-1), theta, X)
    return ((lie + xi_m).norm() / (lie.norm() + xi_m.norm() + _bracket_scale(Xi, a, b, theta))).item()


def _summarise(sym, arch, batch, cfg, rows, comp, curve) -> dict:
    k = sym.num_generators
    inv = torch.stack(rows["inv"])  # (draws, B, k)
    inv_out = torch.stack(rows["inv_out"])  # (draws, k)
    null_out, null_loss = torch.stack(rows["null_out"]), torch.stack(rows["null_loss"])
    known_share = torch.stack(rows["known_share"])
    fields = []
    for i in range(k):
        r_loss, r_out = inv[:, :, i].median().item(), inv_out[:, i].median().item()
        cls = "functional" if r_out <= INVARIANT else ("loss-only" if r_loss <= INVARIANT else "not invariant")
        fields.append({
            "index": i, "invariance_median": r_loss, "output_residual_median": r_out, "class": cls,
            "null_share_output": null_out[:, i].median().item(), "null_share_loss": null_loss[:, i].median().item(),
            "known_share": known_share[:, i].median().item(),
            "novelty": math.sqrt(max(0.0, 1.0 - known_share[:, i].median().item())),
            "data_dependence": torch.stack(rows["ddep"])[:, i].median().item() if rows["ddep"] else 0.0,
        })
    ratio = {}
    for kind, (learned, rand) in curve.items():
        ml, mr = _med(learned), _med(rand)
        ratio[kind] = {"learned_median": ml, "random_median": mr, "ratio": ml / mr if mr > 0 else None}
    mean_cos2 = lambda key: _med([c.mean().item() for c in rows[key] if c.numel()]) if any(
        c.numel() for c in rows[key]) else None
    null_out_dim, null_loss_dim = int(statistics.median_low(rows["null_dims_out"])), int(
        statistics.median_low(rows["null_dims_loss"]))
    counts = {c: sum(f["class"] == c for f in fields) for c in ("functional", "loss-only", "not invariant")}
    in_known = sum(f["known_share"] >= 0.99 for f in fields)
    report = {
        "batch_size": batch, "draws": cfg.draws, "seed": cfg.seed, "held_out_stream": HELD_OUT_STREAM,
        "num_generators": k, "num_params": arch.num_params,
        "invariance": {"median": inv.median().item(), "p90": inv.flatten().quantile(0.9).item(),
                       "output_median": inv_out.median().item()},
        "curves": ratio,
        "identity_error_median": _med(rows["ident"]),
        "composition_error_median": {str(t): _med(v) for t, v in comp.items()},
        "bracket_residual_median": _med(rows["bracket"]) if rows["bracket"] else None,
        "closure_residual_median": _med(rows["closure"]) if rows["closure"] else None,
        "data_dependence_median": _med([f["data_dependence"] for f in fields]),
        "census": {"output_null_dim": null_out_dim, "loss_null_dim": null_loss_dim},
        "known_orbit_dim": int(statistics.median_low([int((c > 1e-12).sum()) for c in rows["cos2_known"]]))
        if any(c.numel() for c in rows["cos2_known"]) else 0,
        "principal_angles_mean_cos2": {"output_null": mean_cos2("cos2_null_out"),
                                       "loss_null": mean_cos2("cos2_null_loss"), "known": mean_cos2("cos2_known")},
        "fields": fields,
        "counts": {**counts, "in_known_span": in_known, "outside_known_span": k - in_known},
    }
    report["verdict"] = _verdict(report)
    return report


def _verdict(r: dict) -> str:
    c, k, B = r["counts"], r["num_generators"], r["batch_size"]
    if r["census"]["loss_null_dim"] == 0 and r["census"]["output_null_dim"] == 0:
        return (f"no symmetry found: at batch size {B} the census null dimension is 0 (outputs and per-sample "
                f"losses), so no continuous symmetry exists there; the {k} learned fields are not symmetries "
                f"(median invariance residual {r['invariance']['median']:.2g})")
    invariant = c["functional"] + c["loss-only"]
    if invariant == 0:
        return (f"no symmetry found: none of the {k} learned fields is invariant on held-out data at batch size {B} "
                f"(median residual {r['invariance']['median']:.2g} > {INVARIANT}), although the census shows "
                f"{r['census']['loss_null_dim']} loss-level null directions there: symmetries exist that this "
                f"training did not reach")
    return (f"{invariant} of {k} learned fields are invariant on held-out data at batch size {B}: "
            f"{c['functional']} functional (keep the outputs), {c['loss-only']} loss-only; "
            f"{c['in_known_span']} lie in the known symmetries' span, {c['outside_known_span']} outside it "
            f"(census null dimension: outputs {r['census']['output_null_dim']}, losses {r['census']['loss_null_dim']})")
