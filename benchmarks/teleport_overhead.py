#!/usr/bin/env python
"""Benchmark of teleportation's cost (not a test).

1. **Digits (E12 setup)**: the seconds of one teleport event (8 mini-batches of 200, 10 ascent
   steps of lr 5e-2 each, pinv GL actions of both hidden layers, TeleportOptimizer) against the
   seconds of one plain training epoch (68 steps of
   batch 20), after one epoch of training; median over several events, each from the same θ
   and optimizer state on fresh teleport batches (the papers' plain ascent, ``monotone=False``).
   SGD (no state), Adam with ``keep`` and Adam with ``transform`` (the first moment is transported,
   J^{-T} m, by a dense p×p solve per accepted move).
2. **E3 against the reference algorithm** (D §4.6.1; the authors' ``teleport_MLP`` as the paper
   describes it): 3-layer 5-6-7-8 LeakyReLU(0.1) regression without biases, X ∈ ℝ^{5×4},
   Y ∈ ℝ^{8×4}, W, X, Y ~ U[0, 1], L = ½‖Y − W₃σ(W₂σ(W₁X))‖²_F, 5 GD steps of lr 1e-4, then a
   teleport of 8 ascent steps of lr 1e-7 on ‖∇L‖².  The reference (below, plain torch autograd,
   written from the paper's description) re-linearises every step: T_m = 0 for each hidden
   layer, W' = (I + T)·W by the pinv action (bottom to top), J = Σ‖∂L/∂W'‖², T ← lr ∂J/∂T,
   W ← (I + T)·W.  symdisc: ``teleport(..., parameterisation="first_order", monotone=False)`` at
   the same steps and lr (guard off, and with its default guard).  Both must give the same θ to
   a tolerance; the time ratio is reported.

    python benchmarks/teleport_overhead.py [--events 7] [--transform-events 1] [--epochs 15] [--repeats 30]
                                           [--seeds 5] [--threads 1] [--out benchmarks/results/teleport_overhead.json]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import grad

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # discovery_speed; the experiments package (not installed)
from discovery_speed import _git_commit  # noqa: E402
from record import cpu_model  # noqa: E402

from experiments.teleport.digits import PAPER_OPTIMIZERS, TeleportPlan, mlp  # noqa: E402
from symdisc import data as datasets  # noqa: E402
from symdisc import make_generator, zoo  # noqa: E402
from symdisc.io import write_json  # noqa: E402
from symdisc.symmetry import hidden_layers_gl  # noqa: E402
from symdisc.teleport import LossGuard, TeleportConfig, TeleportOptimizer, teleport  # noqa: E402

SLOPE = 0.1
E3_DIMS = (5, 6, 7, 8)
E3_SAMPLES, E3_GD_LR, E3_GD_STEPS, E3_STEPS, E3_LR = 4, 1e-4, 5, 8, 1e-7
THETA_RTOL = 1e-2  # ‖θ_symdisc − θ_ref‖ ≤ THETA_RTOL · ‖θ_ref − θ_before‖ (first-order vs exact I + T: O(‖T‖))


# ---- the reference algorithm (paper's description, plain torch) ----------------------------------
def _sigma(z):
    return F.leaky_relu(z, SLOPE)


def reference_action(Ws: list[torch.Tensor], Ts: list[torch.Tensor], X: torch.Tensor, complement: bool = True):
    """g_m = I + T_m on every hidden layer, bottom to top, by the pinv action (D eq. 4.16):
    W_m ↦ g W_m, W_{m+1} ↦ W_{m+1} σ(Z) σ(gZ)⁺ (+ W_{m+1}(I − σ(gZ)σ(gZ)⁺) with ``complement``).
    Column convention: X is (d₀, n)."""
    Ws, h = list(Ws), X
    for m, T in enumerate(Ts):
        g = torch.eye(T.shape[0], dtype=T.dtype) + T
        Z = Ws[m] @ h
        Sg = _sigma(g @ Z)
        Sg_pinv = torch.linalg.pinv(Sg)
        W_next = Ws[m + 1] @ _sigma(Z) @ Sg_pinv
        Ws[m + 1] = W_next + (Ws[m + 1] - Ws[m + 1] @ Sg @ Sg_pinv if complement else 0)
        Ws[m] = g @ Ws[m]
        h = Sg
    return Ws


def reference_loss(Ws, X, Y):
    h = X
    for W in Ws[:-1]:
        h = _sigma(W @ h)
    return 0.5 * (Y - Ws[-1] @ h).pow(2).sum()


def reference_teleport(Ws, X, Y, lr: float, steps: int, complement: bool = True):
    """Algorithm 2 with g = I + T, re-linearised at T = 0 every step; ascent on Σ‖∂L/∂W'‖²."""
    Ws = [W.detach() for W in Ws]
    for _ in range(steps):
        Ts = [torch.zeros(W.shape[0], W.shape[0], dtype=W.dtype, requires_grad=True) for W in Ws[:-1]]
        gWs = reference_action(Ws, Ts, X, complement)
        dW = torch.autograd.grad(reference_loss(gWs, X, Y), gWs, create_graph=True)
        objective = sum(d.pow(2).sum() for d in dW)
        dT = torch.autograd.grad(objective, Ts)
        with torch.no_grad():
            Ws = [W.detach() for W in reference_action(Ws, [lr * d for d in dT], X, complement)]
    return Ws


