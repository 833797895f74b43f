"""RR Fig. 1 on our 2-D toy (``symdisc.ridge.problems.toy2d``; the paper gives no function): exact RR from the
central maximum explores 4 paths (±2 eigenvectors), each ride polished by gradient descent; plain GD starts from
small perturbations of the maximum.  Which minimum (global / local) each reaches, and a contour plot of the paths.

The ride paths are recorded by a subclass of the library's ``RidgeRider`` that logs every accepted ridge step
(``_exact_step``) and every step of the leaf polish (``_finish``, the same plain GD the library runs); nothing in
the search changes.  Config: RR's ``alpha``, ``alpha_min``, ``delta_break``, ``finish_steps``, ``finish_lr``; GD's
``gd_runs`` starts θ₀ ~ N(0, ``gd_eps``²) (from the seed), ``gd_lr``, ``gd_steps``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.registry import Runner
from symdisc import make_generator
from symdisc.plotting import plt, save_figure, sns
from symdisc.ridge import RidgeRider, RRConfig
from symdisc.ridge.problems.toy2d import TOY2D_START, toy2d_loss, toy2d_minima


class RecordingRider(RidgeRider):
    """RidgeRider that keeps each ride's path (accepted ridge steps, then the polish's GD steps)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.paths: dict[int, dict] = {}
        self._current: dict | None = None

    def ride(self, node, budget_left):
        self._current = self.paths[node.id] = {"ride": [node.theta_start.tolist()], "polish": []}
        super().ride(node, budget_left)

    def _exact_step(self, theta, e, alpha, loss_now):
        out = super()._exact_step(theta, e, alpha, loss_now)
        if out[0] is not None:
            self._current["ride"].append(out[0].tolist())
        return out

    def _finish(self, theta):
        x = theta.clone()
        path = [x.tolist()]
        for _ in range(self.config.finish_steps):  # torch.optim.SGD without momentum, as the library's _finish
            x = x - self.config.finish_lr * torch.func.grad(self.loss)(x)
            path.append(x.tolist())
        self._current["polish"] = path[::5] + ([path[-1]] if (len(path) - 1) % 5 else [])
        return x.detach()


def classify(point) -> dict:
    """The minimum within 1e-3 of ``point`` ({"kind": global | local, "location"}), else kind "other"."""
    p = torch.as_tensor(point, dtype=torch.float64)
    for m in toy2d_minima():
        if float((p - torch.tensor(m["location"], dtype=torch.float64)).norm()) < 1e-3:
            return {"kind": m["kind"], "location": list(m["location"])}
    return {"kind": "other", "location": None}


def gd(theta0: torch.Tensor, lr: float, steps: int) -> list[list[float]]:
    x, path = theta0.clone(), [theta0.tolist()]
    for _ in range(steps):
        x = x - lr * torch.func.grad(toy2d_loss)(x)
        path.append(x.tolist())
    return path


def run(config: dict, seed: int) -> dict:
    """RR's 4 rides (deterministic: the start is the maximum) and ``gd_runs`` GD runs from the seed's perturbations."""
    start = torch.tensor(TOY2D_START, dtype=torch.float64)
    cfg = RRConfig(n_ridges=2, eigensolver="dense", alpha=config["alpha"], alpha_min=config["alpha_min"],
                   delta_break=config["delta_break"], finish_steps=config["finish_steps"],
                   finish_lr=config["finish_lr"], budget=10_000)
    rr = RecordingRider(toy2d_loss, start, cfg, generator=make_generator(seed, 0))
    result = rr.run()
    rides = []
    for n in result.archive.ends():
        rides.append({"fingerprint": n.fingerprint, "sign": n.sign, "eigenvalue": n.lam_start, "steps": n.steps,
                      "end_reason": n.end_reason, "leaf": n.leaf, "ride_end": rr.paths[n.id]["ride"][-1],
                      "end": n.theta_end.tolist(), "loss": n.loss_end, **classify(n.theta_end), **rr.paths[n.id]})
    g = make_generator(seed, 1)
    gds = []
    for _ in range(config["gd_runs"]):
        path = gd(config["gd_eps"] * torch.randn(2, generator=g, dtype=torch.float64), config["gd_lr"],
                  config["gd_steps"])
        gds.append({"start": path[0], "end": path[-1], "loss": float(toy2d_loss(torch.tensor(path[-1]))),
                    **classify(path[-1]), "path": path[::5] + ([path[-1]] if (len(path) - 1) % 5 else [])})
    count = lambda runs, kind: sum(r["kind"] == kind for r in runs)
    globals_ = {tuple(r["location"]) for r in rides if r["kind"] == "global"}
    return {"rr": {"rides": rides, "summary": result.summary()}, "gd": gds,
            "minima": toy2d_minima(),
            "counts": {"rr_global": count(rides, "global"), "rr_local": count(rides, "local"),
                       "rr_other": count(rides, "other"), "gd_global": count(gds, "global"),
                       "gd_local": count(gds, "local"), "gd_other": count(gds, "other"),
                       "rr_distinct_global": len(globals_)}}


