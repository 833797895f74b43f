#!/usr/bin/env python
"""Profile of RR's HVP loop (not a test): ``cProfile`` over one GetRidges solve — the 5 most negative eigenpairs by
Lanczos (``most_negative``) on the MLP 64-h-10 of ``rr_eigen.py`` (digits, float64, fan-in θ of seed 0) — with the
time split into where it goes (each profiled function's own time, by ``BUCKETS``): the autograd engine (the
HVP's backward pass), matrix products outside it, elementwise kernels, ARPACK's own iterations, and the Python
around them (torch.func's vmap/jvp machinery, the operator, numpy ↔ torch).  ``--compile`` profiles the
compiled HVP as well (compiled before the profile starts).

    python benchmarks/rr_profile.py [--width 128] [--threads 1] [--compile] [--top 15]
                                    [--out benchmarks/results/rr_profile.json]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header, profile_split  # noqa: E402
from benchmarks.rr_eigen import _setup  # noqa: E402

# where a profiled function's own time goes (first match on "file:function")
BUCKETS = (("autograd engine: the HVP's backward pass (its matmuls and elementwise kernels)", ("run_backward",)),
           ("matrix products outside the engine (the forward's @ in zoo/, mm, bmm, addmm)",
            ("zoo/", "torch.mm>", "torch.bmm>", "addmm", "matmul")),
           ("elementwise kernels (tanh, cross-entropy, isfinite; inductor's fused kernels)",
            ("torch.tanh", "cross_entropy", "kernel.kernel", "isfinite")),
           ("ARPACK iterations", ("arpack",)))
OTHER = "other: Python (torch.func/vmap and dynamo machinery, the operator, numpy/torch conversion)"


def measure(task: dict) -> dict:
    torch, arch, theta, loss = _setup(task)
    from symdisc.ridge import HessianOperator, most_negative

    if task["compile"]:  # compile outside the profile: its one-off cost is in compile_trial.json
        HessianOperator(loss, theta, compile=True).matvec(torch.ones_like(theta))
    op = HessianOperator(loss, theta, compile=task["compile"])
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    pairs = most_negative(op, 5, "lanczos", generator=torch.Generator().manual_seed(0))
    prof.disable()
    wall = time.perf_counter() - t
    return {"p": arch.num_params, "width": task["width"], "compiled": task["compile"], "threads": task["threads"],
            "wall_seconds": round(wall, 3), "hvps": op.hvps, "seconds_per_hvp": round(wall / op.hvps, 5),
            "values": pairs.values.tolist(), **profile_split(prof, BUCKETS, OTHER, task["top"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="profile the compiled HVP (HessianOperator(compile=True))")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default="benchmarks/results/rr_profile.json")
    args = ap.parse_args(argv)
    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    rows = []
    for compiled in ([False, True] if args.compile else [False]):
        from benchmarks.record import timed

        task = {"width": args.width, "threads": args.threads, "compile": compiled, "top": args.top}
        rows.append(timed(measure, task, f"compile={compiled}", lambda r: {k: r[k] for k in ("wall_seconds", "hvps",
                                                                                             "split")}))
    write_json(args.out, {**header(args.threads), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "runs": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
