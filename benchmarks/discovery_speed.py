#!/usr/bin/env python
"""Benchmark of the discovery trainer's step rate against a per-sample Python loop (not a test).

Models (``--model``; every one float32, the ``unconstrained`` preset: orbit encoding, hard identity with the
linear skip, a data-dependent action, every default term):

* ``tiny-transformer`` (the default): ``symdisc.zoo.get("tiny-transformer")`` (p = 28, B = 8 sequences per
  draw), ``preset_config("unconstrained", "tiny-transformer", k=8, draws=32)`` — free p×p generators on the
  Stiefel manifold with the spectral start;
* ``mlp``: ``symdisc.zoo.get("mlp", act="tanh", dims="100,90,10")`` (no biases: p = 9900, B = 16 Gaussian
  samples per draw), ``preset_config("unconstrained", "mlp", k=4, draws=8, batch=16, generator_kind="lowrank",
  spectral_init=False)`` — rank-1 generators h_k = U_k V_kᵀ/‖U_k V_kᵀ‖_F, never a p×p matrix (the p ≈ 10⁴
  configuration of ``benchmarks/discovery_scale.py``).

Two implementations of one training step (sample the draws, the objective, backward, Riemannian Adam
step), both inside symdisc's ``Trainer`` with the same start, parameters, data stream and optimiser:

* ``symdisc``: ``Trainer.train_step`` (objective batched over draws with torch.func.vmap);
* ``loop``: the naive reference of ``benchmarks/discovery_loop.py`` (Python loops over draws and
  samples, per-sample ``autograd.grad``, one double-backward jvp per field); variants
  ``loop-exp`` (fields through ``matrix_exp``, the paper read literally; free generators only) and
  ``loop-cgJ`` (per-sample gradients with ``create_graph=True``) show what those choices cost.  With low-rank
  generators the loop uses them through matrix-vector products only (exp(M)θ by a Taylor series).

Each is timed in both training phases — ``warmup`` (action frozen, pooled invariance: the first
20 % of the steps) and ``joint`` (action trained too) — in a fresh ``spawn`` subprocess: the
trainer is built, ``--warmup`` untimed steps run, then every one of the timed steps is timed on
its own.  Memory: the subprocess's peak RSS during the steps (VmHWM, reset with
/proc/self/clear_refs after the trainer is built) minus its RSS just before them, and its
ru_maxrss over its whole life.  A separate subprocess first checks, in float64 on the same θ, X, Y,
c1, c2, pair and parameters, that the loop reference and ``symdisc.discovery.objective.objective``
agree term by term (and in their gradients); with ``--model mlp`` the cases the loop does not cover for
low-rank generators (matrix encoding, fields through ``matrix_exp``) are skipped, with the reason recorded.

    python benchmarks/discovery_speed.py [--model tiny-transformer|mlp] [--steps 20] [--loop-steps 10]
                                         [--threads 1] [--out benchmarks/results/discovery_speed.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
# --model -> (zoo name, zoo options, overrides of preset_config("unconstrained", zoo name, ...))
MODELS = {
    "tiny-transformer": ("tiny-transformer", {}, {"k": 8, "draws": 32}),
    "mlp": ("mlp", {"act": "tanh", "dims": "100,90,10"},
            {"k": 4, "draws": 8, "batch": 16, "generator_kind": "lowrank", "spectral_init": False}),
}
DEFAULT_MODEL = "tiny-transformer"
IMPLS = {  # name -> LoopObjective options (None: symdisc's own Trainer)
    "symdisc": None,
    "loop": {"fields": "direct", "create_graph_J": False},
    "loop-exp": {"fields": "exp", "create_graph_J": False},
    "loop-cgJ": {"fields": "direct", "create_graph_J": True},
}
RTOL, ATOL = 1e-4, 1e-12  # agreement: relative 1e-4, or both below 1e-12 (terms that are 0 up to rounding)



def _git_commit() -> str | None:
    """HEAD's hash, with "+dirty" when tracked files under symdisc/ or benchmarks/ (results aside) differ from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "../symdisc", ".",
                                ":(exclude)results"],
                               cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS (Linux ≥ 4.0)
        return True
    except OSError:
        return False


def _config(model: str, **overrides):
    from symdisc.discovery.config import preset_config

    name, _, base = MODELS[model]
    return preset_config("unconstrained", name, **{**base, **overrides})


