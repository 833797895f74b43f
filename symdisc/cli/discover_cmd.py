"""``symdisc discover | verify | export``: learn symmetries, check them on held-out data, export them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import ACT, BIAS, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture
from symdisc.errors import InputError


def discover_command(
    name: str = typer.Argument(..., help="zoo preset or FILE.py:FUNC"),
    out: Path = typer.Option(..., "--out", help="run directory (checkpoints, metrics.jsonl, artefact, figures)"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP, variant: str = VARIANT,
    generators: int = typer.Option(1, "--generators", "-k", help="number k of Lie algebra generators"),
    steps: int = typer.Option(None, "--steps", help="training steps (default 1000)"),
    preset: str = typer.Option("default", "--preset", help="default | faithful (eq. 6.3 as printed)"),
    kind: str = typer.Option(None, "--kind", help="generators: free (p×p, Stiefel) | lowrank"),
    rank: int = typer.Option(None, "--rank", help="rank of each low-rank generator"),
    batch: int = typer.Option(None, "--batch", help="data samples per draw (default: the architecture's)"),
    draws: int = typer.Option(None, "--draws", help="(θ, X) draws per step (default 32)"),
    level: str = typer.Option(None, "--level", help="invariance of the per-sample loss (loss) or outputs (output)"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help="cpu|cuda"),
    resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint in --out"),
    verify_draws: int = typer.Option(16, "--verify-draws", help="held-out draws for verification (0: skip)"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="write PNG figures into --out"),
    json_out: bool = JSON,
) -> None:
    """Learn an action a(g, θ, X) and k generators under which the loss is invariant; verify and save them.

    JSON: {"out", "architecture", "num_params", "config", "training": {"steps", "stopped", "seconds",
    "final"}, "verification": (as `symdisc verify`) | null, "figures": [paths]}
    """
    from symdisc.discovery.api import discover

    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    report = discover(arch, out, k=generators, steps=steps, preset=preset, generator_kind=kind, rank=rank,
                      batch=batch, draws=draws, level=level, seed=seed, device=device, resume=resume,
                      verify_draws=verify_draws, make_figures=figures, progress=True)
    if json_out:
        emit_json(report)
        return
    con = Console()
    t = report["training"]
    con.print(f"[bold]{report['architecture']}[/] p = {report['num_params']}: {t['steps']} steps "
              f"({t['stopped']}, {t['seconds']:.1f} s) → {report['out']}")
    if report["verification"]:
        con.print(report["verification"]["verdict"])


def verify_command(
    directory: Path = typer.Argument(..., help="run directory of `symdisc discover`, or an exported file"),
    arch_spec: str = typer.Option(None, "--arch", help="FILE.py:FUNC for artefacts learned on a user module"),
    draws: int = typer.Option(16, "--draws", help="held-out (θ, X) draws"),
    seed: int = typer.Option(0, "--seed", help="seed of the held-out stream"),
    json_out: bool = JSON,
) -> None:
    """Verify a learned symmetry on held-out draws in float64 (and record it in the card of a run directory).

    JSON: {"batch_size", "draws", "num_generators", "num_params", "invariance": {"median", "p90",
    "output_median"}, "curves": {"orbit"|"flow": {"learned_median", "random_median", "ratio"}},
    "identity_error_median", "composition_error_median": {t: …}, "bracket_residual_median",
    "closure_residual_median", "data_dependence_median", "census": {"output_null_dim", "loss_null_dim"},
    "known_orbit_dim", "principal_angles_mean_cos2": {"output_null", "loss_null", "known"},
    "fields": [{"index", "invariance_median", "output_residual_median", "class", "null_share_output",
    "null_share_loss", "known_share", "novelty", "data_dependence"}], "counts", "verdict"}
    """
    from symdisc.discovery.api import verify_artefact

    arch = load_architecture(arch_spec) if arch_spec else None
    report = verify_artefact(directory, arch=arch, draws=draws, seed=seed)
    if json_out:
        emit_json(report)
        return
    Console().print(report["verdict"])


def export_command(
    directory: Path = typer.Argument(..., help="run directory of `symdisc discover`"),
    to: Path = typer.Option(..., "--to", help="output .safetensors file (tensors + generator matrices + card)"),
    json_out: bool = JSON,
) -> None:
    """Export a learned symmetry as one portable safetensors file (loads without executing code).

    JSON: {"file", "bytes", "architecture", "num_generators", "layout_hash"}
    """
    from symdisc.discovery.artefact import export, read_card

    if to.suffix != ".safetensors":
        raise InputError(f"--to {to}: use a .safetensors file name")
    card = read_card(directory)
    path = export(directory, to)
    info = {"file": str(path), "bytes": path.stat().st_size, "architecture": card["architecture"]["name"],
            "num_generators": card["generators"]["k"], "layout_hash": card["architecture"]["layout_hash"]}
    if json_out:
        emit_json(info)
        return
    Console().print(f"exported {info['architecture']} (k = {info['num_generators']}) to {info['file']}")
