"""``symdisc known``: the known symmetries of an architecture — detected by tracing, or declared by a preset."""

from __future__ import annotations

from contextlib import nullcontext

import typer
from rich.console import Console
from rich.table import Table

from symdisc.cli.common import ACT, BIAS, DEVICE, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture
from symdisc.detect import declared, detect_known
from symdisc.devices import resolve_device


def known_command(
    name: str = typer.Argument(..., help="zoo preset (see `symdisc zoo list`), or FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP,
    variant: str = VARIANT,
    detect_: bool = typer.Option(None, "--detect/--declared",
                                 help="trace the forward and detect (default for user modules), or list the "
                                      "preset's declared symmetries (default for zoo presets)"),
    show_rejected: bool = typer.Option(False, "--rejected", help="also list the candidates that failed verification"),
    device: str = DEVICE,
    json_out: bool = JSON,
) -> None:
    """Known continuous symmetries, each verified in float64 on --device (max relative output change ≤ 1e-10
    under a random group element at random θ, X) and ranked: ``rank_added`` is the orbit dimension it adds to
    those above it.

    JSON: {"architecture", "traced" (detection ran on a traced graph), "message", "orbit_dim" (rank of all
    the output-preserving fields at a random θ: the census's explained dimension), "loss_orbit_dim" (with the
    loss-level ones: softmax translation of a cross-entropy head), "by_kind" {kind: dimension}, "entries":
    [{"name", "kind", "num_generators", "rule", "max_rel_change", "verified", "rank_added"}], "rejected"
    (same fields), "notes", "unknown_ops" (ops the dataflow did not follow: no claim through them), "seconds"}
    """
    dev = resolve_device(device)
    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    user = hasattr(arch.symmetry_factory, "detect_module") or ".py:" in name
    run = detect_known if (detect_ if detect_ is not None else user) else declared
    what = "detecting symmetries" if run is detect_known else "verifying symmetries"
    with Console(stderr=True).status(what) if not json_out else nullcontext():
        report = run(arch, device=dev)
    if json_out:
        emit_json({**report.to_dict(), "by_kind": report.by_kind()})
        return
    con = Console()
    con.print(f"[bold]{report.architecture}[/]  p = {arch.num_params}  known orbit dim = {report.orbit_dim}  "
              f"[dim]({report.message}; {report.seconds:.1f} s)[/]")
    table = Table("kind", "symmetry", "k", "adds", "max rel. change")
    rows = report.entries + (report.rejected if show_rejected else [])
    for e in rows:
        table.add_row(e.kind, e.name if e.verified else f"[red]{e.name} (rejected)[/]", str(e.num_generators),
                      str(e.rank_added), f"{e.max_rel_change:.1e}")
    con.print(table)
    if report.by_kind():
        con.print("by kind: " + ", ".join(f"{k} {v}" for k, v in report.by_kind().items()))
    for note in report.notes:
        con.print(f"[dim]note: {note}[/]")
