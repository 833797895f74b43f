"""``symdisc lift``: carry a symmetry of a block into a wider, deeper network or a smaller batch (docs/lifting.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from symdisc.cli.common import ACT, BIAS, DEVICE, DIMS, JSON, LOSS, SKIP, emit_json, load_architecture, parse_ints
from symdisc.devices import resolve_device
from symdisc.errors import InputError


def lift_command(
    source: str = typer.Argument(..., help="a learned artefact (run directory or exported file), or `known` (a known "
                                           "symmetry of the block, chosen with --symmetry)"),
    to: str = typer.Option(..., "--to", help="target: an MLP-family zoo preset (mlp, mlp-skip, tanh-3layer, …) with "
                                             "--act/--dims/--bias/--skip"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP,
    symmetry: str = typer.Option(None, "--symmetry", help="with SOURCE known: the block's known symmetry by name, "
                                                          "e.g. GL(h1), rescale(h1), sign-flip(h1)"),
    layer: int = typer.Option(1, "--layer", help="target linear layer where the block starts (1-based)"),
    units: str = typer.Option(None, "--units", help="comma-separated units of that layer for the source's hidden units "
                                                    "(default: the first h; a known block: the whole layer)"),
    batch: int = typer.Option(None, "--batch", help="real data points d′ the lifted action takes (default: the "
                                                    "source's batch d)"),
    pad_batch: int = typer.Option(None, "--pad-batch", help="d: the batch the source action takes, padded up to from "
                                                            "--batch (a learned source: its training batch)"),
    padding: str = typer.Option("fixed", "--padding", help="fixed (dummy points drawn once; Prop. 6.4.4) | random "
                                                           "(fresh at every call: a negative control, always invalid)"),
    fields: str = typer.Option("verified", "--fields", help="a learned source's fields: verified | all"),
    draws: int = typer.Option(8, "--draws", help="target (θ, X) draws of the numerical check"),
    seed: int = typer.Option(0, "--seed", help="seed of the check's draws (and of the fixed padding)"),
    out: Path = typer.Option(..., "--out", help="directory for the lifted artefact (card.json; a copy of the source)"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out"),
    device: str = DEVICE,
    json_out: bool = JSON,
) -> None:
    """Lift a symmetry of a block into a wider or deeper MLP or a smaller batch, check the lifting conditions
    (structurally and numerically, float64 on --device) and, if every one holds, save the lifted symmetry.  An
    invalid lift writes nothing and exits 2 (with --json its report is printed first).

    JSON: {"out" (null when invalid), "valid", "reason", "holds_numerically", "source": {"kind", "name"},
    "target": {"name", "spec", "num_params"}, "kinds", "placement", "layers", "units", "conditions": [{"condition",
    "ok", "detail", "reference"}], "draws", "seed", "batch", "scale", "tolerance": {"output", "fields", "basis"},
    "output_change": {"max", "median"}, "block_output_change": {"max"}, "source_output_change", "moved_median",
    "identity_error_max", "determinism_max", "composition_error": {"lifted_max", "block_max"} | null,
    "field_output_residual", "unavailable"}
    """
    from symdisc import zoo
    from symdisc.discovery.artefact import load
    from symdisc.lifting import Placement, chain_of, lift
    from symdisc.lifting.artefact import check_out, save_lifted
    from symdisc.lifting.check import check_lift

    dev = resolve_device(device)
    check_out(out, force)
    if ".py:" in to:
        raise InputError("the CLI lifts into zoo presets; for an nn.Sequential target use symdisc.lifting."
                         "sequential_target in Python")
    target = load_architecture(to, act=act, dims=dims, bias=bias, loss=loss, skip=skip)
    placement = Placement(layer, tuple(parse_ints(units, "units", 0)) if units else None, batch, pad_batch, padding,
                          seed)
    if source == "known":
        chain = chain_of(target)
        if not 1 <= layer < chain.depth:
            raise InputError(f"--layer must name a layer followed by a hidden layer of {target.name} "
                             f"(1..{chain.depth - 1}), got {layer}")
        h = len(placement.units) if placement.units else chain.dims[layer]
        spec = target.spec
        src_arch = zoo.get("mlp", dims=(chain.dims[layer - 1], h, chain.dims[layer + 1]), act=spec["act"],
                           bias=spec["bias"])
        known = {s.name: s for s in src_arch.known_symmetries()}
        if symmetry not in known:
            raise InputError(f"--symmetry must name a known symmetry of the block {list(src_arch.spec['dims'])}: "
                             f"{', '.join(known)}" + (f" (got {symmetry!r})" if symmetry else ""))
        src, source_path = known[symmetry], None
    else:
        if symmetry is not None:
            raise InputError("--symmetry chooses a known symmetry (SOURCE known); an artefact brings its own")
        src, src_arch, source_path = load(source, fields=fields), None, source
    lifted = lift(src, src_arch, target, placement, strict=False)
    report = check_lift(lifted, draws=draws, seed=seed, device=dev)
    info = {"source": {"kind": "known" if source == "known" else "learned", "name": src.name},
            "target": {"name": target.name, "spec": target.spec, "num_params": target.num_params}}
    if not report["valid"]:
        if json_out:  # the report on stdout, then the one-line error and exit 2 as always
            emit_json({"out": None, **report, **info})
        raise InputError(f"the lift is invalid: {report['reason']}")
    save_lifted(lifted, out, report, source_path=source_path, force=force)
    if json_out:
        emit_json({"out": str(out), **report, **info})
        return
    Console().print(f"[bold]{escape(lifted.name)}[/]: valid ({', '.join(report['kinds'])}); outputs change by "
                    f"{report['output_change']['max']:.2g} (tolerance {report['tolerance']['output']:.2g}) → {out}")
