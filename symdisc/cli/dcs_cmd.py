"""``symdisc dcs TARGET``: DCS on an architecture, or ``lasso-check`` (DCS against scikit-learn's Lasso)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import ACT, BIAS, DEVICE, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture
from symdisc.cli.resume import check_resume
from symdisc.devices import resolve_device
from symdisc.errors import InputError
from symdisc.io import json_ready, write_json

EXPERIMENTS = ("lasso-check",)
RUN_FILE = "dcs_run.json"
MODEL_FILE = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"


def _lasso(alpha: float | None, seed: int, json_out: bool) -> None:
    from symdisc.dcs.lasso import lasso_check

    out = lasso_check(alpha=0.05 if alpha is None else alpha, seed=seed)
    out["passed"] = {"objective": abs(out["relative_objective_gap"]) < 1e-5,
                     "zero_above_alpha_crit": out["masked_max_above"] < 1e-10,
                     "nonzero_below_alpha_crit": out["masked_max_below"] > 1e-3}
    if json_out:
        emit_json(json_ready(out))
        return
    con = Console()
    con.print(f"[bold]lasso check[/] (N = {out['n_samples']}, d = {out['n_features']}, α = {out['alpha']:g}, "
              f"λ = 2α): relative objective gap to scikit-learn {out['relative_objective_gap']:.2e}, "
              f"max |Δθ| {out['max_coef_difference']:.1e}, nonzero {out['nonzero_dcs']} vs {out['nonzero_sklearn']}")
    con.print(f"critical α of the first {out['masked']} coordinates: {out['alpha_crit']:.4g}; max |θ_M| at "
              f"{out['above_factor']}·α_crit {out['masked_max_above']:.1e}, at {out['below_factor']}·α_crit "
              f"{out['masked_max_below']:.1e}")
    con.print("all checks passed" if all(out["passed"].values()) else f"[red]failed: {out['passed']}[/]")


def _resolve_symmetries(arch, symmetry: str) -> list:
    if symmetry == "none":
        return []
    if symmetry == "known":
        return arch.known_symmetries()
    if Path(symmetry).exists():
        from symdisc.discovery.artefact import load

        return [load(symmetry, arch=arch, fields="all")]
    raise InputError(f"--symmetry {symmetry!r}: choose none, known or an existing artefact directory")


def _save(out: Path, doc: dict, theta: dict) -> None:
    from symdisc.tensorio import save_tensors

    state = {k: v.detach().contiguous() for k, v in theta.items()}
    save_tensors(out / MODEL_FILE, state, metadata={"format": "symdisc-dcs-materialized"})
    write_json(out / RUN_FILE, doc)


def _check_run_dir(out: Path | None, every: int, resume: bool, restart: bool) -> None:
    """A finished run is never overwritten; an interrupted one is resumed or started over on request."""
    if out is not None and ((out / RUN_FILE).exists() or (out / MODEL_FILE).exists()):
        raise InputError(f"{out} already holds a DCS run: choose another directory")
    check_resume(out, resume, restart, "DIR, the run directory", None if out is None else out / CHECKPOINT, every)


def dcs_command(
    target: str = typer.Argument(..., help="lasso-check | a zoo preset | FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP, variant: str = VARIANT,
    constraint: str = typer.Option("sparse", "--constraint", help="sparse (Hadamard: lasso) | group (neuron gates: "
                                   "group lasso) | lowrank (A Bᵀ: nuclear norm) | auto (coverage map: DCS only where "
                                   "no verified mirror gives sparsity)"),
    alpha: float = typer.Option(None, "--alpha", help="penalty α ≥ 0 (equivalent lasso λ = 2α; default 1e-3, "
                                "lasso-check 0.05)"),
    symmetry: str = typer.Option("known", "--symmetry", help="for --constraint auto: none | known | an artefact "
                                 "directory"),
    blocks: str = typer.Option(None, "--blocks", help="comma-separated parameter names to constrain (default: every "
                               "weight matrix)"),
    steps: int = typer.Option(2000, "--steps", help="full-batch training steps"),
    lr: float = typer.Option(1e-2, "--lr", help="learning rate"),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam | sgd (momentum 0.9)"),
    n_train: int = typer.Option(256, "--n-train", help="training samples, drawn once from the architecture"),
    tol: float = typer.Option(1e-6, "--tol", help="|θ| below which a constrained entry counts as zero"),
    seed: int = typer.Option(0, "--seed"),
    device: str = DEVICE,
    out: Path = typer.Option(None, "--out", help="run directory for the materialized model (model.safetensors) and "
                             "dcs_run.json; never overwritten; checkpointed there until the run ends"),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="steps between checkpoints (with --out)"),
    resume: bool = typer.Option(False, "--resume", help="continue the interrupted run in --out from its checkpoint "
                                "(give the same options)"),
    restart: bool = typer.Option(False, "--restart", help="start over in an --out holding an interrupted run's "
                                 "checkpoint (deletes it; without --resume or --restart such an --out is refused)"),
    json_out: bool = JSON,
) -> None:
    """DCS: train with a differentiable constraint by symmetry and export the constrained plain model.

    JSON (architecture): {"target", "constraint", "symmetry", "plan" (decisions per parameter: sparse | group |
    lowrank | decay | free, reasons, coverage), "result" (alpha, steps, lr, optimizer, n_train, n_test, seed, tol,
    loss_start, loss_train, loss_test, materialized_loss_test, max_output_difference, zero_fraction, seconds,
    blocks: per parameter kind, entries, constrained, constrained_zero, zero_fraction, regulariser, decision)},
    "run_dir"}.  JSON (lasso-check): relative_objective_gap, objective_dcs, objective_sklearn, alpha, lambda,
    max_coef_difference, nonzero_dcs, nonzero_sklearn, alpha_crit, masked_max_above, masked_max_below,
    above_factor, below_factor, masked, n_samples, n_features, seed, passed.
    """
    import torch

    from symdisc.dcs.model import check_alpha
    from symdisc.dcs.targets import CHOICES, plan, train

    if alpha is not None:
        check_alpha(alpha)
    if target in EXPERIMENTS:
        if out is not None or resume or restart:
            raise InputError("lasso-check writes nothing: drop --out, --resume and --restart")
        _lasso(alpha, seed, json_out)
        return
    if constraint not in CHOICES:
        raise InputError(f"unknown constraint {constraint!r}; choose {', '.join(CHOICES)}")
    if not 0 < tol < 1:
        raise InputError(f"--tol must be in (0, 1), got {tol}")
    _check_run_dir(out, checkpoint_every, resume, restart)
    arch = load_architecture(target, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    arch = arch.to(dtype=torch.float64, device=resolve_device(device))
    names = None if blocks is None else [b.strip() for b in blocks.split(",") if b.strip()]
    syms = _resolve_symmetries(arch, symmetry) if constraint == "auto" else []
    the_plan = plan(arch, constraint, names, syms)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if restart:
            (out / CHECKPOINT).unlink(missing_ok=True)  # every input checked: now start over
    result = train(arch, the_plan, 1e-3 if alpha is None else alpha, steps=steps, lr=lr, optimizer=optimizer,
                   n_train=n_train, seed=seed, tol=tol, progress=not json_out,
                   checkpoint=None if out is None else out / CHECKPOINT, checkpoint_every=checkpoint_every,
                   resume=resume)
    doc = json_ready({"target": arch.name, "constraint": constraint,
                      "symmetry": symmetry if constraint == "auto" else None, "plan": the_plan.to_dict(),
                      "result": {k: v for k, v in result.items() if k != "theta"},
                      "run_dir": None if out is None else str(out)}, nonfinite_to_null=True)
    if out is not None:
        _save(out, doc, result["theta"])
        (out / CHECKPOINT).unlink(missing_ok=True)  # the run is stored: nothing left to resume
    if json_out:
        emit_json(doc)
        return
    r, con = doc["result"], Console()
    con.print(f"[bold]DCS on {arch.name}[/] ({constraint}, α = {r['alpha']:g}, {r['steps']} {r['optimizer']} steps, "
              f"{r['seconds']:.1f} s): test loss {r['loss_test']:.4g} "
              f"(materialized {r['materialized_loss_test']:.4g}), "
              f"zeros {r['zero_fraction']:.1%} of the parameters")
    for name, b in r["blocks"].items():
        extra = f", regulariser {b['regulariser']:.3g}" if "regulariser" in b else ""
        con.print(f"  {name}: {b['decision']}, {b['entries']} entries, {b['zero_fraction']:.1%} zero{extra}"
                  + (f" — {the_plan.reasons[name]}" if constraint == "auto" else ""))
    if out is not None:
        con.print(f"materialized model written to {out / MODEL_FILE}")
