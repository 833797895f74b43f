#!/usr/bin/env python
"""Verification throughput: invariance residuals per second, symdisc's batched path vs a per-sample loop (not a test).

The core of ``symdisc verify`` (``symdisc.verification.run``) is, per held-out draw (θ, X, Y), the residual of every
field on every sample, r_ik = |∇ℓ_i(θ) · ξ_k(θ)| / (‖∇ℓ_i‖ ‖ξ_k‖) (float64).  Two implementations on the same draws:

* **symdisc**: ``symdisc.jacobians.loss_jacobian`` (per-sample gradients, one ``vmap(grad)``) and
  ``Symmetry.tangents`` (the k fields, one vmapped jvp), then one matrix product — what ``verify_symmetry`` does;
* **loop**: the script one writes first — one ``autograd.grad`` per sample and one ``Symmetry.field`` jvp per field,
  dot products in Python.

Both must give the same residuals (max difference ≤ 1e-10, recorded).  Throughput = B·k residuals per draw over the
median seconds per draw; the draws alternate between the two, so load changes hit both.  The end-to-end
``verify_symmetry`` is timed too, per draw, in the configuration incremental discovery and the lift check use
(``curves=False, structure=False``: invariance, null-space shares and angles, known span, independence).  The
default configuration's curves compare with exp(tR)θ for a random R ∈ gl(p), a dense p × p exponential per field:
O(p³), out of reach at p ≈ 10⁴.  Before/after in the same run (``--before-dims``, an MLP small enough for the old
path): the same report with ``run.FAST_NULL_SPACE`` and ``run.SKIP_UNUSED_DRAWS`` off (an explicit null basis from
a full SVD, p × p; a random p × p comparator drawn per field even when no curve uses it) and on.

Models: ``mlp`` (64-128-10 ReLU with biases, p = 9610; its hidden-unit rescalings, k = 128; B = 64) and
``tiny-transformer`` (p = 28; its known continuous symmetries as one product; B = 8).

    python benchmarks/verify_throughput.py [--models mlp,tiny-transformer] [--draws 8] [--verify-draws 2]
                                           [--threads 1] [--out benchmarks/results/verify_throughput.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header, timed  # noqa: E402
from symdisc.io import write_json  # noqa: E402

MODELS = {"mlp": ("mlp", {"dims": "64,128,10", "act": "relu", "bias": True}, 64),
          "tiny-transformer": ("tiny-transformer", {}, 8)}
AGREE = 1e-10


def setup(model: str):
    import torch

    from symdisc import zoo
    from symdisc.symmetry import ProductSymmetry
    from symdisc.symmetry.known import continuous_symmetries

    name, kwargs, batch = MODELS[model]
    arch = zoo.get(name, **kwargs).to(dtype=torch.float64)
    syms = continuous_symmetries(arch)
    sym = syms[0] if len(syms) == 1 else ProductSymmetry(syms)
    return arch, sym, batch


def batched(arch, sym, theta, X, Y):
    """r (B, k) as symdisc's verification computes it."""
    from symdisc.jacobians import loss_jacobian

    J = loss_jacobian(arch, theta, X, Y)
    Xi = sym.tangents(theta, None)
    return (J @ Xi).abs() / (J.norm(dim=1, keepdim=True).clamp_min(1e-300) * Xi.norm(dim=0).clamp_min(1e-300))


def loop(arch, sym, theta, X, Y):
    """r (B, k) one sample and one field at a time."""
    import torch

    k = sym.num_generators
    fields = [sym.field(e, theta, None) for e in torch.eye(k, dtype=theta.dtype)]
    th = theta.detach().requires_grad_(True)
    r = torch.empty(X.shape[0], k, dtype=theta.dtype)
    for i in range(X.shape[0]):
        (g,) = torch.autograd.grad(arch.per_sample_loss(th, X[i:i + 1], Y[i:i + 1])[0], th)
        for j, xi in enumerate(fields):
            r[i, j] = (g @ xi).abs() / (g.norm().clamp_min(1e-300) * xi.norm().clamp_min(1e-300))
    return r