def summarize(results: list[dict], config: dict) -> dict:
    """Summed counts of the minima reached over the seeds (RR's are the same every seed)."""
    keys = results[0]["counts"]
    return {k: sum(r["counts"][k] for r in results) for k in keys} | {"seeds": len(results)}


def figure(document: dict, path: Path) -> None:
    """Contour of L with RR's ride (solid) + polish (dotted) paths and GD's paths (grey)."""
    r = document["results"][0]
    sns.set_theme(style="white")
    fig, ax = plt.subplots(figsize=(7, 6.5))
    xs, ys = torch.linspace(-2.6, 2.0, 300, dtype=torch.float64), torch.linspace(-4.0, 4.0, 300, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    Z = toy2d_loss(torch.stack([X, Y], -1))
    cs = ax.contourf(X, Y, Z.clamp(max=2.0), levels=torch.linspace(-2.6, 2.0, 24).tolist(), cmap="viridis")
    ax.contour(X, Y, Z, levels=[-2.0, -1.5, -1.0, -0.5, 0.0], colors="k", linewidths=0.4, alpha=0.5)
    fig.colorbar(cs, ax=ax, label="L(x, y) (clipped at 2)")
    for res in document["results"]:
        for i, g in enumerate(res["gd"]):
            p = torch.tensor(g["path"])
            ax.plot(p[:, 0], p[:, 1], color="orange", lw=0.8, ls="--",
                    label="GD from the maximum ± noise" if i == 0 else None)
    colors = sns.color_palette("Set1", len(r["rr"]["rides"]))
    for c, ride in zip(colors, r["rr"]["rides"], strict=True):
        p, q = torch.tensor(ride["ride"]), torch.tensor(ride["polish"] or [ride["ride"][-1]])
        sign = "+" if ride["sign"] > 0 else "−"
        lab = f"RR Ψ={ride['fingerprint']} {sign}e (λ={ride['eigenvalue']:.2f}) → {ride['kind']}"
        ax.plot(p[:, 0], p[:, 1], "-o", color=c, ms=3, lw=2, label=lab)
        ax.plot(q[:, 0], q[:, 1], ":", color=c, lw=2)
    for m in r["minima"]:
        ax.plot(*m["location"], "*" if m["kind"] == "global" else "^", color="w", mec="k", ms=14 if m["kind"] ==
                "global" else 10)
    ax.plot(0, 0, "X", color="r", mec="k", ms=10)
    c = document["summary"]
    ax.set_title(f"Toy 2-D: RR reaches {c['rr_global']} global + {c['rr_local']} local minima; "
                 f"GD: {c['gd_global']} global, {c['gd_local']} local", fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)


DEFAULTS = {"alpha": 0.5, "alpha_min": 1e-4, "delta_break": 0.95, "finish_steps": 300, "finish_lr": 0.1,
            "gd_runs": 20, "gd_eps": 1e-3, "gd_lr": 0.1, "gd_steps": 300}
RUNNERS = [Runner("rr_toy2d", "RR Fig. 1: ±2 ridges from the maximum of a 2-D toy vs GD from near it",
                  run, figure, DEFAULTS, {"gd_runs": 4, "finish_steps": 150, "gd_steps": 150}, summarize,
                  group="ridge", digits=6)]
