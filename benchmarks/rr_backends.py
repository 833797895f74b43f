#!/usr/bin/env python
"""Does curvlinops pay as RR's Hessian-vector backend?  Time per HVP of ``curvlinops.HessianLinearOperator``
against ``symdisc.ridge.HessianOperator`` (one vector, and a block of 16 columns under ``vmap``), same model,
data and vector, agreement checked (not a test).

Model: nn.Sequential(Linear(64, h), Tanh, Linear(h, 10)), cross-entropy on 1024 digits, float64, one thread.
curvlinops is not a dependency: ``pip install --no-deps curvlinops-for-pytorch tqdm einops einconv
linear_operator`` for this benchmark; without it the script says so and measures symdisc alone.

    python benchmarks/rr_backends.py [--widths 32,128] [--repeats 20] [--out benchmarks/results/rr_backends.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header  # noqa: E402


def per_hvp_ms(f, repeats: int, columns: int = 1) -> float:
    f()
    t = time.perf_counter()
    for _ in range(repeats):
        f()
    return round((time.perf_counter() - t) / repeats / columns * 1e3, 3)


def measure(h: int, X, Y, repeats: int, HessianLinearOperator) -> dict:
    """One width: ms per HVP of each backend (and their agreement)."""
    import torch
    from torch import nn
    from torch.func import functional_call

    from symdisc.layout import ParamLayout
    from symdisc.ridge import HessianOperator

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, h), nn.Tanh(), nn.Linear(h, 10)).double()
    params, criterion = list(model.parameters()), nn.CrossEntropyLoss()
    layout = ParamLayout.of_module(model)
    theta = layout.flatten(dict(model.named_parameters())).detach()
    ours = HessianOperator(lambda th: criterion(functional_call(model, layout.unflatten(th), (X,)), Y), theta)
    v, V = torch.randn(theta.numel(), dtype=torch.float64), torch.randn(theta.numel(), 16, dtype=torch.float64)
    row = {"hidden": h, "num_params": theta.numel(),
           "symdisc_ms": per_hvp_ms(lambda: ours.matvec(v), repeats),
           "symdisc_block16_ms": per_hvp_ms(lambda: ours.matvec(V), max(1, repeats // 4), 16)}
    if HessianLinearOperator is not None:
        H = HessianLinearOperator(model, criterion, params, [(X, Y)], check_deterministic=False)
        parts = [t.reshape(p.shape) for t, p in zip(torch.split(v, [p.numel() for p in params]), params, strict=True)]
        theirs = torch.cat([t.reshape(-1) for t in H @ parts])
        row["curvlinops_ms"] = per_hvp_ms(lambda: H @ parts, repeats)
        row["relative_difference"] = float((theirs - ours.matvec(v)).norm() / ours.matvec(v).norm())
        row["curvlinops_over_symdisc"] = round(row["curvlinops_ms"] / row["symdisc_ms"], 2)
        row["curvlinops_over_symdisc_block16"] = round(row["curvlinops_ms"] / row["symdisc_block16_ms"], 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="32,128")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    from symdisc.data import digits

    torch.set_num_threads(1)
    try:
        from curvlinops import HessianLinearOperator
    except ImportError:
        HessianLinearOperator = None
    split = digits().to(dtype=torch.float64)
    X, Y = split.X_train[:1024], split.y_train[:1024]
    rows = []
    for h in (int(w) for w in args.widths.split(",")):
        rows.append(measure(h, X, Y, args.repeats, HessianLinearOperator))
        print(rows[-1], flush=True)
    doc = {"benchmark": "rr_backends", **header(1), "cpu_model": cpu_model(),
           "curvlinops": None if HessianLinearOperator is None else version("curvlinops-for-pytorch"),
           "load_1min": os.getloadavg()[0], "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