def measure(task: dict) -> dict:
    import torch

    from symdisc import make_generator
    from symdisc.verification import VerifyConfig
    from symdisc.verification.run import verify_symmetry

    torch.set_num_threads(task["threads"])
    arch, sym, batch = setup(task["model"])
    thetas, Xs, Ys = arch.sample_draws(task["draws"] + 1, batch, make_generator(0, 40))
    times = {"symdisc": [], "loop": []}
    worst = 0.0
    for j in range(task["draws"] + 1):  # draw 0 warms up, untimed
        out = {}
        for impl, fn in (("symdisc", batched), ("loop", loop)) if j % 2 else (("loop", loop), ("symdisc", batched)):
            t0 = time.perf_counter()
            out[impl] = fn(arch, sym, thetas[j], Xs[j], Ys[j])
            if j:
                times[impl].append(time.perf_counter() - t0)
        worst = max(worst, float((out["symdisc"] - out["loop"]).abs().max()))
    verify_s = None
    if task["verify_draws"]:
        verify_symmetry(sym, arch, batch, VerifyConfig(draws=1, curves=False, structure=False))  # warm-up
        t0 = time.perf_counter()
        verify_symmetry(sym, arch, batch, VerifyConfig(draws=task["verify_draws"], curves=False, structure=False))
        verify_s = (time.perf_counter() - t0) / task["verify_draws"]
    per_draw = batch * sym.num_generators
    med = {impl: statistics.median(t) for impl, t in times.items()}
    return {"model": task["model"], "symmetry": sym.name, "num_params": arch.num_params, "k": sym.num_generators,
            "batch": batch, "draws": task["draws"], "residuals_per_draw": per_draw,
            "seconds_per_draw": med, "residuals_per_second": {impl: per_draw / s for impl, s in med.items()},
            "speedup": med["loop"] / med["symdisc"], "max_abs_diff": worst, "agree": worst <= AGREE,
            "verify_symmetry_seconds_per_draw": verify_s}


def before_after(task: dict) -> dict:
    """verify_symmetry's invariance report per draw with the two fast paths off and on, on one MLP; the same
    numbers both ways."""
    import torch

    from symdisc import zoo
    from symdisc.symmetry.known import continuous_symmetries
    from symdisc.verification import VerifyConfig, run

    torch.set_num_threads(task["threads"])
    arch = zoo.get("mlp", dims=task["dims"], act="relu", bias=True).to(dtype=torch.float64)
    sym, cfg = continuous_symmetries(arch)[0], VerifyConfig(draws=1, curves=False, structure=False)
    out, reports = {}, {}
    run.verify_symmetry(sym, arch, task["batch"], cfg)  # warm-up
    for label, flag in (("after", True), ("before", False), ("after_again", True)):
        run.FAST_NULL_SPACE = run.SKIP_UNUSED_DRAWS = flag
        t0 = time.perf_counter()
        reports[label] = run.verify_symmetry(sym, arch, task["batch"], cfg)
        out[label] = time.perf_counter() - t0
    run.FAST_NULL_SPACE = run.SKIP_UNUSED_DRAWS = True
    keys = [k for k, v in reports["after"].items() if isinstance(v, float)]
    diff = max((abs(reports["after"][k] - reports["before"][k]) for k in keys), default=0.0)
    return {"dims": task["dims"], "num_params": arch.num_params, "k": sym.num_generators, "batch": task["batch"],
            "seconds_per_draw": out, "speedup": out["before"] / min(out["after"], out["after_again"]),
            "max_abs_diff_float_metrics": diff}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    ap.add_argument("--draws", type=int, default=8, help="timed draws per implementation")
    ap.add_argument("--verify-draws", type=int, default=2, help="draws of the end-to-end verify_symmetry (0: skip)")
    ap.add_argument("--before-dims", default="32,64,10", help="MLP of the before/after pair ('' to skip)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/verify_throughput.json")
    args = ap.parse_args(argv)
    rows = [timed(measure, {"model": m, "draws": args.draws, "verify_draws": args.verify_draws,
                            "threads": args.threads}, m) for m in args.models.split(",")]
    pair = timed(before_after, {"dims": args.before_dims, "batch": 64, "threads": args.threads}, "before/after") \
        if args.before_dims else None
    doc = {"benchmark": "verify_throughput", **header(args.threads), "cpu": cpu_model(), "device": "cpu",
           "loadavg": list(os.getloadavg()), "rows": rows, "before_after": pair}
    write_json(args.out, doc)
    for r in rows:
        print(f"{r['model']}: p = {r['num_params']}, k = {r['k']}, B = {r['batch']}: "
              f"{r['residuals_per_second']['symdisc']:.3g} vs {r['residuals_per_second']['loop']:.3g} residuals/s "
              f"({r['speedup']:.1f}×), agree {r['agree']} ({r['max_abs_diff']:.1e}); verify_symmetry "
              f"{r['verify_symmetry_seconds_per_draw']} s/draw")
    return doc


if __name__ == "__main__":
    main()
