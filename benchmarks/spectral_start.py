#!/usr/bin/env python
"""What the matrix-free spectral start buys above p = 64 (not a test; issue 10).

For each model, the default preset trained for ``--steps`` steps twice from the same seed: from the
spectral start (p > 64: the operator path, spectral.py) and from a random start (``spectral_init=False``);
each artefact verified on ``--draws`` held-out draws.  Models: a ReLU 8-8-8 MLP without biases (p = 128,
k = 4: its linear symmetries are the 8 rescalings) and E3's teleport-regression net (p = 128, k = 8,
LeakyReLU on positive data).  One thread.

    python benchmarks/spectral_start.py [--steps 300] [--draws 8] [--out benchmarks/results/spectral_start.json]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
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
        cfg = preset_config("default", arch.name, k=k, steps=steps, spectral_init=start == "spectral")
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


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    import torch

    from symdisc.io import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--out", default=str(HERE / "results" / "spectral_start.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [row for name in MODELS for row in measure(name, args.steps, args.draws)]
    write_json(args.out, {"command": "python " + shlex.join(sys.argv), "date": datetime.datetime.now().isoformat(
        timespec="seconds"), "torch": torch.__version__, "python": platform.python_version(), "threads": 1,
        "machine": platform.machine(), "rows": rows})


if __name__ == "__main__":
    main()
