"""E13, learning to teleport (P §5.2 / D §5.5; teleport.md §3): GD, LSTM(update), LSTM(lr,tele) and
LSTM(update,tele) on ½‖Y − W2 σ(W1 X)‖_F² with 20×20 matrices, tested on unseen trajectories.

    python experiments/teleport_meta.py [--preset full|paper|smoke] [--smoke] [--seed S] [--out PATH.json]

Writes experiments/results/teleport/e13_meta.json (results + the command) and e13_meta.png (test loss
vs step, mean ± std over the test trajectories).  ``full`` is the scaled-down configuration that fits
in ≤ 30 min on 2 CPU cores (docs/teleport_meta.md states how it differs from the paper); ``paper`` is
the paper's scale; ``--smoke`` runs in seconds and writes to a temporary directory unless --out is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from symdisc.errors import SymdiscError
from symdisc.io import check_writable, write_json
from symdisc.plotting import plt, save_figure, sns
from symdisc.teleport.meta import preset, run_meta

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "teleport"


def figure(result: dict, path: Path) -> None:
    """Test loss vs step of the four methods: mean line, ± std band (clipped at the mean/10 on the log axis)."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method in result["methods"].values():
        mean, std = np.array(method["loss"]["mean"]), np.array(method["loss"]["std"])
        steps = np.arange(len(mean))
        line, = ax.plot(steps, mean, label=method["label"])
        ax.fill_between(steps, np.maximum(mean - std, mean / 10), mean + std, color=line.get_color(), alpha=0.2)
    cfg = result["config"]
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("test loss ½‖Y − W₂σ(W₁X)‖²")
    ax.set_title(f"E13 learning to teleport (hidden {cfg['hidden']}, {cfg['test_trajectories']} test trajectories)",
                 fontsize=10)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="full", help="full (default), paper or smoke")
    ap.add_argument("--smoke", action="store_true", help="the CI configuration (seconds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="JSON path (the PNG goes beside it)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    name = "smoke" if args.smoke else args.preset
    default = Path(tempfile.mkdtemp()) / "e13_meta_smoke.json" if name == "smoke" else RESULTS / "e13_meta.json"
    out = args.out or default
    try:
        config = preset(name)
        check_writable(out)
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        result = run_meta(config, seed=args.seed, device=args.device, progress=args.progress)
    except SymdiscError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = {"command": " ".join(["python experiments/teleport_meta.py", *argv]), "preset": name,
              "seconds": time.perf_counter() - t0, **result}
    write_json(out, result)
    figure(result, out.with_suffix(".png"))
    for method in result["methods"].values():
        at = ", ".join(f"t={t}: {v['mean']:.4g} ± {v['std']:.2g}" for t, v in method["loss_at"].items())
        print(f"{method['label']:>18}  {at}")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
