#!/usr/bin/env python
"""Benchmark of RR's GetRidges eigensolvers (not a test): the k most negative Hessian eigenpairs by Lanczos
(ARPACK ``eigsh``) and LOBPCG (scipy) on Hessian-vector products against dense ``eigh`` of the Hessian formed
by p HVPs (``symdisc.ridge.most_negative``), for MLPs 64-h-10 (tanh, biases, cross-entropy) on the full digits
training batch (1,348 × 64, float64), p = 75h + 10 from ≈ 10³ to ≈ 10⁵; and one HVP's cost as a multiple of one
gradient (forward-over-reverse ``torch.func`` HVP vs ``torch.func.grad``; curvlinops reports ≈ 3.2× for
ResNet-18).

Every measurement runs in a fresh ``spawn`` subprocess with torch and BLAS threads set explicitly; it records
wall seconds, HVPs, peak RSS (``ru_maxrss`` at the end minus after imports, data, model and one warm-up HVP) and
the 1-min load average before and after.  The point θ is the fan-in initialisation of seed 0 (a generic
point: the ε·N(0, 1) start of rr_digits has width-fold degenerate clusters, where Krylov solvers slow down —
that case is in experiments/results/ridge/rr_digits.json's eigen check).  Dense runs only for p ≤
``--dense-max`` (the p×p Hessian and eigh's workspace: 8p² bytes each, and p HVPs): above it the row says
"skipped".  Lanczos and LOBPCG results are checked against dense where dense ran (max |Δλ|); both run with
``most_negative``'s defaults (tol 1e-10, residual check 1e-6·‖H‖, LOBPCG capped at 500 block iterations), so a
"failed" cell is the library refusing a non-converged pair.

    python benchmarks/rr_eigen.py [--widths 16,32,64,128,256,512,1333] [--k 5] [--dense-max 5000]
                                  [--threads 1] [--out benchmarks/results/rr_eigen.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header, peak_rss_mib  # noqa: E402
from benchmarks.record import timed as record_timed  # noqa: E402

WIDTHS = "16,32,64,128,256,512,1333"


def _setup(task: dict):
    import torch

    torch.set_num_threads(task["threads"])
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=task["threads"], user_api="blas")
    import symdisc
    from symdisc.data import digits
    from symdisc.ridge import HessianOperator

    d = digits().to(dtype=torch.float64)
    arch = symdisc.zoo.get("mlp", dims=f"64,{task['width']},10", act="tanh", bias=True,
                           loss="cross_entropy").to(dtype=torch.float64)
    theta = arch.sample_params(symdisc.make_generator(0, 0))
    loss = lambda th: arch.batch_loss(th, d.X_train, d.y_train)
    HessianOperator(loss, theta).matvec(torch.ones_like(theta))  # warm-up: torch.func, BLAS
    return torch, arch, theta, loss


def measure(task: dict) -> dict:
    """Runs in a fresh subprocess: one measurement."""
    torch, arch, theta, loss = _setup(task)
    from symdisc.ridge import HessianOperator, most_negative

    baseline = peak_rss_mib()
    out = {"kind": task["kind"], "width": task["width"], "p": arch.num_params, "threads": torch.get_num_threads(),
           "baseline_rss_mib": round(baseline, 1)}
    if task["kind"] == "ratio":
        from torch.func import grad

        g = grad(loss)
        op = HessianOperator(loss, theta)
        v = torch.randn(theta.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)

        def median_time(f, reps):
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t)
            return sorted(ts)[len(ts) // 2]

        reps = task["reps"]
        tg = median_time(lambda: g(theta), reps)
        th = median_time(lambda: op.matvec(v), reps)
        tl = median_time(lambda: loss(theta), reps)
        out.update({"grad_seconds": tg, "hvp_seconds": th, "loss_seconds": tl, "hvp_over_grad": th / tg,
                    "grad_over_loss": tg / tl, "reps": reps})
    else:
        op = HessianOperator(loss, theta)
        t = time.perf_counter()
        try:
            pairs = most_negative(op, task["k"], task["kind"], generator=torch.Generator().manual_seed(0))
            out.update({"values": pairs.values.tolist(), "max_residual": float(pairs.residuals.max()),
                        "norm": pairs.norm, "ok": True})
        except Exception as e:  # non-convergence is a result
            out.update({"ok": False, "error": f"{type(e).__name__}: {str(e)[:200]}"})
        out["wall_seconds"] = round(time.perf_counter() - t, 3)
        out["hvps"] = op.hvps
    out["peak_rss_mib"] = round(peak_rss_mib() - baseline, 1)
    return out


def timed(task: dict) -> dict:
    return record_timed(measure, task, f"{task['kind']} h={task['width']}",
                        lambda r: {k: v for k, v in r.items() if k != "values"})


def table(rows: list[dict]) -> str:
    """Markdown: per p, seconds / HVPs / peak MiB of each method, max |Δλ| vs dense, HVP/grad."""
    lines = ["| p | HVP / grad | dense s (HVPs, MiB) | Lanczos s (HVPs, MiB) | LOBPCG s (HVPs, MiB) | "
             "max abs dlambda L / B vs dense |", "|---|---|---|---|---|---|"]
    for r in rows:
        def cell(m, r=r):
            x = r.get(m)
            if x is None:
                return "skipped (p > dense max)"
            if not x.get("ok"):
                return f"failed after {x['wall_seconds']:.1f} s ({x['hvps']} HVPs)"
            return f"{x['wall_seconds']:.1f} ({x['hvps']}, {x['peak_rss_mib']:.0f})"

        dl = " / ".join("-" if r.get(f"{m}_dlambda") is None else f"{r[f'{m}_dlambda']:.1e}"
                        for m in ("lanczos", "lobpcg"))
        lines.append(f"| {r['p']} | {r['ratio']['hvp_over_grad']:.2f} | {cell('dense')} | {cell('lanczos')} | "
                     f"{cell('lobpcg')} | {dl} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", default=WIDTHS)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--dense-max", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--out", default="benchmarks/results/rr_eigen.json")
    args = ap.parse_args(argv)
    import torch

    from symdisc.io import check_writable, write_json

    check_writable(args.out)
    started, rows = time.perf_counter(), []
    for w in [int(x) for x in args.widths.split(",")]:
        common = {"width": w, "threads": args.threads, "k": args.k, "reps": args.reps}
        row: dict = {"width": w, "p": 75 * w + 10, "ratio": timed({**common, "kind": "ratio"})}
        for m in ("lanczos", "lobpcg"):
            row[m] = timed({**common, "kind": m})
        if row["p"] <= args.dense_max:
            row["dense"] = timed({**common, "kind": "dense"})
            for m in ("lanczos", "lobpcg"):
                if row[m].get("ok") and row["dense"].get("ok"):
                    row[f"{m}_dlambda"] = max(abs(a - b) for a, b in zip(row[m]["values"], row["dense"]["values"],
                                                                          strict=True))
        rows.append(row)
    report = {
        "benchmark": "rr_eigen", **header(args.threads),
        "command": " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0]) if sys.argv[0] else
                                                      "rr_eigen.py", *(sys.argv[1:] if argv is None else argv)]),
        "python_version": platform.python_version(), "torch_version": torch.__version__,
        "os_cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "device": "cpu", "dtype": "float64",
        "model": "MLP 64-h-10 tanh, biases, cross-entropy, full digits training batch (1348), θ = fan-in init seed 0",
        "k": args.k, "dense_max": args.dense_max,
        "memory_note": "peak_rss_mib = ru_maxrss at the end minus after imports, data, model and one warm-up HVP, "
                       "in a fresh spawn subprocess per measurement",
        "rows": rows, "table": table(rows), "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, report)
    print(report["table"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
