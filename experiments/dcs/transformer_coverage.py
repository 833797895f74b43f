"""DCS slot C: the symmetry-coverage map on the tiny transformer (reference dcs.md §9 design 2, its worked target
"the Part B tiny transformer", predictions (i)–(ii); §4.2 double rotation; §7 E6): weight decay alone gives
structure where a native mirror exists, DCS has to add it where none does.

Architecture: the zoo's ``tiny-transformer`` (dissertation §6.5.5: one head, Attn = softmax(Q Kᵀ/√d) V, linear FFN
f = (X + Attn) W_1 W_2, residual, no W_O), built wider than the registered d = 2 model so that ranks can be read:
``d_model`` = 8, ``d_ff`` = 16, ``seq_len`` = 6 (p = 448).

Task (synthetic teacher–student regression in the spirit of E6, whose weight decays and targets the paper does not
give): X from the architecture's own sampler (tokens ~ N(0, I_d)), Y = f_θ*(X) + ``noise``·ε, θ* drawn once per
seed: W_Q*, W_K* of rank ``teacher_qk_rank`` scaled so that ‖W_Q* W_K*ᵀ‖_F = ``logit_scale``·√d (attention
logits of std ≈ ``logit_scale``); W_V* Gaussian times a Bernoulli(``teacher_wv_density``) mask (a sparse block —
the structure DCS should find where no mirror gives it); W_1* of rank ``teacher_ff_rank`` and W_2* Gaussian,
scaled so that ‖W_1* W_2*‖_F = √d.  ``n_train`` training sequences, ``n_test`` test sequences (test loss against
the noise-free teacher).

Training: full-batch gradient descent with heavy-ball momentum (torch.optim.SGD, ``momentum``, ``lr``, ``steps``),
float64, from one student init θ₀ per seed (the architecture's fan-in sampler).  Not Adam (E6 uses Adam): the
quantities measured are exact zeros (|θ| < ``zero_tol``) and numerical ranks (σ > ``rank_rtol``·σ_max and
> ``rank_atol``); Adam normalises each coordinate's step, so a coordinate headed for 0 keeps moving at the scale
of lr around it, and it is not rotation-equivariant, while the double-rotation mirror argument for W_Q, W_K is a
statement about the loss and GD.  GD's deterministic flow reaches the absorbing states exponentially; momentum
keeps GD's fixed points and needs ~10× fewer steps.  Entries below 1e-200 (and momentum buffers) are flushed to 0
every 100 steps.

Runs (per seed, all from θ₀):

* (i) weight decay only, γ ∈ ``gammas``: L + γ Σ_B ‖θ_B‖² on every block.
* (ii) γ = ``dcs_gamma`` on the blocks the coverage map says are covered for sparsity, and Hadamard DCS
  (``Sparse``, T = w ⊙ u) on each block ``coverage_map(...).uncovered("sparse")`` returns, penalty α‖(w, u)‖²
  (≡ 2α‖θ_B‖₁, dcs.md D4) instead of weight decay, α ∈ ``alphas``.  The baseline of (ii) is the run of (i) at
  γ = ``dcs_gamma``.  α = 0 (that block unregularised, T = w ⊙ u free) is not in the default sweep: with no
  penalty to balance w and u, lr = 0.1 sits at the edge of stability there (a run was seen to diverge within 12
  steps, depending on floating-point summation order).

All runs of a seed are trained as one batch: ``Stacked`` holds every run's θ on a leading run axis (the
architecture's own forward and loss, vmapped over it), the DCS blocks are one ``Sparse`` handle whose
mask selects the DCS runs' entries of the stacked tensor, and the objective is the sum over runs of each run's own
objective.  The sum separates, so each run follows exactly its own GD (tests/test_dcs_coverage_experiment.py
checks one run against ArchitectureModule + DCS + DCSOptimizer).  DCS's α is one number per handle, so the
per-run α_r‖z_r‖² is added to the objective here and the inner optimizer is used directly.

(iii) Coverage (``symdisc.dcs.coverage_map``): of the known symmetries on ``coverage_d_model``/``coverage_d_ff``
(the decision; mirror extraction is dense in p: at d = 8, d_ff = 16 it took 264 s per seed with reduced options
(ffn-GL(16) alone 228 s) and failed in LAPACK with the defaults, so the decision — structural: which block a mirror
touches — is taken on the smaller member and applied to the training architecture by block name), of the
known symmetries on the registered d = 2 model, and of the learned artefact ``artefact`` on it (its card's
architecture), at the library's rank tolerance and at ``learned_rank_rtol`` (a learned field's leakage onto W_V is
~1e-4 of σ_max, which the default 1e-6 counts).

Measured per run: numerical ranks of W_Q, W_K, W_Q W_Kᵀ and W_1 W_2, their normalised singular values, the zero
fraction of every block, the agreement of W_V's zeros with the teacher's, train / test loss and the objective's
relative change over the last 10 % of steps (convergence).  Random draws: teacher ``make_generator(seed, 0)``,
training data (seed, 1), test data (seed, 2), student init (seed, 3); coverage maps draw with ``seed``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from experiments.registry import ROOT, Runner
from symdisc import make_generator
from symdisc.dcs import DCS, Sparse, accepted_mirrors, coverage_map, extract_mirrors
from symdisc.dcs.coverage import CONSTRAINTS
from symdisc.errors import InputError
from symdisc.plotting import plt, save_figure, sns
from symdisc.zoo import registry

BLOCKS = ("W_Q", "W_K", "W_V", "W_1", "W_2")
RANKS = {"W_Q": "W_Q", "W_K": "W_K", "QK": "W_Q W_Kᵀ", "FF": "W_1 W_2"}
KIND_LETTER = {"rotation": "R", "rescaling": "F", "permutation": "S", "product": "P", "discrete": "D"}
FLUSH = 1e-200


# ---------------------------------------------------------------------------------------------------------------
# architecture, teacher, data


def build(d_model: int, d_ff: int, seq_len: int | None = None):
    return registry.get("tiny-transformer", d_model=d_model, d_ff=d_ff, seq_len=seq_len).to(dtype=torch.float64)


def teacher(arch, config: dict, seed: int) -> dict[str, torch.Tensor]:
    """θ* (module docstring), float64, from ``make_generator(seed, 0)``."""
    g = make_generator(seed, 0)
    d, dff = config["d_model"], config["d_ff"]
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    low = lambda m, k, r: randn(m, r) @ randn(r, k) / math.sqrt(r)  # noqa: E731
    Wq, Wk = low(d, d, config["teacher_qk_rank"]), low(d, d, config["teacher_qk_rank"])
    s = math.sqrt(config["logit_scale"] * math.sqrt(d) / float((Wq @ Wk.T).norm()))
    mask = torch.rand(d, d, generator=g, dtype=torch.float64) < config["teacher_wv_density"]
    Wv = randn(d, d) * mask
    W1, W2 = low(d, dff, config["teacher_ff_rank"]), randn(dff, d)
    t = math.sqrt(math.sqrt(d) / float((W1 @ W2).norm()))
    return {"W_Q": Wq * s, "W_K": Wk * s, "W_V": Wv, "W_1": W1 * t, "W_2": W2 * t}


def data(arch, star: dict, n: int, seed: int, stream: int, noise: float):
    """(X, noisy Y, noise-free f_θ*(X)) with X from the architecture's sampler."""
    g = make_generator(seed, stream)
    X = arch.sample_data(n, g)[0]
    with torch.no_grad():
        F = arch.forward_named(star, X)
    return X, F + noise * torch.randn(F.shape, generator=g, dtype=F.dtype), F


