#!/usr/bin/env python
"""What the matrix-free spectral start buys above p = 64 (not a test; issue 10).

For each model, the unconstrained preset trained for ``--steps`` steps twice from the same seed: from the
spectral start (p > 64: the operator path, spectral.py) and from a random start (``spectral_init=False``);
each artefact verified on ``--draws`` held-out draws.  Models: a ReLU 8-8-8 MLP without biases (p = 128,
k = 4: its linear symmetries are the 8 rescalings) and E3's teleport-regression net (p = 128, k = 8,
LeakyReLU on positive data).  Then, for every unconstrained-preset discovery case with p ≤ 64 (where the
trainer uses the dense solver), the operator path at the trainer's budget beside the dense one: seconds, the
k-th eigenvalue, convergence and the mean cos² between their starting fields' spans on held-out θ.  One thread.

    python benchmarks/spectral_start.py [--steps 300] [--draws 8] [--out benchmarks/results/spectral_start.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"relu-8-8-8": ("mlp", {"act": "relu", "dims": "8,8,8"}, 4),
          "teleport-regression": ("teleport-regression", {}, 8)}


def measure(name: str, steps: int, draws: int) -> list[dict]:
    from symdisc import zoo
    from symdisc.discovery.config import preset_config
    from symdisc.discovery.trainer import Trainer
    from symdisc.verification.api import verify

    preset, options, k = MODELS[name]
    arch = zoo.get(preset, **options)
    rows = []
    for start in ("spectral", "random"):
        cfg = preset_config("unconstrained", arch.name, k=k, steps=steps, spectral_init=start == "spectral")
        t0 = time.perf_counter()
        trainer = Trainer(arch, cfg)
        init_seconds = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as out:
            summary = trainer.fit(out, progress=False)
            v = verify(out, arch=arch, draws=draws, curves=False)
        rows.append({"model": name, "p": arch.num_params, "k": k, "start": start,
                     "spectral_init": {key: val for key, val in trainer.spectral.items() if key != "eigenvalues"},
                     "bottom_eigenvalues": trainer.spectral.get("eigenvalues"), "init_seconds": round(init_seconds, 2),
                     "train_seconds": summary["seconds"], "invariance_median": v["invariance"]["median"],
                     "verified": v["verified"]["summary"], "mean_cos2": v["principal_angles_mean_cos2"]})
        print(rows[-1], flush=True)
    return rows


def dense_vs_operator() -> list[dict]:
    import warnings

    import torch

    from experiments.discovery.cases import CASES
    from symdisc import make_generator
    from symdisc.discovery.config import preset_config
    from symdisc.discovery.spectral import TRAINER_MAXITER, spectral_generators, start_draws

    rows, seen = [], set()
    for name, case in CASES.items():
        arch = case.arch()
        key = (case.architecture, tuple(sorted(case.options.items())), case.k)
        if case.preset != "unconstrained" or key in seen:
            continue
        seen.add(key)
        p, cfg = arch.num_params, preset_config("unconstrained", arch.name, k=case.k)
        batch = cfg.batch or arch.default_batch_size
        out = {"case": name, "p": p, "k": case.k}
        spans = {}
        for method in ("dense", "operator"):
            draws, b = start_draws(p, batch, method)
            theta, X, Y = arch.sample_draws(draws, b, make_generator(0, 5))
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                H, vals = spectral_generators(arch, case.k, theta, X, Y, cfg.weights.level, method=method,
                                              generator=make_generator(0, 5, 1), maxiter=TRAINER_MAXITER)
            out[method] = {"seconds": round(time.perf_counter() - t0, 2), "kth_eigenvalue": float(vals[case.k - 1]),
                           "converged": not any("LOBPCG" in str(w.message) for w in caught)}
            spans[method] = H
        cos = []
        for th in arch.sample_draws(8, 1, make_generator(9))[0].double():
            U = [torch.linalg.svd(torch.einsum("kab,b->ak", spans[m], th), full_matrices=False)[0]
                 for m in ("dense", "operator")]
            cos.append(float(torch.linalg.svdvals(U[0].T @ U[1]).pow(2).mean()))
        out["mean_cos2"] = sum(cos) / len(cos)
        print(out, flush=True)
        rows.append(out)
    return rows


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    import torch

    from benchmarks.record import header
    from symdisc.io import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--out", default=str(HERE / "results" / "spectral_start.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [row for name in MODELS for row in measure(name, args.steps, args.draws)]
    dense = dense_vs_operator()
    write_json(args.out, {**header(), "rows": rows, "dense_vs_operator": dense})


if __name__ == "__main__":
    main()
