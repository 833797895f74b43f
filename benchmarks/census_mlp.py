#!/usr/bin/env python
"""Benchmark of the symmetry census on ReLU MLPs with biases (not a test).

Main point: MLP 64-128-10, p = 9610, at a batch whose output Jacobian has N = B·10 ≥ p − 128 rows
(B = 1024 by default), so the output null dimension reaches the data-independent value, the
orbit dimension 128 of the hidden-unit rescalings.  A smaller point (32-64-10, p = 2762) at about
the same N/p shows the scaling.

Every measurement runs in a fresh ``spawn`` subprocess, which reports wall times and its peak
resident memory (``ru_maxrss``) minus its baseline after imports, model construction and a tiny
warm-up:

* ``split_output``: ``output_jacobian`` and ``null_dimension`` (the SVD) timed separately, on the
  same (θ, X) streams as ``census`` uses;
* ``census_output``: one end-to-end ``symdisc.census(level="output", method="svd", rtol=1e-10)`` call (the
  dense-SVD path with the fixed cut, the census's only path when this benchmark was recorded);
* ``census_loss``: the same at ``level="loss"`` (B×p Jacobian, cheap);
* ``split_loss``: ``loss_jacobian`` and ``null_dimension`` timed separately.

    python benchmarks/census_mlp.py [--batch-size 1024] [--points 1] [--device cpu]
                                    [--out benchmarks/results/census_mlp.json]
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

KINDS = ("split_output", "census_output", "split_loss", "census_loss")




def mlp_params(dims: list[int]) -> int:
    return sum(dims[j] * dims[j - 1] + dims[j] for j in range(1, len(dims)))


def measure(task: dict) -> dict:
    """Runs in a fresh subprocess: one measurement of ``task['kind']`` for one model."""
    import torch

    import symdisc
    from symdisc.architecture import make_generator
    from symdisc.jacobians import loss_jacobian, output_jacobian
    from symdisc.linalg import DEFAULT_RTOL, null_dimension

    if task["threads"]:
        torch.set_num_threads(task["threads"])
    device, kind, B, seed, points = task["device"], task["kind"], task["batch_size"], task["seed"], task["points"]
    cuda = device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    arch = symdisc.zoo.get("mlp", dims=task["dims"], act="relu", bias=True).to(dtype=torch.float64, device=device)
    p = arch.num_params
    # Warm-up on 2 samples so that lazily loaded kernels / LAPACK are in the baseline, not the peak.
    th0 = arch.sample_params(make_generator(99, 0))
    X0, Y0 = arch.sample_data(2, make_generator(99, 1))
    null_dimension(output_jacobian(arch, th0, X0))
    null_dimension(loss_jacobian(arch, th0, X0, Y0))
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    baseline = peak_rss_mib()
    out: dict = {"kind": kind, "num_params": p, "threads": torch.get_num_threads(),
                 "baseline_rss_mib": round(baseline, 1)}

    if kind.startswith("split_"):
        level = kind.removeprefix("split_")
        jac_s, svd_s, dims_, gaps, rss_jac = [], [], [], [], []
        for j in range(points):  # the same (θ_j, X) streams as census(batch_sizes=[B], points=points)
            theta = arch.sample_params(make_generator(seed, 0, j))
            X, Y = arch.sample_data(B, make_generator(seed, 1, j, B))
            sync()
            t0 = time.perf_counter()
            J = output_jacobian(arch, theta, X) if level == "output" else loss_jacobian(arch, theta, X, Y)
            sync()
            t1 = time.perf_counter()
            rss_jac.append(peak_rss_mib())
            d, gap = null_dimension(J, DEFAULT_RTOL)
            sync()
            t2 = time.perf_counter()
            out["jacobian_shape"] = list(J.shape)
            del J
            jac_s.append(round(t1 - t0, 4))
            svd_s.append(round(t2 - t1, 4))
            dims_.append(d)
            gaps.append(None if gap is None else round(gap, 3))
        out.update(jacobian_seconds=jac_s, svd_seconds=svd_s, null_dims=dims_, gap_decades=gaps,
                   peak_rss_after_jacobian_mib=round(max(rss_jac) - baseline, 1))
    else:
        level = kind.removeprefix("census_")
        sync()
        t0 = time.perf_counter()
        # today's path as measured on 2026-11-23: dense SVD, fixed cut rtol 1e-10 (census_scale.py: the new default)
        res = symdisc.census(arch, [B], level=level, points=points, seed=seed, method="svd", rtol=1e-10)
        sync()
        out["wall_seconds"] = round(time.perf_counter() - t0, 4)
        row = res.row(B)
        out.update(
            census_seconds=res.seconds,
            row_seconds=row.seconds,  # Jacobians + SVDs (+ data sampling) for this batch size
            null_dim=row.output_null_dim if level == "output" else row.loss_null_dim,
            null_dims=row.output_null_dims if level == "output" else row.loss_null_dims,
            gap_decades=row.output_gap_decades if level == "output" else row.loss_gap_decades,
            known_orbit_dim=res.known_orbit_dim,
            known_loss_orbit_dim=res.known_loss_orbit_dim,
            known_symmetries=res.known_symmetries,
        )
    out["peak_rss_mib"] = round(peak_rss_mib() - baseline, 1)
    if cuda:
        out["cuda_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def run_fresh(task: dict) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        return ex.submit(measure, task).result()


def bench_point(dims: list[int], batch_size: int, args) -> dict:
    p, out_dim, hidden = mlp_params(dims), dims[-1], sum(dims[1:-1])
    N = batch_size * out_dim
    point = {
        "dims": dims,
        "act": "relu",
        "bias": True,
        "num_params": p,
        "batch_size": batch_size,
        "output_rows_N": N,
        "rows_needed_p_minus_orbit": p - hidden,
        "reaches_data_independent_dim": N >= p - hidden,
        "theoretical_output_jacobian_bytes": 8 * N * p,
        "theoretical_output_jacobian_mib": round(8 * N * p / 2**20, 1),
        "theoretical_loss_jacobian_mib": round(8 * batch_size * p / 2**20, 1),
        "svd_flop_scale_N_p_min": N * p * min(N, p),
    }
    for kind in KINDS:
        task = {"kind": kind, "dims": ",".join(map(str, dims)), "batch_size": batch_size, "points": args.points,
                "seed": args.seed, "device": args.device, "threads": args.threads}
        t0, load0 = time.perf_counter(), os.getloadavg()[0]
        r = run_fresh(task)
        r["loadavg_1min_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        name = "-".join(map(str, dims))
        print(f"  {name} B={batch_size} {kind}: {r}  ({time.perf_counter() - t0:.1f} s incl. spawn)", flush=True)
        point[kind] = r
    c, peak = point["census_output"], max(point["split_output"]["peak_rss_mib"], point["census_output"]["peak_rss_mib"])
    point["summary"] = {
        "output_null_dim": c["null_dim"],
        "output_gap_decades": c["gap_decades"],
        "loss_null_dim": point["census_loss"]["null_dim"],
        "loss_gap_decades": point["census_loss"]["gap_decades"],
        "known_orbit_dim": c["known_orbit_dim"],
        "known_loss_orbit_dim": c["known_loss_orbit_dim"],
        "output_null_dim_equals_known": c["null_dim"] == c["known_orbit_dim"],
        "split_null_dims_agree_with_census": point["split_output"]["null_dims"] == c["null_dims"],
        "jacobian_seconds": min(point["split_output"]["jacobian_seconds"]),
        "svd_seconds": min(point["split_output"]["svd_seconds"]),
        "census_output_wall_seconds": c["wall_seconds"],
        "census_loss_wall_seconds": point["census_loss"]["wall_seconds"],
        "output_peak_rss_mib": peak,
        "output_peak_rss_over_jacobian": round(peak / point["theoretical_output_jacobian_mib"], 2),
        "loss_peak_rss_mib": point["census_loss"]["peak_rss_mib"],
    }
    return point


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=1024, help="batch of the main 64-128-10 point (default 1024)")
    ap.add_argument("--small-batch-size", type=int, default=288,
                    help="batch of the small 32-64-10 point (default 288: N = 2880 ≥ p − 64 = 2698)")
    ap.add_argument("--points", type=int, default=1, help="random (θ, X) per measurement (census points)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads in the workers (0: torch's default, one per core); use 1 when "
                         "other processes keep a core busy: MKL's multi-threaded SVD then slows down 10-100×")
    ap.add_argument("--skip-small", action="store_true", help="measure only the 64-128-10 point")
    ap.add_argument("--out", default="benchmarks/results/census_mlp.json")
    args = ap.parse_args(argv)

    import torch

    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    started = time.perf_counter()
    points_spec = [([64, 128, 10], args.batch_size)]
    if not args.skip_small:
        points_spec.insert(0, ([32, 64, 10], args.small_batch_size))
    results = []
    for dims, b in points_spec:
        print(f"MLP {'-'.join(map(str, dims))}, B = {b}", flush=True)
        results.append(bench_point(dims, b, args))

    scaling = None
    if len(results) == 2:
        s, m = results
        sm, mm = s["summary"], m["summary"]
        scaling = {
            "memory_ratio_theory_Np": round(
                m["theoretical_output_jacobian_bytes"] / s["theoretical_output_jacobian_bytes"], 2),
            "memory_ratio_measured": round(mm["output_peak_rss_mib"] / sm["output_peak_rss_mib"], 2),
            "svd_time_ratio_theory_Np_min": round(m["svd_flop_scale_N_p_min"] / s["svd_flop_scale_N_p_min"], 1),
            "svd_time_ratio_measured": round(mm["svd_seconds"] / sm["svd_seconds"], 1),
            "jacobian_time_ratio_measured": round(mm["jacobian_seconds"] / sm["jacobian_seconds"], 1),
        }
    report = {
        "benchmark": "census_mlp",
        "command": " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0]) if sys.argv[0] else
                                                      "census_mlp.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "torch_num_threads": results[-1]["census_output"]["threads"],
        "os_cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "device": args.device,
        "dtype": "float64",
        "rtol": 1e-10,
        "points": args.points,
        "seed": args.seed,
        "memory_note": "peak_rss_mib = ru_maxrss at the end minus ru_maxrss after imports, model build and warm-up, "
                       "in a fresh spawn subprocess per measurement",
        "results": results,
        "scaling_small_to_main": scaling,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