# ---- helpers -----------------------------------------------------------------------------------
def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def _stats(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "n": len(times)}


# ---- 1. digits ---------------------------------------------------------------------------------
MNIST_SHAPE = dict(n_samples=70_000, n_features=784, n_classes=10, test_fraction=1 / 7)  # 60 000 train, 784 inputs


def digits_overhead(events: int, transform_events: int, epochs: int, dataset: str = "digits") -> dict:
    """One teleport event against plain epochs, on digits or on a synthetic set of MNIST's shape (60 000 training
    samples of 784 features, 10 classes; ``symdisc.data.synthetic``) with the E12 network's hidden layers
    (784-16-10-10): the event does the same work on both, the epoch is 44× longer on the second."""
    if dataset == "digits":
        arch, split = mlp(), datasets.digits(dtype=torch.float64)
    else:
        arch, split = mlp("784,16,10,10"), datasets.synthetic(**MNIST_SHAPE, dtype=torch.float64)
    symmetry = hidden_layers_gl(arch, "pinv")
    plan = TeleportPlan(config=TeleportConfig(steps=10, lr=5e-2, monotone=False))
    loss_fn = lambda th, batch: arch.batch_loss(th, *batch)
    out = {}
    for label, name, policy, n_events in (("sgd", "sgd", "keep", events), ("adam/keep", "adam", "keep", events),
                                          ("adam/transform", "adam", "transform", transform_events)):
        if n_events == 0:
            continue
        theta = arch.sample_params(make_generator(0, 0)).requires_grad_(True)
        opt = PAPER_OPTIMIZERS[name].build([theta])
        order = make_generator(0, 1)

        def epoch(theta=theta, opt=opt, order=order):
            for batch in split.batches(20, order):
                opt.zero_grad()
                loss_fn(theta, batch).backward()
                opt.step()

        epoch()  # the teleport happens after the first epoch
        snapshot = (theta.detach().clone(), copy.deepcopy(opt.state_dict()))
        event_times, batch_times, statuses = [], [], {"accepted": 0, "corrected": 0, "refused": 0}
        draws = make_generator(0, 2)
        for _ in range(n_events):
            th = snapshot[0].clone().requires_grad_(True)
            base = PAPER_OPTIMIZERS[name].build([th])
            base.load_state_dict(copy.deepcopy(snapshot[1]))
            tele = TeleportOptimizer(base, symmetry, params=th, loss_fn=loss_fn, config=plan.config,
                                     state_policy=policy)
            t0 = time.perf_counter()
            for _ in range(plan.batches):
                idx = torch.randperm(split.X_train.shape[0], generator=draws)[:plan.batch_size]
                tele.teleport((split.X_train[idx], split.y_train[idx]))
            event_times.append(time.perf_counter() - t0)
            batch_times += [e["seconds"] for e in tele.events]
            for e in tele.events:
                for s in statuses:
                    statuses[s] += e["steps"][s]
        epoch_times, _ = _timed(epoch, epochs)
        steps = math.ceil(split.X_train.shape[0] / 20)
        ev, ep = statistics.median(event_times), statistics.median(epoch_times)
        out[label] = {"event": _stats(event_times), "teleport_batch": _stats(batch_times), "epoch": _stats(epoch_times),
                      "steps_per_epoch": steps, "event_over_epoch": ev / ep,
                      "event_in_optimizer_steps": ev / (ep / steps), "guard_statuses": statuses}
    return {"setup": {"plan": plan.describe(), "events": events, "transform_events": transform_events,
                      "epochs_timed": epochs,
                      "symmetry": symmetry.name, "dtype": "float64"}, "results": out}