def _arch(model: str):
    import symdisc

    name, options, _ = MODELS[model]
    return symdisc.zoo.get(name, **options)


def _trainer(impl: str, cfg, model: str):
    arch = _arch(model)
    if IMPLS[impl] is None:
        from symdisc.discovery.trainer import Trainer

        return Trainer(arch, cfg)
    sys.path.insert(0, str(HERE))
    from discovery_loop import make_loop_trainer

    return make_loop_trainer(arch, cfg, **IMPLS[impl])


# ---- the agreement check ---------------------------------------------------------------------------
def _grads(sym, weights, at_zero, total, terms):
    """[(Euclidean ∇gens, Riemannian ∇gens, flat ∇action)] of the total and of its smooth part.  Free generators:
    ∇H and its projection onto the Stiefel tangent space; low rank: ∇(U, V) flattened, Euclidean parameters, so
    the "Riemannian" gradient is the Euclidean one."""
    import torch

    gens = list(sym.gens.parameters())
    params = [*gens, *sym.action.parameters()]
    smooth = total - sum(getattr(weights, t) * terms[t] for t in at_zero)
    out = []
    for f in (total, smooth):
        g = torch.autograd.grad(f, params, allow_unused=True, retain_graph=True)
        g = [torch.zeros_like(p) if t is None else t for t, p in zip(g, params, strict=True)]
        g = [t.detach() for t in g]
        action = torch.cat([t.reshape(-1) for t in g[len(gens):]])
        if sym.gens.kind == "free":
            H = sym.gens.H
            out.append((g[0], H.manifold.egrad2rgrad(H.detach(), g[0]), action))
        else:
            flat = torch.cat([t.reshape(-1) for t in g[:len(gens)]])
            out.append((flat, flat, action))
    return out


