#!/usr/bin/env python
"""Discovery training speed and memory against p (not a test; issue 10).

tanh MLPs without biases, p ≈ 10², 10³, 10⁴ (dims 5-10-5, 20-30-10, 100-90-10), k = 4 generators,
8 draws of 16 samples per step, float32, no spectral start.  Configurations, each timed in a fresh
``spawn`` subprocess with one thread:

* ``default/free``    — the engine's default (p×p generators on the Stiefel manifold): the baseline;
* ``default/lowrank`` — rank-1 generators U Vᵀ (never a p×p matrix);
* ``constrained/lowrank`` — the null-constrained preset with rank-1 generators.

Two untimed steps (one per training phase), then the median of ``--steps`` timed joint-phase steps;
memory is the subprocess's peak RSS (ru_maxrss).  A configuration that exceeds ``--timeout`` seconds
is recorded as such.

    python benchmarks/discovery_scale.py [--steps 4] [--timeout 300] [--out benchmarks/results/discovery_scale.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"1e2": "5,10,5", "1e3": "20,30,10", "1e4": "100,90,10"}
CONFIGS = [("unconstrained", "free"), ("unconstrained", "lowrank"), ("constrained", "lowrank")]


def _measure(dims: str, preset: str, kind: str, steps: int, queue) -> None:
    import resource
    import statistics

    import torch

    torch.set_num_threads(1)
    from symdisc import zoo
    from symdisc.discovery.config import preset_config
    from symdisc.discovery.trainer import Trainer

    arch = zoo.get("mlp", act="tanh", dims=dims)
    cfg = preset_config(preset, "mlp", k=4, steps=100, draws=8, batch=16, generator_kind=kind, spectral_init=False)
    trainer = Trainer(arch, cfg)
    trainer.train_step()  # warm-up phase
    trainer.step = cfg.steps // 2
    trainer.train_step()  # joint phase
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t)
    queue.put({"p": arch.num_params, "seconds_per_step": statistics.median(times),
               "steps_per_second": 1.0 / statistics.median(times),
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run(dims: str, preset: str, kind: str, steps: int, timeout: float) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(dims, preset, kind, steps, queue))
    start = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        return {"status": f"exceeded {timeout:.0f} s", "seconds": round(time.perf_counter() - start, 1)}
    if queue.empty():
        return {"status": f"failed (exit code {proc.exitcode})"}
    return {"status": "ok", **queue.get()}


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from benchmarks.record import header
    from symdisc.io import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", default=str(HERE / "results" / "discovery_scale.json"))
    args = ap.parse_args()
    rows = []
    for size, dims in MODELS.items():
        for preset, kind in CONFIGS:
            row = {"size": size, "dims": dims, "preset": preset, "generators": kind,
                   **run(dims, preset, kind, args.steps, args.timeout)}
            print(row, flush=True)
            rows.append(row)
    write_json(args.out, {**header(), "rows": rows})


if __name__ == "__main__":
    main()