# ---- 2. E3 against the reference -----------------------------------------------------------------
def e3_problem(seed: int):
    arch = zoo.get("mlp", dims=",".join(map(str, E3_DIMS)), act="leakyrelu").to(dtype=torch.float64)
    gen = make_generator(seed, 0)
    theta = torch.rand(arch.num_params, generator=gen, dtype=torch.float64)  # W ~ U[0, 1]
    X = torch.rand(E3_DIMS[0], E3_SAMPLES, generator=gen, dtype=torch.float64)
    Y = torch.rand(E3_DIMS[-1], E3_SAMPLES, generator=gen, dtype=torch.float64)
    loss = lambda th: 0.5 * (Y.T - arch.forward(th, X.T)).pow(2).sum()  # rows = samples in symdisc
    g = grad(loss)
    for _ in range(E3_GD_STEPS):
        theta = theta - E3_GD_LR * g(theta)
    return arch, theta.detach(), X, Y, loss


def _run(fn):
    """fn()'s θ (and guard statuses), or the error that stopped it."""
    try:
        out = fn()
    except (RuntimeError, torch.linalg.LinAlgError) as err:
        return None, f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
    return (out, None) if isinstance(out, torch.Tensor) else (out.theta, out.counts())


def before(fn):
    """``fn()`` with every teleport fast path of issue 14 switched off (the "before" of the before/after entry,
    measured in the same run; ``symdisc.teleport.fastpaths``)."""
    from symdisc.teleport import fastpaths

    with fastpaths.disabled():
        return fn()


def e3_implementations(seed: int, lr: float, steps: int = E3_STEPS):
    """The E3 problem of ``seed`` and {name: () -> θ after the teleport (or a TeleportResult)}."""
    arch, theta, X, Y, loss = e3_problem(seed)
    symmetry = hidden_layers_gl(arch, "pinv")
    Ws = [arch.layout.unflatten(theta)[f"W{j}"] for j in range(1, len(E3_DIMS))]
    flat = lambda Ws: arch.layout.flatten({f"W{j + 1}": W for j, W in enumerate(Ws)})
    base = TeleportConfig(steps=steps, lr=lr, parameterisation="first_order", monotone=False)
    cfgs = {"symdisc_first_order_guard_off": replace(base, guard=LossGuard(rtol=math.inf, correct=False)),
            "symdisc_first_order": base, "symdisc_exp": replace(base, parameterisation="exp")}
    impls = {"reference": lambda: flat(reference_teleport(Ws, X, Y, lr, steps)),
             "reference_literal": lambda: flat(reference_teleport(Ws, X, Y, lr, steps, complement=False)),
             **{k: (lambda c=c: teleport(symmetry, theta, loss, X.T, c)) for k, c in cfgs.items()},
             "symdisc_first_order_guard_off_before": lambda: before(
                 lambda: teleport(symmetry, theta, loss, X.T, cfgs["symdisc_first_order_guard_off"]))}
    return theta, loss, impls


def e3_case(seed: int, lr: float, repeats: int) -> dict:
    """θ after each implementation against the reference's, and interleaved timings."""
    theta, loss, impls = e3_implementations(seed, lr)
    outputs = {k: _run(f) for k, f in impls.items()}  # also the warm-up
    ref = outputs["reference"][0]
    rec = {"lr": lr, "seed": seed, "loss_before": float(loss(theta)),
           "grad_norm_sq_before": float(grad(loss)(theta).pow(2).sum()), "impls": {}}
    ok = all(th is not None and torch.isfinite(th).all() for th, _ in outputs.values())
    for k, (th, info) in outputs.items():
        if th is None:
            rec["impls"][k] = {"error": info}
            continue
        entry = {"loss_change": float(loss(th) - loss(theta)),
                 "grad_norm_sq_after": float(grad(loss)(th).pow(2).sum())}
        if ref is not None:
            entry["theta_rel_diff_to_reference"] = float((th - ref).norm() / (ref - theta).norm())
        if info is not None:
            entry["guard_statuses"] = info
        rec["impls"][k] = entry
    if ref is not None:  # one step: the first-order θ + ξ_T and the exact (I + T)·θ differ by O(‖T‖²)
        _, _, one = e3_implementations(seed, lr, steps=1)
        ref1, sd1 = one["reference"](), one["symdisc_first_order_guard_off"]().theta
        rec["first_step_theta_rel_diff"] = float((sd1 - ref1).norm() / (ref1 - theta).norm())
    rec["same_theta"] = bool(ok) and rec["impls"]["symdisc_first_order_guard_off"]["theta_rel_diff_to_reference"] \
        <= THETA_RTOL
    if ok:  # time only runs that stay finite; interleaved, so load changes hit all alike
        times = {k: [] for k in impls}
        for _ in range(repeats):
            for k, f in impls.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        rec["timing"] = {k: _stats(v) for k, v in times.items()}
        t_ref = statistics.median(times["reference"])
        rec["time_ratio_over_reference"] = {k: statistics.median(v) / t_ref for k, v in times.items()}
    return rec