def check(task: dict) -> dict:
    """Runs in a fresh subprocess: loop reference vs symdisc's objective on identical inputs, float64."""
    import torch

    from symdisc.architecture import make_generator
    from symdisc.discovery.action import ActionConfig
    from symdisc.discovery.objective import PRESETS, TERMS, objective
    from symdisc.discovery.trainer import TRAIN_STREAM

    sys.path.insert(0, str(HERE))
    from discovery_loop import LoopObjective, draw_extras

    torch.set_num_threads(task["threads"] or torch.get_num_threads())
    model = task["model"]

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= RTOL * max(abs(a), abs(b)) or max(abs(a), abs(b)) <= ATOL

    cases = []
    specs = [
        # name, config overrides, perturb parameters, training steps first, pooled, loop fields
        ("default, after 3 warm-up training steps (pooled)", {}, False, 3, True, "direct"),
        ("default, random action head + perturbed H (per-draw ratios, joint phase)", {}, True, 0, False, "direct"),
        ("default, as above, fields through matrix_exp (loop-exp)", {}, True, 0, False, "exp"),
        ("identity='residual' (identity and assoc non-zero), perturbed", {"action": ActionConfig(identity="residual")},
         True, 0, False, "direct"),
        ("faithful-6.5.3 weights (|Jξ| invariance, assoc, sparse, reg_id) with the default action, perturbed",
         {"weights": PRESETS["faithful-6.5.3"]}, True, 0, True, "direct"),
        ("faithful-6.5.3 weights, matrix encoding vec(g - I), free identity, perturbed",
         {"weights": PRESETS["faithful-6.5.3"], "action": ActionConfig(encoding="matrix", identity="free",
                                                                       linear_skip=False)}, True, 0, True, "direct"),
    ]
    lowrank = MODELS[model][2].get("generator_kind", "free") == "lowrank"
    skipped = []
    for name, over, perturb, train_steps, pooled, fields in specs:
        if lowrank and fields == "exp":
            skipped.append({"case": name, "skipped": "fields through matrix_exp need p×p generator matrices: the loop "
                                                     "reference's loop-exp covers free generators only"})
            continue
        if lowrank and "action" in over and over["action"].encoding == "matrix":
            skipped.append({"case": name, "skipped": "the matrix encoding vec(g - I) needs p×p group elements (p² "
                                                     "inputs to the action): not covered with low-rank generators"})
            continue
        cfg = _config(model, dtype="float64", **over)
        tr = _trainer("symdisc", cfg, model)
        for _ in range(train_steps):
            tr.train_step()
        sym = tr.symmetry
        if perturb:
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                for m in (sym.action.head.weight, sym.action.head.bias):
                    m.copy_(0.1 * torch.randn(m.shape, generator=g, dtype=m.dtype))
                if sym.gens.kind == "free":
                    H = sym.gens.H + 0.05 * torch.randn(sym.gens.H.shape, generator=g, dtype=sym.gens.H.dtype)
                    sym.gens.H.copy_(torch.linalg.qr(H)[0])  # stay on the Stiefel manifold
                else:  # U, V: 10 % of their RMS entry
                    for t in (sym.gens.U, sym.gens.V):
                        t.add_(0.1 * t.pow(2).mean().sqrt() * torch.randn(t.shape, generator=g, dtype=t.dtype))
        sym.action.requires_grad_(True)
        gen = make_generator(cfg.seed, TRAIN_STREAM, tr.step)
        theta, X, Y = tr.arch.sample_draws(cfg.draws, tr.batch, gen)
        state = gen.get_state()
        total_s, terms_s = objective(sym, tr.arch, cfg.weights, theta, X, Y, gen, pooled=pooled)
        c1, c2, pair = draw_extras(sym.num_generators, theta.shape[0], cfg.weights,
                                   torch.Generator().set_state(state), theta)
        total_l, terms_l = LoopObjective(sym, tr.arch, cfg.weights, fields=fields)(theta, X, Y, c1, c2, pair,
                                                                                  pooled=pooled)
        rows = {}
        for term in ("total", *TERMS):
            a = float((total_s if term == "total" else terms_s[term]).detach())
            b = float((total_l if term == "total" else terms_l[term]).detach())
            rows[term] = {"symdisc": a, "loop": b, "rel_diff": abs(a - b) / max(abs(a), abs(b), 1e-300),
                          "agree": close(a, b),
                          "agree_by": "relative" if abs(a - b) <= RTOL * max(abs(a), abs(b)) else
                          "both_below_atol" if max(abs(a), abs(b)) <= ATOL else "no"}
        # Gradients.  H's as Riemannian Adam uses it (projected onto the Stiefel tangent space; the
        # Euclidean one is reported too), the action's raw.  "smooth": the total minus the terms that sit
        # at 0 up to rounding in both (identity, assoc, bracket at a linear action, ...): they are norms,
        # not differentiable at 0, and their gradient there is the direction of rounding noise.
        at_zero = [t for t in TERMS if t != "invariance" and max(abs(rows[t]["symdisc"]), abs(rows[t]["loop"])) <= ATOL]
        grel = lambda a, b: float((a - b).norm() / max(float(a.norm()), float(b.norm()), 1e-300))  # noqa: E731
        grads = {"terms_at_zero_excluded_from_smooth": at_zero,
                 "generator_parameters": "H (Stiefel; H_riemannian = its tangent projection)" if not lowrank else
                 "U, V flattened (Euclidean parameters: H_riemannian = H_euclidean)"}
        gs = _grads(sym, cfg.weights, at_zero, total_s, terms_s)
        gl = _grads(sym, cfg.weights, at_zero, total_l, terms_l)
        for label, (es, rs, acts), (el, rl, actl) in zip(("total", "smooth"), gs, gl, strict=True):
            grads[label] = {"H_riemannian_rel_diff": grel(rs, rl), "H_euclidean_rel_diff": grel(es, el),
                            "action_rel_diff": grel(acts, actl), "H_riemannian_norm": float(rs.norm()),
                            "action_grad_norm": float(acts.norm())}
        sm = grads["smooth"]
        grads["agree"] = sm["H_riemannian_rel_diff"] <= RTOL and (sm["action_rel_diff"] <= RTOL
                                                                   or sm["action_grad_norm"] <= ATOL)
        cases.append({"case": name, "pooled": pooled, "loop_fields": fields, "pair": list(pair),
                      "terms": rows, "gradients": grads,
                      "all_terms_agree": all(r["agree"] for r in rows.values())})
    return {"model": model, "dtype": "float64", "rtol": RTOL, "atol": ATOL, "draws": _config(model).draws,
            "cases": cases, "skipped_cases": skipped,
            "all_agree": bool(cases) and all(c["all_terms_agree"] and c["gradients"]["agree"] for c in cases)}


