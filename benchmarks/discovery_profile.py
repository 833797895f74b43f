#!/usr/bin/env python
"""Profile of the discovery training step (not a test): ``cProfile`` over ``--steps`` steps of symdisc's trainer in
each phase, on the ``discovery_speed`` models (the tiny transformer: free generators; the MLP with p = 9900:
rank-1 generators), with each function's own time split into where it goes: the autograd engine (the step's
backward), the forward's tensor kernels (matrix products, einsum, elementwise), the draws of θ and data, the
optimizer, and the Python around them (torch.func's vmap/jvp machinery, the objective's bookkeeping).

    python benchmarks/discovery_profile.py [--models tiny-transformer,mlp] [--steps 20] [--threads 1]
                                           [--out benchmarks/results/discovery_profile.json]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header, profile_split, timed  # noqa: E402

BUCKETS = (("autograd engine: the step's backward pass", ("run_backward",)),
           ("draws of θ and data (samplers)", ("sample", "randn", "randperm", "manual_seed", "SeedSequence",
                                              "generate_state")),
           ("optimizer (geoopt RiemannianAdam / Adam, retraction, frozen rows)", ("torch/optim/", "geoopt/",
                                                                               "_restore_frozen")),
           ("tensor kernels of the forward (matmul, einsum, elementwise, reductions)",
            ("torch.mm>", "torch.bmm>", "addmm", "matmul", "einsum", "torch.tanh", "torch.exp", "linear>",
             "softmax", "torch.cat", "torch.stack", "pow'", "norm", "sum'", "mean'", "torch.sqrt",
             "linalg", "zoo/", "_VariableFunctions")))
OTHER = "other: Python (torch.func/vmap machinery, the objective's and the action's own code)"


def measure(task: dict) -> dict:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(task["threads"])
    threadpool_limits(limits=task["threads"], user_api="blas")
    from benchmarks.discovery_speed import _config, _trainer

    tr = _trainer("symdisc", _config(task["model"]), task["model"])
    out = {"model": task["model"], "p": tr.arch.num_params, "threads": torch.get_num_threads(), "phases": {}}
    for phase in ("warmup", "joint"):
        tr.step = 0 if phase == "warmup" else tr.warmup_steps
        tr.train_step()  # warm-up outside the profile
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        for _ in range(task["steps"]):
            tr.train_step()
        prof.disable()
        wall = time.perf_counter() - t
        out["phases"][phase] = {"steps": task["steps"], "wall_seconds": round(wall, 3),
                                "seconds_per_step": round(wall / task["steps"], 5),
                                **profile_split(prof, BUCKETS, OTHER, task["top"])}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tiny-transformer,mlp")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default="benchmarks/results/discovery_profile.json")
    args = ap.parse_args(argv)
    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    rows = [timed(measure, {"model": m, "steps": args.steps, "threads": args.threads, "top": args.top}, m,
                  lambda r: {ph: v["split"] for ph, v in r["phases"].items()}) for m in args.models.split(",") if m]
    write_json(args.out, {**header(args.threads), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "runs": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
