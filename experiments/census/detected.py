"""Detected known symmetries against the census on third-party-style models (docs/detection.md): a nanoGPT-style
GPT with and without biases (manual attention and SDPA), a LLaMA-style block, CNNs, a Sequential MLP.  Per case:
the detected orbit dimension by kind (``symdisc.detect``), the census output null dimension per batch size, and
the unexplained remainder.  Intrinsically one run (the seed is the census's).

Config: ``points``, ``batch_sizes``, ``cases`` (labels of ``CASES``).  ``python -m experiments table
census_detected`` prints the docs' table from the committed result.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

import symdisc
from experiments.census.models import GPT, LlamaBlockLM, cnn, image_batches, token_batches
from experiments.registry import Runner, seed_results
from symdisc.detect import detect_known
from symdisc.errors import InputError
from symdisc.plotting import plt, save_figure, sns

VOCAB, T = 16, 6


def _gpt(bias: bool, flash: bool = False):
    return symdisc.zoo.from_module(GPT(VOCAB, 8, 8, 2, 2, bias=bias, flash=flash).eval(), token_batches(VOCAB, T),
                                   "cross_entropy", name="gpt")


def _llama():
    return symdisc.zoo.from_module(LlamaBlockLM(VOCAB).eval(), token_batches(VOCAB, T), "cross_entropy", name="llama")


def _cnn(bias: bool, pooled: bool = False):
    return symdisc.zoo.from_module(cnn(bias, pooled), image_batches((5,) if pooled else (2, 4, 4)), "mse", name="cnn")


def _mlp():
    return symdisc.zoo.from_module(nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2)),
                                   lambda B, g: (torch.randn(B, 3, generator=g), torch.randn(B, 2, generator=g)),
                                   "mse", name="mlp")


CASES = {
    "GPT, 2 layers, biases": lambda: _gpt(True),
    "GPT, 2 layers, no biases": lambda: _gpt(False),
    "GPT, 2 layers, no biases, SDPA": lambda: _gpt(False, flash=True),
    "LLaMA-style block (RMSNorm, SwiGLU, SDPA)": _llama,
    "CNN conv-ReLU-conv, bias": lambda: _cnn(True),
    "CNN conv-ReLU-conv, no bias": lambda: _cnn(False),
    "CNN pooled + linear head, bias": lambda: _cnn(True, pooled=True),
    "Sequential(Linear, ReLU, Linear)": _mlp,
}


def run(config: dict, seed: int) -> dict:
    """Each case's detection report and census rows, in the order of ``config["cases"]``."""
    unknown = [c for c in config["cases"] if c not in CASES]
    if unknown:
        raise InputError(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    out = []
    for label in config["cases"]:
        arch = CASES[label]()
        found = detect_known(arch)
        r = symdisc.census(arch, config["batch_sizes"], level="output", points=config["points"], seed=seed,
                           progress=True)
        out.append({"case": label, "detection": {**found.to_dict(), "by_kind": found.by_kind()},
                    "census": r.to_dict()})
    return {"batch_sizes": config["batch_sizes"], "results": out}


def summarize(results: list[dict], config: dict) -> dict:
    """{case: {"detected", "by_kind", "output_null_dim" per batch size}} of the first seed."""
    return {c["case"]: {"detected": c["detection"]["orbit_dim"], "by_kind": c["detection"]["by_kind"],
                        "output_null_dim": [r["output_null_dim"] for r in c["census"]["rows"]]}
            for c in results[0]["results"]}


def figure(document: dict, path: Path) -> None:
    """Census null dimension against batch size per case, the detected orbit dimension dashed."""
    result = document["results"][0]
    rows = [{"case": c["case"], "batch size": r["batch_size"], "output null dim": r["output_null_dim"]}
            for c in result["results"] for r in c["census"]["rows"]]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.lineplot(data=pd.DataFrame(rows), x="batch size", y="output null dim", hue="case", marker="o", ax=ax)
    palette = dict(zip([c["case"] for c in result["results"]], sns.color_palette(n_colors=len(result["results"])),
                       strict=True))
    for c in result["results"]:
        ax.axhline(c["detection"]["orbit_dim"], ls="--", lw=0.8, color=palette[c["case"]])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title("Census null dimension (lines) vs detected known orbit dimension (dashed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def markdown(document: dict) -> str:
    """Case, p, detected orbit dimension (output level, bold) by kind, census output null dimension per batch size
    (None: the gap does not support a count), unexplained."""
    result = seed_results(document)[0]
    batches = result["batch_sizes"]
    lines = ["| case | p | detected (by kind) | " + " | ".join(f"null B={b}" for b in batches)
             + " | unexplained at largest B |", "|---|---|---|" + "---|" * len(batches) + "---|"]
    for c in result["results"]:
        d, rows = c["detection"], c["census"]["rows"]
        kinds = ", ".join(f"{k} {v}" + (" (loss level)" if k == "softmax-translation" else "")
                          for k, v in d["by_kind"].items() if v)
        dims = " | ".join(str(r["output_null_dim"]) for r in rows)
        last = rows[-1]["output_null_dim"]
        lines.append(f"| {c['case']} | {c['census']['num_params']} | **{d['orbit_dim']}**: {kinds} | {dims} | "
                     f"{'-' if last is None else last - d['orbit_dim']} |")
    return "\n".join(lines)


RUNNERS = [Runner("census_detected", "detected known symmetries vs the census on GPT-style models and CNNs",
                  run, figure, {"points": 1, "batch_sizes": [4, 16, 64, 2048], "cases": list(CASES)},
                  {"points": 1, "batch_sizes": [2, 8], "cases": ["CNN conv-ReLU-conv, bias",
                                                               "Sequential(Linear, ReLU, Linear)"]},
                  summarize, group="")]