# ---- the timing -----------------------------------------------------------------------------------
def measure(task: dict) -> dict:
    """Runs in a fresh subprocess: ``task['steps']`` timed train steps of one implementation in one phase."""
    import resource

    import torch

    if task["threads"]:
        torch.set_num_threads(task["threads"])
    t0 = time.perf_counter()
    tr = _trainer(task["impl"], _config(task["model"]), task["model"])
    build_s = time.perf_counter() - t0
    if task["phase"] == "joint":
        tr.step = tr.warmup_steps  # skip to the phase where the action trains as well
    rss_before = _status_kib("VmRSS") / 1024
    reset = _reset_peak()
    phases = set()
    for _ in range(task["warmup"]):
        phases.add(tr.train_step()["phase"])
    times, losses = [], []
    for _ in range(task["steps"]):
        s = time.perf_counter()
        r = tr.train_step()
        times.append(time.perf_counter() - s)
        losses.append(r["loss"])
        phases.add(r["phase"])
    peak = _status_kib("VmHWM") / 1024
    return {
        "model": task["model"], "impl": task["impl"], "phase": task["phase"], "phases_seen": sorted(phases),
        "threads": torch.get_num_threads(), "build_seconds": round(build_s, 3),
        "warmup_steps": task["warmup"], "timed_steps": task["steps"],
        "step_seconds": [round(t, 5) for t in times],
        "total_seconds": round(sum(times), 4),
        "steps_per_second": round(len(times) / sum(times), 4),
        "median_step_seconds": round(statistics.median(times), 5),
        "min_step_seconds": round(min(times), 5),
        "rss_before_steps_mib": round(rss_before, 1),
        "peak_rss_during_steps_mib": round(peak, 1) if reset else None,
        "peak_rss_added_by_steps_mib": round(peak - rss_before, 1) if reset else None,
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "first_loss": losses[0], "last_loss": losses[-1],
    }


def _configuration(model: str) -> dict:
    """The report's record of the benchmarked model and discovery configuration."""
    cfg, arch = _config(model), _arch(model)
    name, options, _ = MODELS[model]
    return {"model": model, "architecture": name, "zoo_options": options, "dims": arch.spec.get("dims"),
            "architecture_spec": arch.spec, "preset": "unconstrained", "num_params": arch.num_params, "k": cfg.k,
            "draws": cfg.draws, "batch": cfg.batch or arch.default_batch_size, "generator_kind": cfg.generator_kind,
            "rank": cfg.rank if cfg.generator_kind == "lowrank" else None, "spectral_init": cfg.spectral_init,
            "dtype": cfg.dtype, "device": cfg.device, "config": cfg.to_dict()}


