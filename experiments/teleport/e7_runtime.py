"""E7 (teleport.md §4.1): seconds of one 10-step teleport vs one gradient, square LeakyReLU nets with batch =
width, (a) width d of a 3-layer net, (b) width 32 (128 in the paper; 32 keeps this short on 2 cores) with a
varying number of layers.  One run on the thread count of the entry point (default 1); θ and the data of
each net come from ``make_generator(seed, d, layers)`` (the committed run: ``--seed 7``)."""

from __future__ import annotations

import time

import torch
from torch.func import grad

import symdisc
from experiments.registry import Runner
from symdisc import make_generator
from symdisc.plotting import plt, save_figure, sns
from symdisc.symmetry import hidden_layers_gl
from symdisc.teleport.routine import TeleportConfig, teleport


def time_one(d: int, layers: int, seed: int) -> dict:
    """One net: the mean seconds of 3 gradients and the seconds of one 10-step teleport, after a warm-up."""
    arch = symdisc.zoo.get("mlp", dims=",".join([str(d)] * (layers + 1)), act="leakyrelu").to(torch.float64)
    g = make_generator(seed, d, layers)
    theta = arch.sample_params(g)
    X, Y = arch.sample_data(d, g)
    loss = lambda th: 0.5 * (arch.forward(th, X) - Y).pow(2).sum()
    sym = hidden_layers_gl(arch, "pinv")
    grad(loss)(theta)  # untimed: first calls pay one-off dispatch and allocation costs
    teleport(sym, theta, loss, X, TeleportConfig(steps=1, lr=1e-3, max_step=0.1))
    t0 = time.perf_counter()
    for _ in range(3):
        grad(loss)(theta)
    gd_step = (time.perf_counter() - t0) / 3
    t0 = time.perf_counter()
    teleport(sym, theta, loss, X, TeleportConfig(steps=10, lr=1e-3, max_step=0.1))
    return {"width": d, "layers": layers, "num_params": arch.num_params,
            "teleport_seconds": time.perf_counter() - t0, "gd_step_seconds": gd_step}


def run(config: dict, seed: int) -> dict:
    rows = [{"vary": "width", **time_one(d, 3, seed)} for d in config["widths"]]
    rows += [{"vary": "depth", **time_one(32, n, seed)} for n in config["depths"]]
    return {"rows": rows, "threads": torch.get_num_threads()}


def figure(document: dict, path) -> None:
    rows = document["results"][0]["rows"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, x in ((axes[0], "width", "width"), (axes[1], "depth", "layers")):
        sel = [r for r in rows if r["vary"] == kind]
        ax.plot([r[x] for r in sel], [r["teleport_seconds"] for r in sel], "o-", label="one 10-step teleport")
        ax.plot([r[x] for r in sel], [r["gd_step_seconds"] for r in sel], "s-", label="one gradient")
        ax.set_xlabel(x)
        ax.set_ylabel("seconds")
        ax.set_yscale("log")
        if kind == "width":
            ax.set_xscale("log", base=2)
        ax.legend()
    fig.suptitle(f"E7: teleport cost (square LeakyReLU nets, batch = width, {document['results'][0]['threads']} "
                 "thread(s))")
    fig.tight_layout()
    save_figure(fig, path)


RUNNERS = [Runner("e7_runtime", "E7: seconds of a 10-step teleport vs a gradient against width and depth",
                  run, figure, {"widths": [8, 16, 32, 64, 128], "depths": [2, 3, 4, 6, 8]},
                  {"widths": [8, 16], "depths": [2, 3]}, digits=7)]
