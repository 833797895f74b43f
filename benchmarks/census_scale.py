#!/usr/bin/env python
"""Benchmark of the census at p ≈ 10⁴: today's dense SVD against the Gram method, on the same (θ, X) (not a test).

Main point: the committed case of census_mlp.py — MLP 64-128-10 ReLU with biases, p = 9610, B = 1024, output
Jacobian 10240 × 9610, null dimension 128 = the orbit dimension of the hidden-unit rescalings.  Every
measurement runs in a fresh ``spawn`` subprocess (wall time, peak RSS minus the baseline after imports,
model build and a small warm-up census of both methods; threads set explicitly; 1-min load average
before and after):

* ``old``       ``census(level="output", method="svd", rtol=1e-10)``: today's path (dense svdvals, fixed cut);
* ``new``       ``census(level="output")``: the default (method auto → gram at this size, gap cut);
* ``split``     the new path's parts on the census's (θ, X): Jacobian blocks, dsyrk, dpstrf, refinement, bottom SVD;
* variants that lost, same (θ, X): ``eigvalsh`` (full Gram spectrum, float64), ``float32`` (ssyrk + spstrf
  + eigvalsh in float32, unrefined), ``schur`` (the last layer's block eliminated exactly: Schur complement
  of the Gram on the other 8320 columns, then dpstrf);
* ``crossover``  svd vs gram census wall time at smaller sizes (for ``auto``'s threshold);
* ``loss``       the loss level (N = B = 1024 < p: the JJᵀ Gram) old vs new;
* ``layernorm``  counts of svd vs gram on the LayerNorm random-γ points of tests/test_census_gap.py.

    python benchmarks/census_scale.py [--threads 1[,2]] [--kinds old,new,split,eigvalsh,float32,schur,crossover,loss,
                                      layernorm] [--dims 64,128,10] [--batch-size 1024]
                                      [--out benchmarks/results/census_scale.json]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, peak_rss_mib  # noqa: E402
from benchmarks.record import timed as record_timed  # noqa: E402

DIMS, BATCH = "64,128,10", 1024
ALL_KINDS = ("old", "new", "split", "eigvalsh", "float32", "schur", "crossover", "loss", "layernorm")
CROSSOVER = (("8,16,8", 64), ("16,32,8", 128), ("32,64,10", 288), ("48,96,10", 576))  # N = out·B ≥ p − hidden




def _setup(task: dict):
    import torch

    import symdisc

    torch.set_num_threads(task["threads"])
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=task["threads"], user_api="blas")  # scipy's / numpy's OpenBLAS too (the variants)
    arch = symdisc.zoo.get("mlp", dims=task.get("dims", DIMS), act="relu", bias=True).to(dtype=torch.float64)
    small = symdisc.zoo.get("mlp", dims="8,16,4", act="relu", bias=True)
    for m in ("svd", "gram"):  # LAPACK, scipy, torch.func warm-up: in the baseline, not the peak
        symdisc.census(small, [64], level="output", points=1, method=m)
    return torch, symdisc, arch


def measure(task: dict) -> dict:
    """Runs in a fresh subprocess: one measurement."""
    torch, symdisc, arch = _setup(task)
    from symdisc.architecture import make_generator

    kind, B, seed = task["kind"], task.get("batch_size", BATCH), task.get("seed", 0)
    baseline = peak_rss_mib()
    out: dict = {"kind": kind, "threads": torch.get_num_threads(), "num_params": arch.num_params,
                 "baseline_rss_mib": round(baseline, 1)}
    t0 = time.perf_counter()
    if kind in ("old", "new", "crossover_svd", "crossover_gram", "loss_old", "loss_new"):
        level = "loss" if kind.startswith("loss") else "output"
        kw = {"old": dict(method="svd", rtol=1e-10), "loss_old": dict(method="svd", rtol=1e-10),
              "crossover_svd": dict(method="svd"), "crossover_gram": dict(method="gram")}.get(kind, {})
        res = symdisc.census(arch, [B], level=level, points=1, seed=seed, **kw)
        out["wall_seconds"] = round(time.perf_counter() - t0, 3)
        row = res.rows[0]
        out.update({k: getattr(row, f"{level}_{k}") for k in ("null_dim", "gap_decades", "ambiguous", "methods",
                                                              "cut_rtols", "unexplained")},
                   cut=res.cut, rtol=res.rtol, known_orbit_dim=res.known_orbit_dim)
    else:
        theta = arch.sample_params(make_generator(seed, 0, 0))  # census(points=1)'s point
        X, _ = arch.sample_data(B, make_generator(seed, 1, 0, B))
        out.update(globals()[f"_{kind}"](torch, arch, theta, X))
    out["peak_rss_mib"] = round(peak_rss_mib() - baseline, 1)
    return out


def _timer():
    parts: dict = {}

    def tm(name, f):
        t = time.perf_counter()
        r = f()
        parts[name] = round(parts.get(name, 0.0) + time.perf_counter() - t, 3)
        return r

    return parts, tm


def _count(torch, s, p, rows, dtype=None):
    from symdisc.linalg import gap_cut

    c = gap_cut(s, p, rows, dtype=dtype or torch.float64)
    return {"null_dim": p - c.rank, "gap_decades": round(c.gap_decades, 3) if c.gap_decades else None,
            "ambiguous": c.ambiguous, "runner_up_null_dim": None if c.runner_up_rank is None else p - c.runner_up_rank}


def _split(torch, arch, theta, X) -> dict:
    """The new path's parts (symdisc.spectrum's gram branch, unrolled)."""
    import symdisc.gram as gm
    from symdisc.jacobians import jacobian_row_blocks, jacobian_times, jacobian_transpose_times
    from symdisc.spectrum import COLUMN_ELEMENTS, _block_elements

    p, N = arch.num_params, X.shape[0] * arch.forward(theta, X[:1]).numel()
    parts, tm = _timer()
    blocks = jacobian_row_blocks(arch, theta, X, None, "output", max(1, _block_elements(p) // (10 * p)))

    def timed_blocks():
        while (b := tm("jacobian_blocks", lambda: next(blocks, None))) is not None:
            yield b

    G = tm("accumulate_total", lambda: gm.accumulate_gram(timed_blocks(), p))
    parts["dsyrk"] = round(parts["accumulate_total"] - parts["jacobian_blocks"], 3)
    cols = max(1, COLUMN_ELEMENTS // N)
    times = lambda V: tm("jvp", lambda: jacobian_times(arch, theta, X, V, chunk_size=cols))
    ttimes = lambda E: tm("vjp", lambda: jacobian_transpose_times(arch, theta, X, E, chunk_size=cols))
    top, V, solve = tm("dpstrf_and_basis", lambda: gm._cholesky(G, gm.GRAM_TOL))
    for _ in range(gm.REFINE_STEPS):
        H = ttimes(times(V))
        V = V - tm("triangular_solves", lambda H=H: solve(H))
    Q = tm("qr", lambda: torch.linalg.qr(V).Q)
    bottom = tm("bottom_svd", lambda: torch.linalg.svdvals(times(Q)))
    smax = tm("power_iteration", lambda: gm.top_singular_value(times, ttimes, p))
    s = torch.sort(torch.cat([top, bottom]), descending=True).values
    s[0] = max(float(s[0]), smax)
    return {"seconds": parts, "candidate_dim": int(V.shape[1]),
            "bottom_log10_max_over_sigma_max": round(float((bottom.max() / smax).log10()), 2),
            "top_log10_min_over_sigma_max": round(float((top.min() / smax).log10()), 2), **_count(torch, s, p, N)}


def _full_gram(torch, arch, theta, X, tm):
    import scipy.linalg

    from symdisc.jacobians import output_jacobian

    J = tm("jacobian", lambda: output_jacobian(arch, theta, X))
    G = tm("dsyrk", lambda: scipy.linalg.blas.dsyrk(1.0, J.numpy().T, trans=0, lower=0))
    return J, G


def _eigvalsh(torch, arch, theta, X) -> dict:
    """Gram + eigvalsh (float64): the full spectrum of G, σ = √|λ| (resolution ≈ √ε·σ_max, unrefined)."""
    import scipy.linalg

    parts, tm = _timer()
    J, G = _full_gram(torch, arch, theta, X, tm)
    lam = tm("eigvalsh", lambda: scipy.linalg.eigh(G, lower=False, eigvals_only=True, driver="evd",
                                                      overwrite_a=True, check_finite=False))
    s = torch.from_numpy(abs(lam)).sqrt()
    return {"seconds": parts, **_count(torch, s, arch.num_params, J.shape[0])}


def _float32(torch, arch, theta, X) -> dict:
    """float32 Gram (ssyrk) with spstrf and eigvalsh, unrefined: what a float32 pass resolves alone."""
    import scipy.linalg

    parts, tm = _timer()
    from symdisc.jacobians import output_jacobian

    J = tm("jacobian", lambda: output_jacobian(arch, theta, X)).float()
    G = tm("ssyrk", lambda: scipy.linalg.blas.ssyrk(1.0, J.numpy().T, trans=0, lower=0))
    G2 = G.copy(order="F")
    c, piv, r, info = tm("spstrf", lambda: scipy.linalg.lapack.spstrf(G2, lower=0, tol=1e-38, overwrite_a=1))
    lam = tm("eigvalsh_f32", lambda: scipy.linalg.eigh(G, lower=False, eigvals_only=True, driver="evd",
                                                          check_finite=False))
    s = torch.from_numpy(abs(lam).astype("float64")).sqrt()
    pivots = torch.from_numpy(abs(c.diagonal()[:r]).astype("float64"))
    return {"seconds": parts, "eigvalsh": _count(torch, s, arch.num_params, J.shape[0], torch.float32),
            "spstrf_pivots": _count(torch, pivots, arch.num_params, J.shape[0], torch.float32)}


def _schur(torch, arch, theta, X) -> dict:
    """Structure: f = W₂ h + b₂, so the last layer's columns are I_out ⊗ [h, 1]; rank J = rank J₂ + rank of the
    Schur complement S = G₁₁ − G₁₂ G₂₂⁻¹ G₂₁ (G₂₂ = I_out ⊗ [H 1]ᵀ[H 1], invertible for generic data), factored
    by dpstrf.  Saves the last layer's share of the Gram and of the factorisation (8320 of 9610 columns)."""
    import scipy.linalg

    from symdisc.jacobians import output_jacobian

    parts, tm = _timer()
    J = tm("jacobian", lambda: output_jacobian(arch, theta, X))
    last = sum(arch.layout.slice(n).stop - arch.layout.slice(n).start for n in ("W2", "b2"))
    p1 = arch.num_params - last
    J1, J2 = J[:, :p1].contiguous(), J[:, p1:].contiguous()
    G11 = tm("dsyrk_G11", lambda: scipy.linalg.blas.dsyrk(1.0, J1.numpy().T, trans=0, lower=0))
    G12 = tm("gemm_G12", lambda: J1.T @ J2)
    L = tm("chol_G22", lambda: torch.linalg.cholesky(J2.T @ J2))
    M = tm("solve", lambda: torch.linalg.solve_triangular(L, G12.T, upper=False))  # L⁻¹ G₂₁
    S = tm("schur_update", lambda: scipy.linalg.blas.dsyrk(-1.0, M.numpy(), beta=1.0, c=G11, trans=1, lower=0,
                                                            overwrite_c=1))
    c, piv, r, info = tm("dpstrf", lambda: scipy.linalg.lapack.dpstrf(S, lower=0, tol=1e-10 * S.diagonal().max(),
                                                                      overwrite_a=1))
    return {"seconds": parts, "reduced_columns": p1, "rank_J2": last, "rank_schur_at_pstrf_tol": int(r),
            "null_dim_at_pstrf_tol": arch.num_params - last - int(r)}


