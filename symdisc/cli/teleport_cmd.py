"""``symdisc teleport EXPERIMENT``: run a teleportation experiment (docs/teleport.md, docs/cli.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import JSON, emit_json
from symdisc.errors import InputError
from symdisc.io import check_writable, json_ready, write_json

SYMMETRY_EXPERIMENTS = ("regression", "digits")  # experiments whose symmetry can be a learned artefact


def _summary(result: dict) -> list[str]:
    exp = result["experiment"]
    if exp in ("booth", "ellipse"):
        t = result["training"]
        return [f"‖∇L‖²/L: {result['grad_norm_sq_over_loss_before']:.4g} → "
                f"{result['grad_norm_sq_over_loss_after']:.6g} (bound {result['bound']:g}), "
                f"loss change {result['loss_change']:.2e}",
                f"{t['optimizer']} {t['steps']} steps: final loss {t['plain']['losses'][-1]:.4g} without, "
                f"{t['teleport']['losses'][-1]:.4g} with teleport"]
    if exp == "rosenbrock":
        return [f"distance to (1, 1) after {result['steps']} steps: {result['distance_plain']:.4g} without, "
                f"{result['distance_teleport']:.4g} with teleport every {result['teleport_every']}"]
    if exp == "digits":
        lines = []
        for name, arms in result["summary"].items():
            for arm, entry in arms.items():
                cost = entry.get("teleport", {}).get("fraction_of_epoch")
                train, test = entry["train_loss"]["mean"][-1], entry["test_loss"]["mean"][-1]
                lines.append(f"{name} ({arm}): final training loss {train:.4g}, test loss {test:.4g}"
                             + (f", teleport = {cost:.2g} epochs" if cost else ""))
        return lines
    if exp == "schedules":
        last = str(result["setup"]["epochs"])
        head = f"Δ log10 training loss at epoch {last}, teleport − none (seeds kept, diverged):"
        return [head] + [f"  {arm}: {g['train_loss'][last]['mean']:+.4f} ({g['train_loss'][last]['n']}, "
                         f"{g['train_loss'][last]['diverged']})"
                         for arm, g in result["paired_log10_gap"].items() if g["train_loss"][last]["mean"] is not None]
    if exp == "meta":
        return [f"{m['label']}: loss at step {t} = {m['loss_at'][str(t)]['mean']:.4g}"
                for m in result["methods"].values() for t in result["checkpoints"][-1:]] + [
            f"lowest final loss: {result['lowest_final_loss']}"]
    if exp == "regression":
        lines = []
        for name, r in result["optimizers"].items():
            s = r["summary"]
            parts = [f"L<{t}: ×{s[t]['speedup_median']:.3g}" if s[t]["speedup_median"] else f"L<{t}: –"
                     for t in map(str, result["targets"])]
            lines.append(f"{name}: median speed-up in steps {', '.join(parts)}; max |ΔL| at teleport "
                         f"{s['max_abs_loss_change']:.1e}; diverged {s['diverged_teleport']}/{len(r['seeds'])}")
        return lines
    return [json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))})]


def teleport_command(
    experiment: str = typer.Argument(..., help="booth | ellipse | rosenbrock | regression | digits | schedules | meta"),
    optimizer: str = typer.Option(None, "--optimizer", help="gd | momentum | adagrad | rmsprop | adam "
                                  "(default: the experiment's; regression: gd and adagrad)"),
    symmetry: str = typer.Option("known", "--symmetry", help="known, or the directory of a learned artefact "
                                 "(symdisc discover) of the experiment's architecture"),
    seeds: int = typer.Option(5, "--seeds", help="independent runs (regression, digits, schedules)"),
    variant: str = typer.Option("symdisc", "--variant", help="symdisc (exp, Armijo, step cap) | faithful "
                                "(papers' first-order I+T plain ascent)"),
    state_policy: str = typer.Option("transform", "--state-policy", help="optimizer state at a teleport: "
                                     "transform | keep | reset"),
    objective: str = typer.Option("grad_norm", "--objective", help="grad_norm | adagrad (regression)"),
    smoke: bool = typer.Option(False, "--smoke", help="a tiny configuration (seconds)"),
    out: Path = typer.Option(None, "--out", help="also write the full result JSON here (atomic)"),
    plot: Path = typer.Option(None, "--plot", help="write loss / ‖∇L‖² curves with and without teleport (PNG)"),
    json_out: bool = JSON,
) -> None:
    """Teleport along a symmetry inside an optimizer and compare with plain training (docs/teleport.md).

    JSON (all): {"experiment", "source", ...}.  booth / ellipse: "grad_norm_sq_over_loss_before",
    "grad_norm_sq_over_loss_after", "bound", "loss_before", "loss_after", "loss_change", "log", "training":
    {"plain", "teleport": {"losses", "grad_norm_sq", "teleports", "seconds", "distance_to_minimiser"}}.
    rosenbrock: "distance_plain", "distance_teleport", "runs".  regression: "optimizers": {name: {"lr",
    "teleport_config", "summary": {target: {"speedup_median", "reached_plain", "reached_teleport"},
    "max_abs_loss_change", "diverged_teleport", "diverged_plain"}, "seeds": [...]}}.
    """
    from symdisc.teleport.experiments import RUNNERS, RunOptions

    if experiment not in RUNNERS:
        raise InputError(f"unknown teleport experiment {experiment!r}; choose one of {', '.join(RUNNERS)}")
    if seeds < 1:
        raise InputError(f"--seeds must be ≥ 1, got {seeds}")
    if symmetry != "known":
        if experiment not in SYMMETRY_EXPERIMENTS:
            raise InputError(f"{experiment} teleports along its own analytic action; --symmetry DIR applies to "
                               f"{', '.join(SYMMETRY_EXPERIMENTS)}")
        if not Path(symmetry).exists():
            raise InputError(f"--symmetry {symmetry!r}: no such artefact directory or file")
    for path, suffix in ((out, ".json"), (plot, ".png")):
        if path is not None:
            if path.suffix.lower() != suffix:
                raise InputError(f"{path}: expected a {suffix} file name")
            check_writable(path)
    opts = RunOptions(optimizer=optimizer, symmetry=symmetry, seeds=seeds, variant=variant,
                      state_policy=state_policy, objective=objective, smoke=smoke)
    result = json_ready(RUNNERS[experiment](opts))
    if out is not None:
        write_json(out, result)
    if plot is not None:
        from symdisc.teleport.figures import comparison_figure

        comparison_figure(result, plot)
    if json_out:
        emit_json(result)
        return
    con = Console()
    con.print(f"[bold]teleport {experiment}[/] ({result.get('source', '')})")
    for line in _summary(result):
        con.print(line)
