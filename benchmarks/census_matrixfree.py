#!/usr/bin/env python
"""Benchmark of the matrix-free checks at p ≈ 1.9·10⁶ (not a test): ``symdisc.matrixfree`` on a large MLP.

Model: ``symdisc.zoo.get("mlp", dims="784,1024,1024,10", act="relu")`` (no biases, p = 1 861 632), float64,
one point (θ, X) of the census's streams (seed 0) at batch B (default 64: N = 640 output rows).  J (640 × 1.86M,
9 GB) is never formed.  Each measurement runs in a fresh ``spawn`` subprocess with the thread count set
explicitly; it reports wall time and peak memory (ru_maxrss growth over the subprocess's baseline after
imports, model build, (θ, X) and a small warm-up check):

* ``known``    ``check_fields`` of all 2048 known fields (rescale(h1), rescale(h2)), each from
               ``Symmetry.field(e_h, θ)`` (one jvp), J ξ by vmapped jvps in chunks: expected ≤ ~1e-12;
* ``random``   the negative control: 32 Gaussian random directions;
* ``broken``   a harder negative control: 32 rescaling fields with the consumer's part sign-flipped
               (W₁ row j and W₂ column j both scaled up: the function changes);
* ``subspace`` ``subspace_null_dimension`` on [16 known fields | 16 random directions]: expected 16.

    python benchmarks/census_matrixfree.py [--batch-size 64] [--threads 1] [--kinds known,random,broken,subspace]
                                           [--out benchmarks/results/census_matrixfree.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import multiprocessing
import os
import platform
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, peak_rss_mib  # noqa: E402

DIMS = "784,1024,1024,10"
KINDS = ("known", "random", "broken", "subspace")




def _summary(r) -> dict:
    d = r.to_dict()
    res = d.pop("residuals")
    d.pop("field_norms")
    d["num_fields"] = len(d.pop("names"))
    d["residuals_first_8"] = res[:8]
    d["min_residual"] = min(res)
    return d


def measure(task: dict) -> dict:
    """Runs in a fresh subprocess: one measurement."""
    import torch
    from threadpoolctl import threadpool_limits

    import symdisc
    from symdisc.architecture import make_generator
    from symdisc.matrixfree import check_fields, subspace_null_dimension
    from symdisc.symmetry.known import continuous_symmetries

    torch.set_num_threads(task["threads"])
    threadpool_limits(limits=task["threads"], user_api="blas")
    arch = symdisc.zoo.get("mlp", dims=DIMS, act="relu").to(dtype=torch.float64)
    B, kind = task["batch_size"], task["kind"]
    theta = arch.sample_params(make_generator(0, 0, 0))
    X, _ = arch.sample_data(B, make_generator(0, 1, 0, B))
    syms = continuous_symmetries(arch)
    check_fields(arch, theta, X[:2], torch.zeros(arch.num_params, 1, dtype=torch.float64), power_steps=1)  # warm-up
    baseline = peak_rss_mib()
    out = {"kind": kind, "threads": torch.get_num_threads(), "num_params": arch.num_params, "batch_size": B,
           "rows": B * 10, "known_symmetries": [s.name for s in syms], "baseline_rss_mib": round(baseline, 1)}
    g = torch.Generator().manual_seed(1)
    t0 = time.perf_counter()
    if kind == "known":
        out.update(_summary(check_fields(arch, theta, X, syms)))
    elif kind == "random":
        out.update(_summary(check_fields(arch, theta, X, torch.randn(arch.num_params, 32, generator=g,
                                                                     dtype=torch.float64))))
    elif kind == "broken":
        w2 = arch.layout.slice("W2")
        cols = []
        for h in range(32):  # rescale(h1)[h]: W1 row h scaled by e^t, W2 column h by e^{-t}; flip the latter
            e = torch.zeros(syms[0].num_generators, dtype=torch.float64)
            e[h] = 1.0
            xi = syms[0].field(e, theta)
            xi[w2] = -xi[w2]
            cols.append(xi)
        out.update(_summary(check_fields(arch, theta, X, torch.stack(cols, dim=1))))
    elif kind == "subspace":
        fields = []
        for h in range(16):
            e = torch.zeros(syms[0].num_generators, dtype=torch.float64)
            e[h] = 1.0
            fields.append(syms[0].field(e, theta))
        V = torch.cat([torch.stack(fields, dim=1), torch.randn(arch.num_params, 16, generator=g, dtype=torch.float64)],
                      dim=1)
        s = subspace_null_dimension(arch, theta, X, basis=V).to_dict()
        s["singular_values"] = [f"{x:.3e}" for x in s["singular_values"]]
        out.update(s)
    out["wall_seconds"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mib_over_baseline"] = round(peak_rss_mib() - baseline, 1)
    return out


def run_fresh(task: dict) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        return ex.submit(measure, task).result()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--out", default="benchmarks/results/census_matrixfree.json")
    args = ap.parse_args(argv)
    import torch

    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    started, results = time.perf_counter(), {}
    for kind in [k for k in args.kinds.split(",") if k]:
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        r = run_fresh({"kind": kind, "batch_size": args.batch_size, "threads": args.threads})
        r["loadavg_1min_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        print(f"  {kind}: {r}  ({time.perf_counter() - t0:.1f} s incl. spawn)", flush=True)
        results[kind] = r
    report = {
        "benchmark": "census_matrixfree",
        "command": " ".join(shlex.quote(a) for a in [
            "python", os.path.relpath(sys.argv[0]) if sys.argv[0] else "census_matrixfree.py",
            *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "os_cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "device": "cpu", "dtype": "float64",
        "model": f"mlp {DIMS} relu (no biases), seed 0, one point",
        "memory_note": "peak_rss_mib_over_baseline = ru_maxrss at the end minus after imports, model build, (θ, X) "
                       "and a warm-up, in a fresh spawn subprocess per measurement (θ and X are in the baseline); "
                       "peak_memory_mib = the same growth during the check_fields / subspace_null_dimension call",
        "results": results, "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
