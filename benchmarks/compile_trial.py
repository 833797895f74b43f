#!/usr/bin/env python
"""``torch.compile`` trial on symdisc's hot kernels (not a test): eager against compiled, in the same process.

Kernels (each in a fresh ``spawn`` subprocess, torch and BLAS threads set explicitly):

* ``rr_hvp_1``, ``rr_hvp_16``  RR's Hessian-vector products, forward-over-reverse (``vmap`` of ``jvp`` of
                               ``grad``) as ``symdisc.ridge.HessianOperator`` runs them, for 1 column (what ARPACK's
                               Lanczos asks for) and 16 (a LOBPCG block); MLP 64-128-10 (tanh, cross-entropy) on
                               the full digits training batch, p = 9610, float64;
* ``rr_lanczos_3``             end to end: ``most_negative`` (5 pairs, Lanczos) at three points θ of that MLP, as
                               RR's GetRidges at three branchings, with ``HessianOperator(compile=False|True)``;
                               the compiled total includes its one compilation (θ is an argument: no recompile);
* ``verify_jacobian``          verification's per-sample loss Jacobian (``symdisc.jacobians.loss_jacobian``, vmap of
                               grad) on the tanh MLP 100-90-10 (p = 9100 … the verification case's size), 64 samples;
* ``discovery_step``           one training step of the discovery trainer (tiny transformer, joint phase, the
                               ``discovery_speed`` configuration: free generators) with its objective compiled;
* ``discovery_step_mlp``       the same on ``discovery_speed --model mlp`` (p = 9900, rank-1 generators).

Per kernel: the median eager call, the first compiled call (``compile_seconds``: tracing and code generation), the
median compiled call after it, ``speedup`` = eager / compiled, ``break_even_calls`` = compile_seconds / (eager −
compiled) (calls before compiling pays; null when it never does), the largest difference from eager, the graph
breaks dynamo reported, and any error (a kernel that cannot be compiled is a result, not a crash).  Compiles are
cold (inductor's on-disk caches off) unless ``--warm-cache``: what a first run pays.

    python benchmarks/compile_trial.py [--kernels rr_hvp_1,rr_hvp_16,verify_jacobian,discovery_step,…] [--reps 15]
                                       [--threads 1] [--warm-cache] [--out benchmarks/results/compile_trial.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header  # noqa: E402
from benchmarks.record import timed as record_timed  # noqa: E402

KERNELS = ("rr_hvp_1", "rr_hvp_16", "rr_lanczos_3", "verify_jacobian", "discovery_step", "discovery_step_mlp")


def _rr(torch, columns: int):
    """(fn, args) for H V on the digits MLP at a fan-in θ."""
    from torch.func import grad, jvp, vmap

    import symdisc
    from symdisc.data import digits

    d = digits().to(dtype=torch.float64)
    arch = symdisc.zoo.get("mlp", dims="64,128,10", act="tanh", bias=True, loss="cross_entropy").to(
        dtype=torch.float64)
    theta = arch.sample_params(symdisc.make_generator(0, 0))
    g = grad(lambda th: arch.batch_loss(th, d.X_train, d.y_train))

    def hvp_block(theta, V):
        return vmap(lambda v: jvp(g, (theta,), (v,))[1], in_dims=1, out_dims=1)(V)

    V = torch.randn(theta.shape[0], columns, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return hvp_block, (theta, V), arch.num_params


def _verify(torch):
    """(fn, args) for the per-sample loss Jacobian of a p ≈ 10⁴ MLP."""
    import symdisc
    from symdisc.jacobians import loss_jacobian

    arch = symdisc.zoo.get("mlp", dims="100,90,10", act="tanh").to(dtype=torch.float64)
    gen = symdisc.make_generator(0, 1)
    theta = arch.sample_params(gen)
    X, Y = arch.sample_data(64, gen)
    return (lambda theta, X, Y: loss_jacobian(arch, theta, X, Y)), (theta, X, Y), arch.num_params


def _discovery(torch, compiled: bool, model: str):
    """(fn, args): one joint-phase training step of a ``discovery_speed`` model."""
    from benchmarks.discovery_speed import _config, _trainer

    tr = _trainer("symdisc", _config(model), model)
    tr.step = tr.warmup_steps
    if compiled:
        tr.objective = torch.compile(tr.objective)
    return (lambda: torch.tensor(tr.train_step()["loss"])), (), tr.arch.num_params


def _lanczos(torch, task: dict) -> dict:
    """Three Lanczos solves, eager then compiled (fresh compile caches), with their HVP counts and eigenvalues."""
    import torch._dynamo

    import symdisc
    from symdisc.data import digits
    from symdisc.ridge import HessianOperator, most_negative

    d = digits().to(dtype=torch.float64)
    arch = symdisc.zoo.get("mlp", dims="64,128,10", act="tanh", bias=True, loss="cross_entropy").to(
        dtype=torch.float64)
    thetas = [arch.sample_params(symdisc.make_generator(0, j)) for j in range(3)]
    HessianOperator(lambda th: arch.batch_loss(th, d.X_train, d.y_train), thetas[0]).matvec(thetas[0])  # warm-up
    out = {"kernel": task["kernel"], "p": arch.num_params, "threads": torch.get_num_threads(), "solves": 3}
    for compiled in (False, True):
        torch._dynamo.reset()
        loss = lambda th: arch.batch_loss(th, d.X_train, d.y_train)  # noqa: E731 - one loss for the run, as in RR
        seconds, hvps, values = [], 0, []
        for theta in thetas:
            op = HessianOperator(loss, theta, compile=compiled)
            t = time.perf_counter()
            pairs = most_negative(op, 5, "lanczos", generator=torch.Generator().manual_seed(0))
            seconds.append(time.perf_counter() - t)
            hvps += op.hvps
            values.append(pairs.values)
        key = "compiled" if compiled else "eager"
        out[f"{key}_solve_seconds"] = [round(x, 3) for x in seconds]
        out[f"{key}_total_seconds"] = round(sum(seconds), 3)
        out[f"{key}_hvps"] = hvps
        out[f"{key}_values"] = torch.stack(values)
    out["max_abs_dlambda"] = float((out.pop("compiled_values") - out.pop("eager_values")).abs().max())
    out["speedup_total"] = out["eager_total_seconds"] / out["compiled_total_seconds"]
    out["speedup_after_first"] = sum(out["eager_solve_seconds"][1:]) / sum(out["compiled_solve_seconds"][1:])
    out["recompiles"] = sum(torch._dynamo.utils.counters["recompiles"].values())
    return out


def _median_call(fn, args, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(task: dict) -> dict:
    """Runs in a fresh subprocess: eager, then compiled, of one kernel."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(task["threads"])
    threadpool_limits(limits=task["threads"], user_api="blas")
    import torch._dynamo
    import torch._functorch.config
    import torch._inductor.config

    if not task["warm_cache"]:  # a cold compile, as on a first run: no on-disk FX graph / autograd caches
        torch._inductor.config.fx_graph_cache = False
        torch._functorch.config.enable_autograd_cache = False

    name, reps = task["kernel"], task["reps"]
    if name == "rr_lanczos_3":
        return _lanczos(torch, task)
    if name.startswith("discovery_step"):
        model = "mlp" if name.endswith("_mlp") else "tiny-transformer"
        build = lambda compiled: _discovery(torch, compiled, model)  # noqa: E731 - a fresh trainer per variant
    else:
        made = _rr(torch, 1 if name == "rr_hvp_1" else 16) if name.startswith("rr_hvp") else _verify(torch)
        build = lambda compiled: (torch.compile(made[0]) if compiled else made[0], made[1], made[2])  # noqa: E731
    fn, args, p = build(False)
    reference = fn(*args)
    eager = _median_call(fn, args, reps)
    out = {"kernel": name, "p": p, "threads": torch.get_num_threads(), "reps": reps, "eager_seconds": eager}
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfn, cargs, _ = build(True)
    try:
        t = time.perf_counter()
        first = cfn(*cargs)
        out["compile_seconds"] = time.perf_counter() - t
        compiled = _median_call(cfn, cargs, reps)
    except Exception as e:  # noqa: BLE001 - a kernel dynamo/inductor cannot compile is a finding
        out.update({"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}", "compiled_seconds": None,
                    "speedup": None, "break_even_calls": None})
        return out
    gain = eager - compiled
    out.update({
        "compiled_seconds": compiled, "speedup": eager / compiled,
        "break_even_calls": round(out["compile_seconds"] / gain) if gain > 0 else None,
        "max_abs_diff": None if name.startswith("discovery_step") else float((first - reference).abs().max()),
        "graph_breaks": sum(torch._dynamo.utils.counters["graph_break"].values()),
        "recompiles": sum(torch._dynamo.utils.counters["recompiles"].values()),
    })
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default=",".join(KERNELS))
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warm-cache", action="store_true", help="let inductor reuse its on-disk caches")
    ap.add_argument("--out", default="benchmarks/results/compile_trial.json")
    args = ap.parse_args(argv)
    from symdisc.io import check_writable, write_json

    kernels = [k for k in args.kernels.split(",") if k]
    bad = [k for k in kernels if k not in KERNELS]
    if bad:
        ap.error(f"unknown kernel(s) {', '.join(bad)}; choose from {', '.join(KERNELS)}")
    check_writable(args.out)
    rows = [record_timed(measure, {"kernel": k, "reps": args.reps, "threads": args.threads,
                                        "warm_cache": args.warm_cache}, k) for k in kernels]
    doc = {**header(args.threads), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "warm_cache": args.warm_cache,
           "kernels": rows}
    write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
