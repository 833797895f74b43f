"""Census of every zoo preset (and the 3-3-1 MLP under four activations) vs batch size.

    python experiments/census_presets.py [--points 3] [--seed 0] [--markdown]

Writes experiments/results/census_presets.json and census_presets.png; --markdown prints the
table used in README.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

import symdisc  # noqa: E402
from symdisc.io import atomic_write, write_json  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BATCHES = [1, 2, 4, 8, 16, 64]
CASES = [
    ("mlp --act linear --dims 3,3,1", "mlp", dict(act="linear", dims="3,3,1")),
    ("mlp --act relu --dims 3,3,1", "mlp", dict(act="relu", dims="3,3,1")),
    ("mlp --act tanh --dims 3,3,1", "mlp", dict(act="tanh", dims="3,3,1")),
    ("mlp --act sigmoid --dims 3,3,1", "mlp", dict(act="sigmoid", dims="3,3,1")),
    ("linear-scalar", "linear-scalar", {}),
    ("sigmoid-2layer", "sigmoid-2layer", {}),
    ("tanh-3layer", "tanh-3layer", {}),
    ("mlp-skip", "mlp-skip", {}),
    ("tiny-transformer", "tiny-transformer", {}),
    ("tiny-transformer --variant wo", "tiny-transformer", dict(variant="wo")),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    out = []
    for label, name, kw in CASES:
        r = symdisc.census(symdisc.zoo.get(name, **kw), BATCHES, points=args.points, seed=args.seed, progress=True)
        out.append({"case": label, **r.to_dict()})
    write_json(RESULTS / "census_presets.json", {"command": "python experiments/census_presets.py",
                                                   "batch_sizes": BATCHES, "results": out})
    rows = [{"case": c["case"], "batch size": r["batch_size"], "output null dim": r["output_null_dim"]}
            for c in out for r in c["rows"]]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.lineplot(data=pd.DataFrame(rows), x="batch size", y="output null dim", hue="case", marker="o", ax=ax)
    ax.set_xscale("log", base=2)
    ax.set_title("Symmetry census of the zoo presets (median over random θ)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(RESULTS / "census_presets.png", lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    if args.markdown:
        print("| case | p | known orbit dim | " + " | ".join(f"B={b}" for b in BATCHES) + " |")
        print("|---|---|---|" + "---|" * len(BATCHES))
        for c in out:
            dims = " | ".join(str(r["output_null_dim"]) for r in c["rows"])
            print(f"| `{c['case']}` | {c['num_params']} | {c['known_orbit_dim']} | {dims} |")


if __name__ == "__main__":
    main()