# ---------------------------------------------------------------------------------------------------------------
# batched training


class Stacked(nn.Module):
    """R independent copies of an architecture's θ, each layout tensor a parameter of shape (R, *shape);
    ``losses`` is each run's mean loss on (X, Y), shape (R,): the architecture's own forward and loss, vmapped over
    the run axis (a broadcast forward does R·B tiny matrix products and is ~2× slower)."""

    def __init__(self, arch, thetas: torch.Tensor):
        super().__init__()
        self.arch, self.runs = arch, thetas.shape[0]
        for name, shape in zip(arch.layout.names, arch.layout.shapes, strict=True):
            value = thetas[:, arch.layout.slice(name)].reshape(self.runs, *shape)
            setattr(self, name, nn.Parameter(value.detach().clone()))
        self._loss = torch.vmap(lambda p, X, Y: arch.loss(arch.forward_named(p, X), Y).mean(), in_dims=(0, None, None))

    def named_theta(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self.arch.layout.names}

    def losses(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self._loss(self.named_theta(), X, Y)


def sq_norms(t: torch.Tensor) -> torch.Tensor:
    return t.pow(2).reshape(t.shape[0], -1).sum(1)


def flush(tensors) -> None:
    for t in tensors:
        t.masked_fill_(t.abs() < FLUSH, 0.0)


def train_stacked(arch, theta0: torch.Tensor, runs: list[dict], dcs_blocks: list[str], X, Y, config: dict):
    """Every run of ``runs`` ({"gamma", "alpha" (None: weight decay only)}) from θ₀, as one batch (module docstring).
    Returns (the trained θ per block, shape (R, *shape)), objective per run at the end and at 90 % of the steps)."""
    R = len(runs)
    net = Stacked(arch, theta0.expand(R, -1))
    is_dcs = torch.tensor([r["alpha"] is not None for r in runs])
    gamma = torch.tensor([r["gamma"] for r in runs], dtype=torch.float64)
    alpha = torch.tensor([r["alpha"] for r in runs if r["alpha"] is not None], dtype=torch.float64)
    dcs = None
    if bool(is_dcs.any()) and dcs_blocks:
        size = {n: math.prod(s) for n, s in zip(arch.layout.names, arch.layout.shapes, strict=True)}
        dcs = DCS(net, {n: Sparse(R * size[n], is_dcs.repeat_interleave(size[n])) for n in dcs_blocks}, 0.0)
    latents = [(b.latents()["w"], b.latents()["u"]) for b in dcs.blocks] if dcs else []
    opt = torch.optim.SGD(net.parameters(), lr=config["lr"], momentum=config["momentum"])

    def objective() -> torch.Tensor:
        theta = net.named_theta()
        total = net.losses(X, Y)
        for name, value in theta.items():
            g = torch.where(is_dcs, 0.0, gamma) if name in dcs_blocks else gamma
            total = total + g * sq_norms(value)
        for w, u in latents:
            total = total.index_add(0, torch.nonzero(is_dcs).flatten(),
                                    alpha * (sq_norms(w.reshape(len(alpha), -1)) + sq_norms(u.reshape(len(alpha), -1))))
        return total

    late = None
    for step in range(config["steps"]):
        opt.zero_grad()
        per_run = objective()
        if not bool(torch.isfinite(per_run).all()):
            raise FloatingPointError(f"the objective became non-finite at step {step}: lower lr")
        per_run.sum().backward()
        opt.step()
        if step % 100 == 99:
            with torch.no_grad():
                flush(net.parameters())
                flush(s["momentum_buffer"] for s in opt.state.values() if s.get("momentum_buffer") is not None)
        if step == (9 * config["steps"]) // 10:
            late = per_run.detach()
    with torch.no_grad():
        final = objective()
        theta = {n: t.detach().clone() for n, t in net.named_theta().items()}
    return theta, final, late if late is not None else final


# ---------------------------------------------------------------------------------------------------------------
# measurements


def rank_of(M: torch.Tensor, rtol: float, atol: float) -> int:
    """σ_k > max(rtol·σ_max, atol): the absolute floor keeps a matrix decayed to ~0 from counting its noise."""
    s = torch.linalg.svdvals(M)
    return int((s > max(rtol * float(s[0]), atol)).sum()) if s.numel() else 0


def normalised_spectrum(M: torch.Tensor) -> list[float]:
    s = torch.linalg.svdvals(M)
    return (s / s[0]).tolist() if float(s[0]) > 0 else s.tolist()


def measure(theta: dict, r: int, star: dict, X, Y, Xt, Ft, arch, config: dict) -> dict:
    """The per-run record (module docstring) of run ``r``."""
    t = {n: v[r] for n, v in theta.items()}
    mats = {"W_Q": t["W_Q"], "W_K": t["W_K"], "QK": t["W_Q"] @ t["W_K"].T, "FF": t["W_1"] @ t["W_2"]}
    tol = config["zero_tol"]
    zero_v, star_zero = t["W_V"].abs() < tol, star["W_V"] == 0
    with torch.no_grad():
        train = float(arch.batch_loss(torch.cat([t[n].reshape(-1) for n in arch.layout.names]), X, Y))
        test = float(arch.loss(arch.forward_named(t, Xt), Ft).mean())
    return {"rank": {k: rank_of(m, config["rank_rtol"], config["rank_atol"]) for k, m in mats.items()},
            "spectrum": {k: normalised_spectrum(m) for k, m in mats.items()},
            "zero_fraction": {n: float((t[n].abs() < tol).double().mean()) for n in arch.layout.names},
            "norm": {n: float(t[n].norm()) for n in arch.layout.names},
            "wv_zero_precision": float((zero_v & star_zero).sum() / zero_v.sum()) if zero_v.any() else None,
            "wv_zero_recall": float((zero_v & star_zero).sum() / star_zero.sum()) if star_zero.any() else None,
            "train_loss": train, "test_loss": test}


# ---------------------------------------------------------------------------------------------------------------
# coverage


def _table(cov) -> dict:
    return {"blocks": {b: {"size": i["size"], "rank": i["rank"], "fraction": i["fraction"],
                           "mirror_kinds": i["mirror_kinds"], "mirrors": i["mirrors"], "native": i["native"]}
                       for b, i in cov.blocks.items()},
            "uncovered": {c: cov.uncovered(c) for c in CONSTRAINTS},
            "decide_sparse": {b: v["action"] for b, v in cov.decide("sparse").items()},
            "mirror_count": len(cov.mirrors)}


def _artefact_path(config: dict) -> Path:
    path = Path(config["artefact"])
    return path if path.is_absolute() else ROOT / path


def known_coverage(arch, config: dict, seed: int) -> dict:
    """coverage_map of the known symmetries, the mirrors extracted per symmetry: when LAPACK fails inside the
    antisymmetric (rotation) search (torch's eigvals / svd on a matrix with many repeated eigenvalues: seen at
    d = 4, d_ff = 8, seed 0, and it depends on memory layout), that symmetry is extracted again with
    ``max_active`` = 0 (no rotation candidates; flips and swaps are kept), and the fallback is recorded."""
    options = {"draws": config["coverage_draws"], "max_products": config["coverage_max_products"]}
    reports, fallbacks = [], []
    for s in arch.known_symmetries():
        try:
            reports.append(extract_mirrors(s, arch, seed=seed, max_active=config["coverage_max_active"], **options))
        except torch.linalg.LinAlgError as e:
            fallbacks.append({"symmetry": s.name, "error": str(e)[:100]})
            reports.append(extract_mirrors(s, arch, seed=seed, max_active=0, **options))
    cov = coverage_map(arch, arch.known_symmetries(), accepted_mirrors(reports), seed=seed)
    return {"architecture": arch.spec, **_table(cov), "fallbacks": fallbacks}


def coverage(config: dict, seed: int) -> dict:
    """(iii): the coverage tables (module docstring); ``decision`` drives (ii)."""
    out = {"decision": known_coverage(build(config["coverage_d_model"], config["coverage_d_ff"]), config, seed)}
    reg = registry.get("tiny-transformer")
    if (config["coverage_d_model"], config["coverage_d_ff"]) == (reg.spec["d_model"], reg.spec["d_ff"]):
        out["registered_known"] = out["decision"]
    else:
        out["registered_known"] = known_coverage(reg, config, seed)
    if config["artefact"]:
        from symdisc.discovery.artefact import load, read_card

        path = _artefact_path(config)
        spec = dict(read_card(path)["architecture"]["spec"])
        arch_l = registry.get(spec.pop("preset"), **spec)
        with warnings.catch_warnings():  # fields="all": unverified fields are used on purpose (all of them)
            warnings.simplefilter("ignore")
            sym = load(path, arch=arch_l, fields="all")
        learned = coverage_map(arch_l, [sym], seed=seed, draws=config["coverage_draws"],
                               max_products=config["coverage_max_products"], max_active=config["coverage_max_active"])
        out["registered_learned"] = {"architecture": arch_l.spec, "artefact": config["artefact"], **_table(learned)}
        loose = coverage_map(arch_l, [sym], mirrors=learned.mirrors, seed=seed, rank_rtol=config["learned_rank_rtol"])
        out["registered_learned_loose"] = {"architecture": arch_l.spec, "artefact": config["artefact"],
                                           "rank_rtol": config["learned_rank_rtol"], **_table(loose)}
    return out


# ---------------------------------------------------------------------------------------------------------------
# the runner


def check(config: dict) -> None:
    if config["dcs_gamma"] not in config["gammas"]:
        raise InputError(f"dcs_gamma = {config['dcs_gamma']} must be one of gammas (the baseline of (ii))")
    if any(a < 0 for a in config["alphas"]) or any(g < 0 for g in config["gammas"]):
        raise InputError("alphas and gammas must be ≥ 0")


def run(config: dict, seed: int) -> dict:
    check(config)
    cov = coverage(config, seed)
    arch = build(config["d_model"], config["d_ff"], config["seq_len"])
    dcs_blocks = cov["decision"]["uncovered"]["sparse"]
    missing = [b for b in dcs_blocks if b not in arch.layout.names]
    if missing:
        raise InputError(f"the coverage decision names blocks the training architecture lacks: {missing}")
    star = teacher(arch, config, seed)
    X, Y, _ = data(arch, star, config["n_train"], seed, 1, config["noise"])
    Xt, _, Ft = data(arch, star, config["n_test"], seed, 2, config["noise"])
    theta0 = arch.sample_params(make_generator(seed, 3))
    runs = ([{"group": "wd", "gamma": g, "alpha": None} for g in config["gammas"]]
            + [{"group": "dcs", "gamma": config["dcs_gamma"], "alpha": a} for a in config["alphas"]])
    theta, final, late = train_stacked(arch, theta0, runs, dcs_blocks, X, Y, config)
    records = []
    for r, spec in enumerate(runs):
        rec = measure(theta, r, star, X, Y, Xt, Ft, arch, config)
        rec["objective"] = float(final[r])
        rec["objective_late_change"] = float(abs(late[r] - final[r]) / max(abs(float(final[r])), 1e-300))
        records.append({**spec, **rec})
    teacher_info = {"rank": {"QK": rank_of(star["W_Q"] @ star["W_K"].T, config["rank_rtol"], config["rank_atol"]),
                             "FF": rank_of(star["W_1"] @ star["W_2"], config["rank_rtol"], config["rank_atol"])},
                    "wv_zero_fraction": float((star["W_V"] == 0).double().mean()),
                    "noise_variance": config["noise"] ** 2, "signal_variance": float(Ft.var())}
    return {"coverage": cov, "dcs_blocks": dcs_blocks, "teacher": teacher_info, "runs": records}


def nonincreasing(values) -> bool:
    return all(b <= a for a, b in zip(values, values[1:], strict=False))


def nondecreasing(values) -> bool:
    return all(b >= a for a, b in zip(values, values[1:], strict=False))


def _stats(values: list) -> dict:
    v = [x for x in values if x is not None]
    return {"mean": float(np.mean(v)), "min": float(min(v)), "max": float(max(v))} if v else {}


def summarize(results: list[dict], config: dict) -> dict:
    dcs_blocks = results[0]["dcs_blocks"]
    wd = [[r for r in res["runs"] if r["group"] == "wd"] for res in results]
    dc = [[r for r in res["runs"] if r["group"] == "dcs"] for res in results]
    base = [next(r for r in runs if r["gamma"] == config["dcs_gamma"]) for runs in wd]

    def rows(groups, key, values):
        out = []
        for i, v in enumerate(values):
            per = [runs[i] for runs in groups]
            out.append({key: v, **{f"rank_{k}": _stats([p["rank"][k] for p in per]) for k in RANKS},
                        "qk_ranks_equal_seeds": sum(p["rank"]["W_Q"] == p["rank"]["W_K"] for p in per),
                        **{f"zero_{b}": _stats([p["zero_fraction"][b] for p in per]) for b in BLOCKS},
                        "wv_zero_precision": _stats([p["wv_zero_precision"] for p in per]),
                        "wv_zero_recall": _stats([p["wv_zero_recall"] for p in per]),
                        "train_loss": _stats([p["train_loss"] for p in per]),
                        "test_loss": _stats([p["test_loss"] for p in per]),
                        "objective_late_change_max": max(p["objective_late_change"] for p in per)})
        return out

    sig = lambda p: tuple(p["rank"][k] for k in RANKS)  # noqa: E731
    unchanged = [(b, p) for b, runs in zip(base, dc, strict=True) for p in runs]
    changed = sorted({(p["alpha"], k) for b, p in unchanged for k in RANKS if b["rank"][k] != p["rank"][k]})
    all_wd = [p for runs in wd for p in runs]
    uncovered = {src: sorted({tuple(res["coverage"][src]["uncovered"]["sparse"]) for res in results})
                 for src in results[0]["coverage"]}
    return {
        "seeds": len(results),
        "teacher": {"rank_QK": results[0]["teacher"]["rank"]["QK"], "rank_FF": results[0]["teacher"]["rank"]["FF"],
                    "wv_zero_fraction": _stats([res["teacher"]["wv_zero_fraction"] for res in results])},
        "dcs_blocks": dcs_blocks,
        "weight_decay": rows(wd, "gamma", config["gammas"]),
        "dcs": rows(dc, "alpha", config["alphas"]),
        "predictions": {
            "i_qk_rank_nonincreasing_in_gamma": all(nonincreasing([p["rank"][k] for p in runs])
                                                    for runs in wd for k in ("W_Q", "W_K")),
            "i_qk_ranks_equal_runs": sum(p["rank"]["W_Q"] == p["rank"]["W_K"] for p in all_wd),
            "i_qk_rank_equals_product_rank_runs": sum(p["rank"]["W_Q"] == p["rank"]["W_K"] == p["rank"]["QK"]
                                                      for p in all_wd),
            "i_runs": len(all_wd),
            "i_ff_rank_nonincreasing_in_gamma": all(nonincreasing([p["rank"]["FF"] for p in runs]) for runs in wd),
            "i_wv_max_zero_fraction": max(p["zero_fraction"]["W_V"] for p in all_wd),
            "ii_zero_fraction_nondecreasing_in_alpha": {
                b: all(nondecreasing([p["zero_fraction"][b] for p in runs]) for runs in dc) for b in dcs_blocks},
            "ii_baseline_zero_fraction": {b: _stats([p["zero_fraction"][b] for p in base]) for b in dcs_blocks},
            "ii_ranks_unchanged_runs": sum(sig(b) == sig(p) for b, p in unchanged),
            "ii_runs": len(unchanged),
            "ii_rank_changes": [{"alpha": a, "rank": k} for a, k in changed],
            "ii_max_abs_rank_change": [{"alpha": a, **{k: max(abs(b["rank"][k] - p["rank"][k]) for b, p in unchanged
                                                           if p["alpha"] == a) for k in RANKS}}
                                       for a in config["alphas"]],
            "iii_uncovered_sparse": uncovered,
            "iii_learned_minus_known_rank": {
                src: {b: sorted({res["coverage"][src]["blocks"][b]["rank"]
                                 - res["coverage"]["registered_known"]["blocks"][b]["rank"] for res in results})
                      for b in BLOCKS}
                for src in ("registered_learned", "registered_learned_loose") if src in results[0]["coverage"]},
            "max_objective_late_change": max(p["objective_late_change"] for res in results for p in res["runs"]),
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# figure


def _x(values: list[float], floor: float) -> list[float]:
    """0 drawn at ``floor`` on a log axis."""
    return [v if v > 0 else floor for v in values]


def _floor(values: list[float]) -> float:
    pos = [v for v in values if v > 0]
    return min(pos) / 3 if pos else 1e-4


def _zero_ticks(ax, values: list[float], floor: float) -> None:
    ticks = sorted(set(_x(values, floor)))
    ax.set_xticks(ticks, ["0" if t == floor else f"{t:g}" for t in ticks], fontsize=8)
    ax.minorticks_off()


COLUMNS = (("decision", "known, d = {d}\n(decision)"), ("registered_known", "known, d = {d}"),
           ("registered_learned", "learned artefact, d = {d}\nrank rtol 1e-6"),
           ("registered_learned_loose", "learned artefact, d = {d}\nrank rtol {rtol:g}"))


def _coverage_panel(ax, cov: dict, config: dict) -> None:
    cols = [(k, lab.format(d=cov[k]["architecture"]["d_model"], rtol=config["learned_rank_rtol"])
             + "".join(f"\n{f['symmetry']}: no rotation search (LAPACK failed)" for f in cov[k].get("fallbacks", [])))
            for k, lab in COLUMNS if k in cov]
    grid = np.array([[cov[k]["blocks"][b]["fraction"] for k, _ in cols] for b in BLOCKS])
    sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="Blues", cbar_kws={"label": "coverage fraction c_B"},
                xticklabels=[lab for _, lab in cols], yticklabels=list(BLOCKS), annot=False, linewidths=0.5)
    for j, (k, _) in enumerate(cols):
        for i, b in enumerate(BLOCKS):
            info = cov[k]["blocks"][b]
            kinds = "".join(v for k, v in KIND_LETTER.items() if k in info["mirror_kinds"]) or "no mirror"
            action = "DCS" if b in cov[k]["uncovered"]["sparse"] else "decay"
            ax.text(j + 0.5, i + 0.5, f"{info['fraction']:.2f} ({info['rank']}/{info['size']})\n{kinds}\n→ {action}",
                    ha="center", va="center", fontsize=8, color="white" if info["fraction"] > 0.6 else "black")
    ax.tick_params(axis="x", labelsize=8)
    ax.tick_params(axis="y", rotation=0)
    ax.set_title("(d) Coverage map (seed 0): c_B = rank(Π_B Ξ)/|B| (rank/|B|), verified mirror kinds (R rotation, "
                 "F rescaling flip, S swap, P product), and the sparsity decision", fontsize=9)


def figure(document: dict, path: Path) -> None:
    cfg, s, results = document["config"], document["summary"], document["results"]
    sns.set_theme(style="whitegrid")
    fig = plt.figure(figsize=(16, 10.5))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.05])
    axes = [fig.add_subplot(grid[0, j]) for j in range(3)]
    pal = dict(zip(RANKS, sns.color_palette("colorblind", len(RANKS)), strict=True))
    marks = {"W_Q": "o", "W_K": "s", "QK": "^", "FF": "D"}
    gam, floor_g = cfg["gammas"], _floor(cfg["gammas"])
    ax = axes[0]
    for k, lab in RANKS.items():
        ax.plot(_x(gam, floor_g), [row[f"rank_{k}"]["mean"] for row in s["weight_decay"]], marker=marks[k],
                color=pal[k], label=lab, lw=1.8, ms=6, alpha=0.9)
        for res in results:
            wd = [r for r in res["runs"] if r["group"] == "wd"]
            ax.plot(_x(gam, floor_g), [r["rank"][k] for r in wd], ls="none", marker=marks[k], color=pal[k], ms=3,
                    alpha=0.35)
    t = s["teacher"]
    ax.axhline(t["rank_QK"], color=pal["QK"], ls=":", lw=1.2, label=f"teacher rank W_Q*W_K*ᵀ = {t['rank_QK']}")
    ax.axhline(t["rank_FF"], color=pal["FF"], ls=":", lw=1.2, label=f"teacher rank W_1*W_2* = {t['rank_FF']}")
    ax.set_xscale("log")
    _zero_ticks(ax, gam, floor_g)
    ax.set_xlabel("weight decay γ (all blocks)")
    ax.set_ylabel(f"numerical rank (σ > {cfg['rank_rtol']:g}·σ_max)")
    p = s["predictions"]
    ax.set_title(f"(a) Weight decay only: W_Q, W_K ranks equal in {p['i_qk_ranks_equal_runs']}/{p['i_runs']} runs;\n"
                 f"W_V zero fraction ≤ {p['i_wv_max_zero_fraction']:.3f} (mean over {s['seeds']} seeds, dots: seeds)",
                 fontsize=9)
    ax.legend(fontsize=7.5, loc="upper right")
    al, floor_a = cfg["alphas"], _floor(cfg["alphas"])
    ax = axes[1]
    blocks = s["dcs_blocks"]
    for b in blocks:
        ax.plot(_x(al, floor_a), [row[f"zero_{b}"]["mean"] for row in s["dcs"]], "o-", lw=2, label=f"{b}, DCS")
        for res in results:
            dc = [r for r in res["runs"] if r["group"] == "dcs"]
            ax.plot(_x(al, floor_a), [r["zero_fraction"][b] for r in dc], "o", color="grey", ms=3, alpha=0.4)
        ax.axhline(p["ii_baseline_zero_fraction"][b]["mean"], color="k", ls="--", lw=1.2,
                   label=f"{b}, weight decay γ = {cfg['dcs_gamma']:g} only")
    ax.axhline(t["wv_zero_fraction"]["mean"], color="tab:green", ls=":", lw=1.5, label="teacher W_V* zero fraction")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xscale("log")
    _zero_ticks(ax, al, floor_a)
    ax.set_xlabel("DCS α (Hadamard T = w ⊙ u on the uncovered blocks)")
    ax.set_ylabel(f"fraction of entries with |θ| < {cfg['zero_tol']:g}")
    ax2 = ax.twinx()
    ax2.plot(_x(al, floor_a), [row["test_loss"]["mean"] for row in s["dcs"]], "x:", color="tab:red", label="test loss")
    ax2.set_ylabel("test loss (vs noise-free teacher)", color="tab:red", fontsize=8)
    ax2.tick_params(axis="y", labelcolor="tab:red", labelsize=8)
    ax2.grid(False)
    ax.legend(fontsize=7.5, loc="center left")
    ax.set_title(f"(b) + DCS on {', '.join(blocks)} (the coverage map's uncovered blocks), γ = {cfg['dcs_gamma']:g}"
                 f" elsewhere", fontsize=9)
    ax = axes[2]
    for j, (k, lab) in enumerate(RANKS.items()):
        shift = 0.08 * (j - 1.5)  # drawn apart: W_Q and W_K coincide
        ax.plot(_x(al, floor_a), [row[f"rank_{k}"]["mean"] + shift for row in s["dcs"]], marker=marks[k],
                color=pal[k], label=f"{lab}, DCS", lw=1.8)
        base = next(row for row in s["weight_decay"] if row["gamma"] == cfg["dcs_gamma"])[f"rank_{k}"]["mean"]
        ax.axhline(base, color=pal[k], ls="--", lw=1, alpha=0.8)
    ax.plot([], [], "k--", lw=1, label="weight decay only (same γ)")
    ax.set_xscale("log")
    _zero_ticks(ax, al, floor_a)
    top = max(row[f"rank_{k}"]["max"] for row in s["dcs"] for k in RANKS)
    ax.set_ylim(-0.3, top + 1.5)
    ax.set_xlabel("DCS α")
    ax.set_ylabel("numerical rank (mean over seeds, offset ±0.1)")
    ax.set_title(f"(c) Covered blocks' ranks under DCS (dashed: weight decay only);\nall four equal to the "
                 f"weight-decay run in {p['ii_ranks_unchanged_runs']}/{p['ii_runs']} runs", fontsize=9)
    ax.legend(fontsize=7.5, loc="upper left", ncol=2)
    _coverage_panel(fig.add_subplot(grid[1, :]), results[0]["coverage"], cfg)
    fig.suptitle(f"Tiny transformer (d = {cfg['d_model']}, d_ff = {cfg['d_ff']}, T = {cfg['seq_len']}): native "
                 f"mirrors + weight decay vs DCS where coverage finds no mirror; full-batch GD + momentum, "
                 f"{cfg['steps']:,} steps", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)