def run_fresh(fn, task: dict) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        return ex.submit(fn, task).result()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=list(MODELS), default=DEFAULT_MODEL,
                    help="tiny-transformer: p = 28, k = 8 free generators, 32 draws of 8 (default); mlp: tanh "
                         "100-90-10 without biases, p = 9900, k = 4 rank-1 generators, 8 draws of 16, no spectral "
                         "start")
    ap.add_argument("--steps", type=int, default=20, help="timed steps of symdisc's trainer (default 20)")
    ap.add_argument("--loop-steps", type=int, default=10, help="timed steps of the loop reference (default 10)")
    ap.add_argument("--variant-steps", type=int, default=4, help="timed steps of loop-exp and loop-cgJ (default 4)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (default 3)")
    ap.add_argument("--phases", default="warmup,joint", help="comma list of warmup, joint")
    ap.add_argument("--impls", default=None, help=f"comma list of {', '.join(IMPLS)} (default: all; with --model "
                                                  "mlp all but loop-exp, which needs p×p generators)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads in the workers (0: torch's "
                                                           "default); use 1 on a shared machine")
    ap.add_argument("--skip-check", action="store_true", help="skip the float64 agreement check")
    ap.add_argument("--out", default="benchmarks/results/discovery_speed.json")
    args = ap.parse_args(argv)
    lowrank = MODELS[args.model][2].get("generator_kind", "free") == "lowrank"
    if args.impls is None:
        impls = [i for i in IMPLS if not (lowrank and i == "loop-exp")]
    else:
        impls = args.impls.split(",")
        unknown = [i for i in impls if i not in IMPLS]
        if unknown:
            ap.error(f"unknown implementation(s) {', '.join(unknown)}; choose from {', '.join(IMPLS)}")
        if lowrank and "loop-exp" in impls:
            ap.error(f"loop-exp differentiates through matrix_exp of p×p generators: not available for --model "
                     f"{args.model} (low-rank generators)")

    import torch

    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    started = time.perf_counter()
    agreement = None
    if not args.skip_check:
        print("agreement check (float64) ...", flush=True)
        agreement = run_fresh(check, {"threads": args.threads, "model": args.model})
        for c in agreement["skipped_cases"]:
            print(f"  {c['case']}: skipped ({c['skipped']})", flush=True)
        for c in agreement["cases"]:
            worst = max((r["rel_diff"], t) for t, r in c["terms"].items()
                        if max(abs(r["symdisc"]), abs(r["loop"])) > ATOL)
            g = c["gradients"]["smooth"]
            print(f"  {c['case']}: terms agree {c['all_terms_agree']} (worst {worst[1]} {worst[0]:.1e}); gradients "
                  f"agree {c['gradients']['agree']} (H {g['H_riemannian_rel_diff']:.1e}, action "
                  f"{g['action_rel_diff']:.1e})", flush=True)
    steps_for = {"symdisc": args.steps, "loop": args.loop_steps}
    runs: dict[str, dict[str, dict]] = {}
    for phase in args.phases.split(","):
        runs[phase] = {}
        for impl in impls:
            task = {"impl": impl, "phase": phase, "steps": steps_for.get(impl, args.variant_steps),
                    "warmup": args.warmup, "threads": args.threads, "model": args.model}
            t0, load0 = time.perf_counter(), os.getloadavg()
            r = run_fresh(measure, task)
            r["loadavg_before"] = [round(x, 2) for x in load0]
            r["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            print(f"  {phase:6s} {impl:8s}: {r['steps_per_second']:.3f} steps/s "
                  f"(median {r['median_step_seconds']:.4f} s)"
                  f", peak +{r['peak_rss_added_by_steps_mib']} MiB, load {r['loadavg_before'][0]}"
                  f" ({time.perf_counter() - t0:.1f} s incl. spawn)", flush=True)
            runs[phase][impl] = r
    summary = {}
    for phase, rs in runs.items():
        if "symdisc" not in rs:
            continue
        s = rs["symdisc"]
        summary[phase] = {
            "symdisc_steps_per_second": s["steps_per_second"],
            "symdisc_peak_rss_added_mib": s["peak_rss_added_by_steps_mib"],
            **{f"{impl}_steps_per_second": r["steps_per_second"] for impl, r in rs.items() if impl != "symdisc"},
            **{f"{impl}_peak_rss_added_mib": r["peak_rss_added_by_steps_mib"] for impl, r in rs.items()
               if impl != "symdisc"},
            **{f"speedup_vs_{impl}": round(s["steps_per_second"] / r["steps_per_second"], 2)
               for impl, r in rs.items() if impl != "symdisc"},
            **{f"speedup_vs_{impl}_median": round(r["median_step_seconds"] / s["median_step_seconds"], 2)
               for impl, r in rs.items() if impl != "symdisc"},
        }
        if "loop" in rs:
            summary[phase]["target_20x_met"] = summary[phase]["speedup_vs_loop"] >= 20
    loads = [r[k][0] for rs in runs.values() for r in rs.values() for k in ("loadavg_before", "loadavg_after")]
    report = {
        "benchmark": "discovery_speed",
        "command": " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0]) if sys.argv[0] else
                                                      "discovery_speed.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "torch_num_threads": next(iter(next(iter(runs.values())).values()))["threads"] if runs else None,
        "os_cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "loadavg_1min_range": [min(loads), max(loads)] if loads else None,
        "configuration": _configuration(args.model),
        "memory_note": "peak_rss_added_by_steps_mib = VmHWM after the steps (reset via /proc/self/clear_refs once "
                       "the trainer is built) minus VmRSS just before them, in a fresh spawn subprocess per "
                       "measurement; ru_maxrss_mib is the subprocess's whole-life peak (imports, spectral init)",
        "agreement_check": agreement,
        "runs": runs,
        "summary": summary,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, report)
    print(f"summary: {summary}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
