"""``symdisc census``: count continuous symmetries from Jacobian null spaces."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from symdisc.cli.common import (
    ACT,
    BIAS,
    DIMS,
    JSON,
    LOSS,
    SKIP,
    VARIANT,
    emit_json,
    load_architecture,
    parse_ints,
)
from symdisc.devices import resolve_device
from symdisc.errors import InputError
from symdisc.io import check_writable
from symdisc.linalg import DEFAULT_RTOL
from symdisc.nullspace import census


def census_command(
    name: str = typer.Argument(..., help="zoo preset (see `symdisc zoo list`), or FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP,
    variant: str = VARIANT,
    batch_sizes: str = typer.Option(None, "--batch-sizes", help="comma-separated, e.g. 1,2,4,8 "
                                    "(default: the architecture's batch size)"),
    level: str = typer.Option("both", "--level", help="output|loss|both"),
    points: int = typer.Option(3, "--points", help="random (θ, X) per batch size; the median is reported"),
    seed: int = typer.Option(0, "--seed"),
    rtol: float = typer.Option(DEFAULT_RTOL, "--rtol", help="rank cut: σ_i > rtol·σ_max"),
    device: str = typer.Option("cpu", "--device", help="cpu|cuda"),
    max_gb: float = typer.Option(4.0, "--max-gb", help="refuse Jacobians larger than this (GiB)"),
    plot: str = typer.Option(None, "--plot", help="write a figure of dimension vs batch size (PNG/PDF/SVG)"),
    json_out: bool = JSON,
) -> None:
    """Null-space dimension of the output / per-sample-loss Jacobian vs batch size, in float64.

    JSON: {"architecture", "spec", "num_params", "known_orbit_dim", "known_loss_orbit_dim",
    "known_symmetries", "level", "points", "rtol", "seed", "dtype", "device", "seconds", "samplewise"
    (per-sample Jacobians, or of the batched forward when samples are coupled), "coupling" (why),
    "rows": [{"batch_size", "output_null_dim", "loss_null_dim", "output_null_dims", "loss_null_dims",
    "output_gap_decades", "loss_gap_decades", "seconds"}]}
    """
    if plot is not None and not plot.lower().endswith((".png", ".pdf", ".svg")):
        raise InputError(f"--plot {plot!r}: use a .png, .pdf or .svg file name")
    if plot is not None:
        check_writable(plot)
    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    sizes = parse_ints(batch_sizes, "--batch-sizes") if batch_sizes else None
    result = census(arch, sizes, level=level, points=points, seed=seed, rtol=rtol,
                    device=resolve_device(device), max_jacobian_gb=max_gb, progress=True)
    if plot:
        from symdisc.plotting import census_figure

        census_figure(result, plot)
    if json_out:
        emit_json(result.to_dict())
        return
    con = Console()
    con.print(f"[bold]{result.architecture}[/]  p = {result.num_params}  "
              f"known orbit dim = {result.known_orbit_dim} (with loss-level: {result.known_loss_orbit_dim})")
    con.print(f"[dim]{result.mode()}[/]")
    table = Table("batch", "output null dim", "loss null dim", "gap (decades)", "seconds")
    for r in result.rows:
        gap = r.output_gap_decades if r.output_gap_decades is not None else r.loss_gap_decades
        table.add_row(str(r.batch_size), str(r.output_null_dim), str(r.loss_null_dim),
                      "-" if gap is None else f"{gap:.1f}", f"{r.seconds:.2f}")
    con.print(table)
