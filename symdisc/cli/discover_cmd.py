"""``symdisc discover | verify | export``: learn symmetries, check them on held-out data, export them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from symdisc.cli.common import ACT, BIAS, DEVICE, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture
from symdisc.devices import resolve_device
from symdisc.errors import InputError
from symdisc.zoo import names as zoo_names


def discover_command(
    name: str = typer.Argument(..., help="zoo preset or FILE.py:FUNC"),
    out: Path = typer.Option(..., "--out", help="run directory (checkpoints, metrics.jsonl, artefact, figures)"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP, variant: str = VARIANT,
    generators: int = typer.Option(1, "--generators", "-k", help="number k of Lie algebra generators"),
    steps: int = typer.Option(None, "--steps", help="training steps (default 1000)"),
    preset: str = typer.Option("default", "--preset", help="default (= constrained: fields projected onto the "
                               "output null space, flow action) | unconstrained (the fields as learned; can find "
                               "loss-only symmetries) | faithful (eq. 6.3 as printed)"),
    kind: str = typer.Option(None, "--kind", help="generators: free (p×p, Stiefel) | lowrank"),
    rank: int = typer.Option(None, "--rank", help="rank of each low-rank generator"),
    batch: int = typer.Option(None, "--batch", help="data samples per draw (default: the architecture's)"),
    draws: int = typer.Option(None, "--draws", help="(θ, X) draws per step (default 32)"),
    level: str = typer.Option(None, "--level", help="invariance of the per-sample loss (loss) or outputs (output)"),
    seed: int = typer.Option(0, "--seed"),
    device: str = DEVICE,
    resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint in --out"),
    restart: bool = typer.Option(False, "--restart", help="start over in an --out that holds the checkpoint of an "
                                                          "interrupted run (deletes it; without --resume or "
                                                          "--restart such an --out is refused)"),
    block: int = typer.Option(None, "--block", help="incremental discovery: train at most this many fields per "
                              "round, freezing those that verify (default: all k at once)"),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="steps between checkpoints (default 100; "
                                         "a killed run resumes from the last one with --resume)"),
    verify_draws: int = typer.Option(16, "--verify-draws", help="held-out draws for verification (0: skip)"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="write PNG figures into --out"),
    json_out: bool = JSON,
) -> None:
    """Learn an action a(g, θ, X) and k generators under which the loss is invariant; verify and save them.

    JSON: {"out", "architecture", "num_params", "config", "training": {"steps", "stopped", "seconds",
    "final", with --block also "rounds", "requested_k", "verified_in_rounds"}, "verification": (as `symdisc
    verify`; "verified" lists the fields kept for use) | null, "figures": [paths]}
    """
    from symdisc.discovery.api import discover

    if level not in (None, "loss", "output"):
        raise InputError(f"--level must be loss or output, got {level!r}")
    if not resume and (out / "card.json").exists():
        raise InputError(f"--out {out} already holds a discovery run: use --resume or another --out")
    if resume and block is not None and block < generators:
        raise InputError("an incremental run (--block < -k) cannot be resumed: start it again with another --out")
    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    report = discover(arch, out, k=generators, steps=steps, preset=preset, generator_kind=kind, rank=rank,
                      batch=batch, draws=draws, level=level, seed=seed, device=device, resume=resume,
                      verify_draws=verify_draws, make_figures=figures, progress=True, block=block, restart=restart,
                      checkpoint_every=checkpoint_every)
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
    source: str = typer.Argument(..., help="artefact (run directory or exported file); with --symmetry: zoo preset "
                                           "or FILE.py:FUNC"),
    symmetry: str = typer.Option(None, "--symmetry", help="known (the architecture's known continuous "
                                                          "symmetries) or an artefact learned on it; SOURCE is then "
                                                          "the architecture"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP, variant: str = VARIANT,
    arch_spec: str = typer.Option(None, "--arch", help="FILE.py:FUNC for artefacts learned on a user module"),
    draws: int = typer.Option(16, "--draws", help="held-out (θ, X) draws"),
    seed: int = typer.Option(0, "--seed", help="seed of the held-out stream"),
    batch: int = typer.Option(None, "--batch", help="samples per draw (default: the artefact's training batch, "
                                                    "else the architecture's)"),
    curves: bool = typer.Option(True, "--curves/--no-curves", help="loss along orbit and flow curves vs random ones "
                                                                   "(the slow part)"),
    device: str = DEVICE,
    json_out: bool = JSON,
) -> None:
    """Verify a symmetry on held-out draws in float64: a learned artefact (its card records the result), or with
    --symmetry the known continuous symmetries of an architecture (or an artefact learned on it).

    JSON (one symmetry): {"batch_size", "draws", "seed", "held_out_stream", "num_generators", "num_params",
    "symmetry", "exactness": {"exact", "exact_draws", "condition"}, "invariance": {"median", "p90",
    "output_median"}, "curves": {"orbit"|"flow": {"learned_median", "random_median", "ratio"}},
    "identity_error_median", "composition_error_median": {t: …}, "bracket_residual_median",
    "closure_residual_median", "data_dependence_median", "census": {"output_null_dim", "loss_null_dim"},
    "known_orbit_dim", "principal_angles_mean_cos2": {"output_null", "loss_null", "known"},
    "fields": [{"index", "invariance_median", "output_residual_median", "class", "null_share_output",
    "null_share_loss", "known_share", "novelty", "data_dependence"}], "counts", "unavailable", "found", "verdict"}.
    --symmetry known: {"architecture", "num_params", "symmetries": (one such report per symmetry)}
    """
    from symdisc.verification import verify

    options = dict(act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    run = dict(draws=draws, seed=seed, batch=batch, curves=curves, device=str(resolve_device(device)))
    if symmetry is None:
        _check_artefact_source(source, options)
        report = verify(Path(source), arch=load_architecture(arch_spec) if arch_spec else None, **run)
        _emit(report, json_out)
        return
    if arch_spec:
        raise InputError("--arch names the architecture of an artefact SOURCE; with --symmetry, SOURCE is the "
                         "architecture")
    arch = load_architecture(source, **options)
    if symmetry != "known":
        if not Path(symmetry).exists():
            raise InputError(f"--symmetry takes known or an artefact path; {symmetry!r} is neither")
        _emit(verify(Path(symmetry), arch=arch, **run), json_out)
        return
    syms = [s for s in arch.known_symmetries() if not s.discrete]
    if not syms:
        raise InputError(f"{arch.name} has no known continuous symmetry to verify "
                         f"(known: {', '.join(s.name for s in arch.known_symmetries()) or 'none'})")
    reports = [verify(s, arch=arch, **run) for s in syms]
    if json_out:
        emit_json({"architecture": arch.name, "num_params": arch.num_params, "symmetries": reports})
        return
    for r in reports:
        Console().print(f"[bold]{escape(r['symmetry']['name'])}[/]: {escape(r['verdict'])}")


def _check_artefact_source(source: str, options: dict) -> None:
    """Without --symmetry SOURCE is an artefact; say so when it names an architecture instead."""
    if Path(source).exists():
        if any(v is not None for v in options.values()):
            raise InputError("architecture options (--act, --dims, …) describe a zoo preset: pass the preset as "
                             "SOURCE with --symmetry known (or --symmetry DIR)")
        return
    if ".py:" in source or source in zoo_names():
        raise InputError(f"{source} is an architecture: add --symmetry known (its known symmetries) or "
                         "--symmetry DIR (an artefact learned on it)")


def _emit(report: dict, json_out: bool) -> None:
    if json_out:
        emit_json(report)
        return
    Console().print(escape(report["verdict"]))


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
