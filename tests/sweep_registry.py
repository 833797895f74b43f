"""Tiny runners for the sweep tests (a registry module: ``all_runners()``), imported by name in sweep workers."""

import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TinyRunner:
    name: str
    run: object
    defaults: dict
    smoke: dict = field(default_factory=dict)


def census(config: dict, seed: int) -> dict:
    """The output null dimension of a zoo architecture at one random θ (the census, float64)."""
    import torch

    import symdisc
    from symdisc import zoo

    arch = zoo.get(config["arch"]).to(dtype=torch.float64)
    row = symdisc.census(arch, batch_sizes=[config["batch"]], points=1, seed=seed).rows[0]
    return {"arch": config["arch"], "num_params": arch.num_params, "output_null_dim": row.output_null_dim,
            "loss_null_dim": row.loss_null_dim, "gap_decades": row.output_gap_decades, "seconds": row.seconds}


def flaky(config: dict, seed: int) -> dict:
    """Fails for seed 1; with ``marker`` set, fails only until the marker file exists (then succeeds)."""
    if config["marker"]:
        marker = Path(config["marker"])
        if not marker.exists():
            marker.write_text("attempted")
            raise RuntimeError("first attempt fails")
        return {"value": seed}
    if seed == 1:
        raise ValueError("seed 1 is broken")
    return {"value": seed * config["scale"]}


def slow(config: dict, seed: int) -> dict:
    time.sleep(config["sleep"])
    return {"value": seed}


def all_runners() -> dict:
    return {"census": TinyRunner("census", census, {"arch": "mlp", "batch": 4}),
            "flaky": TinyRunner("flaky", flaky, {"scale": 2, "marker": ""}),
            "slow": TinyRunner("slow", slow, {"sleep": 0.5}),
            "placed": TinyRunner("placed", lambda config, seed: {"device": config["device"]}, {"device": "cpu"})}