def e3_compare(seeds: list[int], lrs: list[float], repeats: int) -> dict:
    runs = [e3_case(seed, lr, repeats) for lr in lrs for seed in seeds]
    return {"setup": {"dims": E3_DIMS, "samples": E3_SAMPLES, "gd_lr": E3_GD_LR, "gd_steps": E3_GD_STEPS,
                      "teleport_steps": E3_STEPS, "teleport_lrs": lrs, "theta_rtol": THETA_RTOL,
                      "repeats": repeats, "dtype": "float64"}, "runs": runs, "gradient_step": gradient_step(repeats)}


def gradient_step(repeats: int) -> dict:
    """One ascent direction alone (seed 0): ∂J/∂T of the reference vs ∇_c J(m(c))|₀ of symdisc."""
    arch, theta, X, Y, loss = e3_problem(0)
    symmetry = hidden_layers_gl(arch, "pinv")
    Ws = [arch.layout.unflatten(theta)[f"W{j}"] for j in range(1, len(E3_DIMS))]
    objective = lambda th: grad(loss)(th).pow(2).sum()
    zero = torch.zeros(symmetry.num_generators, dtype=torch.float64)

    def reference():
        Ts = [torch.zeros(W.shape[0], W.shape[0], dtype=W.dtype, requires_grad=True) for W in Ws[:-1]]
        gWs = reference_action(Ws, Ts, X)
        dW = torch.autograd.grad(reference_loss(gWs, X, Y), gWs, create_graph=True)
        return torch.autograd.grad(sum(d.pow(2).sum() for d in dW), Ts)

    fns = {"reference": reference,
           "symdisc_first_order": lambda: grad(lambda c: objective(theta + symmetry.field(c, theta, X.T)))(zero),
           "symdisc_exp": lambda: grad(lambda c: objective(symmetry.act(c, theta, X.T)))(zero),
           "objective_only": lambda: objective(theta)}
    out = {}
    for k, f in fns.items():
        f()
        out[k] = _stats(_timed(f, repeats)[0])
    ref = torch.cat([d.reshape(-1) for d in reference()])
    return {**out, "first_order_vs_reference_rel_diff": float((fns["symdisc_first_order"]() - ref).norm() / ref.norm())}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=7, help="teleport events timed per optimizer on digits")
    p.add_argument("--transform-events", type=int, default=1,
                   help="events timed with the transform policy (a dense p×p solve per move: minutes each)")
    p.add_argument("--epochs", type=int, default=15, help="plain epochs timed per optimizer on digits")
    p.add_argument("--mnist-epochs", type=int, default=2, help="plain epochs timed on the 60k MNIST-shaped set "
                   "(0: skip it)")
    p.add_argument("--repeats", type=int, default=30, help="timed repeats per implementation on E3")
    p.add_argument("--seeds", type=int, default=5, help="E3 problems compared")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results" / "teleport_overhead.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="teleport along .* is not exact")
    load0 = os.getloadavg()
    digits = digits_overhead(args.events, args.transform_events, args.epochs)
    mnist_shape = digits_overhead(args.events, 0, args.mnist_epochs, "mnist-shape") if args.mnist_epochs else None
    e3 = e3_compare(list(range(args.seeds)), [E3_LR, E3_LR / 10], args.repeats)
    result = {
        "command": shlex.join(["python", "benchmarks/teleport_overhead.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "git_commit": _git_commit(),
        "torch_version": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "digits": digits, "mnist_shape": mnist_shape, "e3_reference": e3,
    }
    write_json(args.out, result)
    for label, r in digits["results"].items():
        print(f"digits {label:15s} event {r['event']['median_s']:.3f} s, epoch {r['epoch']['median_s']:.4f} s, "
              f"event/epoch {r['event_over_epoch']:.1f}, statuses {r['guard_statuses']}")
    for label, r in (mnist_shape or {"results": {}})["results"].items():
        print(f"mnist-shape {label:10s} event {r['event']['median_s']:.3f} s, epoch {r['epoch']['median_s']:.3f} s, "
              f"event/epoch {r['event_over_epoch']:.2f}")
    for r in e3["runs"]:
        print(f"E3 lr {r['lr']:g} seed {r['seed']}: same θ {r['same_theta']}, "
              f"ratios {r.get('time_ratio_over_reference')}")
    return result


if __name__ == "__main__":
    main()
