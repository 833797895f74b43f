"""``symdisc teleport SPEC``: train your model with and without teleports and compare (docs/cli.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import (
    ACT,
    BIAS,
    DEVICE,
    DIMS,
    JSON,
    LOSS,
    SKIP,
    VARIANT,
    emit_json,
    load_architecture,
    parse_ints,
)
from symdisc.cli.resume import check_resume
from symdisc.devices import resolve_device
from symdisc.errors import InputError, SymdiscWarning
from symdisc.io import check_writable, json_ready, write_json

DTYPES = ("float32", "float64")
CHECKPOINT_SUFFIX = ".checkpoint.safetensors"


def _checkpoint(out: Path | None, every: int, resume: bool, restart: bool) -> Path | None:
    """OUT.checkpoint.safetensors beside the result, checked (``check_resume``)."""
    path = None if out is None else out.with_name(out.stem + CHECKPOINT_SUFFIX)
    check_resume(out, resume, restart, "FILE.json, the run's result file", path, every)
    return path


def teleport_command(
    name: str = typer.Argument(..., help="zoo preset (see `symdisc zoo list`), or FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP, variant: str = VARIANT,
    symmetry: str = typer.Option("known", "--symmetry", help="known (exact data-free symmetries) | known-data "
                                 "(the papers' data-dependent GL of the hidden layers) | an artefact directory or "
                                 "exported file (symdisc discover / export)"),
    fields: str = typer.Option("verified", "--fields", help="an artefact's fields to use: verified (those its "
                               "verification kept; the others are named in a warning) | all"),
    strict: bool = typer.Option(False, "--strict", help="refuse an artefact with unverified fields"),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd | momentum | adam | adagrad | rmsprop"),
    lr: float = typer.Option(0.05, "--lr", help="learning rate of the optimizer"),
    steps: int = typer.Option(200, "--steps", help="optimizer steps"),
    batch_size: int = typer.Option(32, "--batch-size", help="training mini-batch size"),
    train_size: int = typer.Option(512, "--train-size", help="training samples drawn once from the sampler"),
    teleport_at: str = typer.Option(None, "--teleport-at", help="comma-separated steps after which to teleport "
                                    "(0: before training); default 5 unless --teleport-every is given"),
    teleport_every: int = typer.Option(None, "--teleport-every", help="teleport after every N-th step"),
    teleport_batches: int = typer.Option(1, "--teleport-batches", help="random batches teleported on per event"),
    teleport_batch_size: int = typer.Option(None, "--teleport-batch-size", help="samples per teleport batch "
                                            "(default: --batch-size; a data-dependent artefact: its own)"),
    teleport_steps: int = typer.Option(10, "--teleport-steps", help="ascent steps per teleport"),
    teleport_lr: float = typer.Option(1e-2, "--teleport-lr", help="ascent learning rate on the group element"),
    max_step: float = typer.Option(0.2, "--max-step", help="cap on ‖c‖ per ascent step (0: none); with "
                                   "--metric fields, on the step's first-order displacement in θ"),
    metric: str = typer.Option("auto", "--metric", help="coordinates of the steepest ascent: coefficients "
                               "(the papers', depends on the generators' scale) | fields (basis-invariant: "
                               "lr·P∇J in θ) | auto (fields for an artefact, coefficients for a known action)"),
    objective: str = typer.Option("grad_norm", "--objective", help="grad_norm (‖∇L‖²) | adagrad (needs "
                                  "--optimizer adagrad)"),
    state_policy: str = typer.Option("transform", "--state-policy", help="optimizer state at a teleport: "
                                     "transform | keep | reset"),
    eval_every: int = typer.Option(1, "--eval-every", help="record the full training loss every N steps"),
    seed: int = typer.Option(0, "--seed"),
    dtype: str = typer.Option("float64", "--dtype", help="float64 | float32"),
    device: str = DEVICE,
    out: Path = typer.Option(None, "--out", help="also write the full result JSON here (atomic; never overwrites); "
                             "the run is checkpointed beside it (OUT.checkpoint.safetensors) until it ends"),
    checkpoint_every: int = typer.Option(50, "--checkpoint-every", help="steps between checkpoints (with --out)"),
    resume: bool = typer.Option(False, "--resume", help="continue the interrupted run whose --out is given, from "
                                "its checkpoint (give the same options)"),
    restart: bool = typer.Option(False, "--restart", help="start over where --out's checkpoint of an interrupted "
                                 "run lies (deletes it; without --resume or --restart such a run is refused)"),
    plot: Path = typer.Option(None, "--plot", help="write the training curves (loss, ‖∇L‖²) of both arms (PNG)"),
    json_out: bool = JSON,
) -> None:
    """Train SPEC from the same θ₀ on the same batches with and without teleports along a symmetry.

    JSON: {"architecture", "symmetry", "spec", "teleport_batch_size", "plain": {"step", "loss",
    "grad_norm_sq", "final_loss", "diverged_at", "seconds"}, "teleport": {… the same, "teleports": [{"step",
    "seconds", "loss_before", "loss_after", "loss_change", "objective_before", "objective_after", "steps",
    "exactness"}], "teleport_failures": [{"step", "error"}]}, "summary": {"final_loss_plain",
    "final_loss_teleport", "final_loss_ratio", "teleports", "teleport_failures", "max_abs_loss_change",
    "median_objective_gain", "seconds_plain", "seconds_teleport"}}.
    """
    import torch

    from symdisc.optim.schedule import Schedule
    from symdisc.teleport.compare import TrainSpec, compare_training, known_symmetry
    from symdisc.teleport.routine import TeleportConfig

    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r}: choose float64 or float32")
    for path, suffix in ((out, ".json"), (plot, ".png")):
        if path is not None:
            if path.suffix.lower() != suffix:
                raise InputError(f"{path}: expected a {suffix} file name")
            if path.exists():
                raise InputError(f"{path} exists: choose another name (results are never overwritten)")
            check_writable(path)
    checkpoint = _checkpoint(out, checkpoint_every, resume, restart)
    if teleport_at is not None and teleport_every is not None:
        raise InputError("give --teleport-at or --teleport-every, not both")
    schedule = Schedule.every(teleport_every) if teleport_every is not None else \
        Schedule.at(parse_ints(teleport_at, "--teleport-at", minimum=0) if teleport_at else [5])
    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    arch = arch.to(dtype=getattr(torch, dtype), device=resolve_device(device))
    if symmetry in ("known", "known-data"):
        sym = known_symmetry(arch, symmetry)
    elif Path(symmetry).exists():
        from symdisc.discovery.artefact import load, select_fields

        sym = select_fields(load(symmetry, arch=arch, fields="all"), fields, strict)
    else:
        raise InputError(f"--symmetry {symmetry!r}: not known, known-data or an existing artefact")
    if metric == "auto":
        metric = "coefficients" if symmetry in ("known", "known-data") else "fields"
    config = TeleportConfig(objective=objective, steps=teleport_steps, lr=teleport_lr, max_step=max_step or None,
                            metric=metric)
    spec = TrainSpec(optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size, train_size=train_size,
                     schedule=schedule, teleport_batches=teleport_batches, teleport_batch_size=teleport_batch_size,
                     config=config, state_policy=state_policy, eval_every=eval_every, seed=seed)
    if restart and checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # every input checked: now start over
    result = json_ready(compare_training(arch, sym, spec, progress=True, checkpoint=checkpoint,
                                         checkpoint_every=checkpoint_every, resume=resume), nonfinite_to_null=True)
    for arm, label in (("plain", "the run without teleports"), ("teleport", "the run with teleports")):
        if result[arm].get("diverged_at") is not None:
            teleports_only = arm == "teleport" and result["plain"].get("diverged_at") is None
            advice = (" while the run without did not: the teleports moved θ where this learning rate is too large — "
                      "teleport less often, cap the ascent (--max-step) or lower the learning rate") \
                if teleports_only else ": lower the learning rate"
            warnings.warn(f"{label} diverged at step {result[arm]['diverged_at']} (non-finite loss){advice}",
                          SymdiscWarning, stacklevel=1)
    if out is not None:
        write_json(out, result)
    if plot is not None:
        from symdisc.plotting import teleport_figure

        teleport_figure(result, plot)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # the result is stored: nothing left to resume
    if json_out:
        emit_json(result)
        return
    s, con = result["summary"], Console()
    con.print(f"[bold]teleport {arch.name}[/] along {result['symmetry']['name']} "
              f"({optimizer}, lr {lr:g}, {steps} steps)")
    fmt = lambda x, spec: "–" if x is None else format(x, spec)
    con.print(f"final training loss: {fmt(s['final_loss_plain'], '.4g')} without, "
              f"{fmt(s['final_loss_teleport'], '.4g')} with {s['teleports']} teleport(s) "
              f"(ratio {fmt(s['final_loss_ratio'], '.3g')}); max |ΔL| at a teleport {s['max_abs_loss_change']:.1e}"
              + (f"; {s['teleport_failures']} failed" if s["teleport_failures"] else ""))