def timed(task: dict) -> dict:
    return record_timed(measure, task)


def layernorm_counts() -> dict:
    """svd vs gram on the LayerNorm random-γ points where the fixed rtol 1e-10 over-counts (in this process)."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import symdisc
    from tests.test_census_gap import random_gamma

    torch.set_num_threads(1)
    raw, clean = random_gamma(symdisc.zoo.get("layernorm-mlp", dims="16,8,4", act="relu", batch=64), 5.0)
    out = {"case": "layernorm-mlp dims 16,8,4 relu, γ = ±10^U(−5, 5), B = 64, seed 0, 3 points"}
    for label, arch, kw in (("rtol_1e-10_svd", raw, dict(rtol=1e-10, method="svd")),
                            ("rtol_1e-12_svd", raw, dict(rtol=1e-12, method="svd")),
                            ("gap_svd", raw, dict(method="svd")), ("gap_gram", raw, dict(method="gram")),
                            ("clean_gap_svd", clean, dict(method="svd"))):
        row = symdisc.census(arch, [64], level="output", points=3, seed=0, **kw).rows[0]
        out[label] = {"null_dims": row.output_null_dims, "ambiguous": row.output_ambiguous,
                      "gap_decades": row.output_gap_decades}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1", help="comma-separated torch thread counts to measure old/new at")
    ap.add_argument("--kinds", default=",".join(ALL_KINDS))
    ap.add_argument("--dims", default=DIMS, help="main point's MLP widths (a smoke run: 16,32,8)")
    ap.add_argument("--batch-size", type=int, default=BATCH)
    ap.add_argument("--out", default="benchmarks/results/census_scale.json")
    args = ap.parse_args(argv)
    import torch

    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    kinds = [k for k in args.kinds.split(",") if k]
    main_point = {"dims": args.dims, "batch_size": args.batch_size}
    threads = [int(t) for t in args.threads.split(",")]
    started, results = time.perf_counter(), {}
    for t in threads:
        for kind in ("old", "new", "split", "eigvalsh", "float32", "schur"):
            if kind in kinds and (t == threads[0] or kind in ("old", "new")):
                results[f"{kind}_threads{t}"] = timed({"kind": kind, "threads": t, **main_point})
        if "old" in kinds and "new" in kinds:
            o, n = results[f"old_threads{t}"], results[f"new_threads{t}"]
            results[f"speedup_threads{t}"] = {"old_seconds": o["wall_seconds"], "new_seconds": n["wall_seconds"],
                                              "ratio": round(o["wall_seconds"] / n["wall_seconds"], 2),
                                              "same_null_dim": o["null_dim"] == n["null_dim"],
                                              "equals_known_orbit_dim": n["null_dim"] == n["known_orbit_dim"]}
    if "loss" in kinds:
        results["loss"] = {k: timed({"kind": f"loss_{k}", "threads": threads[0], **main_point}) for k in ("old", "new")}
    if "crossover" in kinds:
        results["crossover"] = [{"dims": d, "batch_size": b, **{m: timed({"kind": f"crossover_{m}", "dims": d,
                                                                         "batch_size": b, "threads": threads[0]})
                                                              for m in ("svd", "gram")}} for d, b in CROSSOVER]
    if "layernorm" in kinds:
        results["layernorm"] = layernorm_counts()
    report = {
        "benchmark": "census_scale",
        "command": " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0]) if sys.argv[0] else
                                                      "census_scale.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "os_cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "device": "cpu", "dtype": "float64",
        "model": f"mlp {args.dims} relu bias, B = {args.batch_size}, seed 0, one point (the census's streams)",
        "memory_note": "peak_rss_mib = ru_maxrss at the end minus after imports, model build and a warm-up census, "
                       "in a fresh spawn subprocess per measurement",
        "results": results, "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
