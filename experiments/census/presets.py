"""Census of every zoo preset (and the 3-3-1 MLP under four activations) against batch size (docs/census.md):
the null-space dimension of the output Jacobian (median over ``points`` random θ) per batch size, beside
the known orbit dimension.  Intrinsically one run: the seed is the census's seed (the committed run: 0).

Config: ``points``, ``batch_sizes``, ``cases`` (labels of ``CASES``).  ``python -m experiments table
census_presets`` prints the README's table from the committed result.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import symdisc
from experiments.registry import Runner, seed_results
from symdisc.errors import InputError
from symdisc.plotting import plt, save_figure, sns

CASES = {
    "mlp --act linear --dims 3,3,1": ("mlp", dict(act="linear", dims="3,3,1")),
    "mlp --act relu --dims 3,3,1": ("mlp", dict(act="relu", dims="3,3,1")),
    "mlp --act tanh --dims 3,3,1": ("mlp", dict(act="tanh", dims="3,3,1")),
    "mlp --act sigmoid --dims 3,3,1": ("mlp", dict(act="sigmoid", dims="3,3,1")),
    "linear-scalar": ("linear-scalar", {}),
    "sigmoid-2layer": ("sigmoid-2layer", {}),
    "tanh-3layer": ("tanh-3layer", {}),
    "mlp-skip": ("mlp-skip", {}),
    "tiny-transformer": ("tiny-transformer", {}),
    "tiny-transformer --variant wo": ("tiny-transformer", dict(variant="wo")),
}


def run(config: dict, seed: int) -> dict:
    """Every case's census rows (``symdisc.census``), in the order of ``config["cases"]``."""
    unknown = [c for c in config["cases"] if c not in CASES]
    if unknown:
        raise InputError(f"unknown census case {unknown[0]!r}; choose from {', '.join(CASES)}")
    out = []
    for label in config["cases"]:
        name, options = CASES[label]
        r = symdisc.census(symdisc.zoo.get(name, **options), config["batch_sizes"], points=config["points"],
                           seed=seed, progress=True)
        out.append({"case": label, **r.to_dict()})
    return {"batch_sizes": config["batch_sizes"], "results": out}


def summarize(results: list[dict], config: dict) -> dict:
    """{case: {"known_orbit_dim", "output_null_dim": one per batch size}} of the first seed."""
    return {c["case"]: {"known_orbit_dim": c["known_orbit_dim"],
                        "output_null_dim": [r["output_null_dim"] for r in c["rows"]]} for c in results[0]["results"]}


def figure(document: dict, path: Path) -> None:
    """Output null dimension against batch size, one line per case."""
    rows = [{"case": c["case"], "batch size": r["batch_size"], "output null dim": r["output_null_dim"]}
            for c in document["results"][0]["results"] for r in c["rows"]]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.lineplot(data=pd.DataFrame(rows), x="batch size", y="output null dim", hue="case", marker="o", ax=ax)
    ax.set_xscale("log", base=2)
    ax.set_title("Symmetry census of the zoo presets (median over random θ)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def markdown(document: dict) -> str:
    """The README's table: case, p, known orbit dimension, output null dimension per batch size."""
    result = seed_results(document)[0]
    batches = result["batch_sizes"]
    lines = ["| case | p | known orbit dim | " + " | ".join(f"B={b}" for b in batches) + " |",
             "|---|---|---|" + "---|" * len(batches)]
    for c in result["results"]:
        dims = " | ".join(str(r["output_null_dim"]) for r in c["rows"])
        lines.append(f"| `{c['case']}` | {c['num_params']} | {c['known_orbit_dim']} | {dims} |")
    return "\n".join(lines)


RUNNERS = [Runner("census_presets", "the symmetry census (null dimension vs batch size) of every zoo preset",
                  run, figure, {"points": 3, "batch_sizes": [1, 2, 4, 8, 16, 64], "cases": list(CASES)},
                  {"points": 1, "batch_sizes": [1, 4], "cases": list(CASES)[:2]}, summarize, group="")]