DEFAULTS = {"d_model": 8, "d_ff": 16, "seq_len": 6, "n_train": 256, "n_test": 512,
            "teacher_qk_rank": 2, "teacher_ff_rank": 3, "teacher_wv_density": 0.25, "logit_scale": 2.0, "noise": 0.3,
            "gammas": [0.0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1], "dcs_gamma": 3e-3,
            "alphas": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "steps": 4000, "lr": 0.1, "momentum": 0.9,
            "rank_rtol": 1e-3, "rank_atol": 1e-8, "zero_tol": 1e-6,
            "coverage_d_model": 4, "coverage_d_ff": 8, "coverage_draws": 64, "coverage_max_products": 8,
            "coverage_max_active": 64, "artefact": "zoo/fig6.7-tiny-transformer", "learned_rank_rtol": 1e-3}
SMOKE = {"d_model": 4, "d_ff": 8, "seq_len": 4, "n_train": 64, "n_test": 64, "gammas": [0.0, 1e-2, 0.1],
         "dcs_gamma": 1e-2, "alphas": [3e-3, 3e-2], "steps": 600, "coverage_d_model": 2, "coverage_d_ff": 4,
         "coverage_draws": 16, "coverage_max_products": 0, "coverage_max_active": 48}
RUNNERS = [Runner("dcs_transformer_coverage", "DCS design 2 on the tiny transformer: W_Q/W_K and W_1W_2 ranks under "
                  "weight decay (native mirrors), Hadamard DCS where the coverage map finds none (W_V), the coverage "
                  "table (known vs learned)", run, figure, DEFAULTS, SMOKE, summarize, default_seeds=3, group="dcs",
                  digits=6)]
