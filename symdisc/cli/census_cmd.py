"""``symdisc census``: count continuous symmetries from Jacobian null spaces (or check fields matrix-free)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

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
from symdisc.devices import resolve_device
from symdisc.errors import InputError
from symdisc.io import check_writable
from symdisc.linalg import MIN_GAP_DECADES
from symdisc.nullspace import CensusResult, CensusRow, census


def census_command(
    name: str = typer.Argument(..., help="zoo preset (see `symdisc zoo list`), or FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP,
    variant: str = VARIANT,
    batch_sizes: str = typer.Option(None, "--batch-sizes", help="comma-separated, e.g. 1,2,4,8 "
                                    "(default: the architecture's batch size)"),
    level: str = typer.Option("both", "--level", help="output|loss|both"),
    points: int = typer.Option(3, "--points", help="random (θ, X) per batch size; the median is reported"),
    seed: int = typer.Option(0, "--seed"),
    cut: str = typer.Option(None, "--cut", help="gap: rank at the largest spectral gap (default); rtol: the fixed "
                            "cut σ_i > rtol·σ_max"),
    rtol: float = typer.Option(None, "--rtol", help="the fixed cut's rtol (giving it selects --cut rtol; "
                               "default 1e-10)"),
    min_gap: float = typer.Option(MIN_GAP_DECADES, "--min-gap", help="gap cut: a point whose gap is narrower "
                                  "(decades) is ambiguous"),
    method: str = typer.Option("auto", "--method", help="singular values by auto|svd|gram (auto: gram from "
                               "min(N, p) ≥ 1024)"),
    matrix_free: bool = typer.Option(False, "--matrix-free", help="check --fields and --block by jvp/vjp "
                                     "instead of counting (any p; first batch size, one point)"),
    fields: str = typer.Option("known", "--fields", help="--matrix-free: known | random:K | none"),
    block: str = typer.Option(None, "--block", help="--matrix-free: comma-separated tensor names; reports "
                              "the null dimension of J on their coordinates"),
    device: str = DEVICE,
    max_gb: float = typer.Option(4.0, "--max-gb", help="refuse Jacobians / Gram matrices larger than this (GiB)"),
    plot: str = typer.Option(None, "--plot", help="write a figure of dimension vs batch size (PNG/PDF/SVG)"),
    json_out: bool = JSON,
) -> None:
    """Null-space dimension of the output / per-sample-loss Jacobian vs batch size, in float64.

    JSON: {"architecture", "spec", "num_params", "known_orbit_dim", "known_loss_orbit_dim",
    "known_symmetries", "level", "points", "cut" (gap|rtol), "rtol" (the fixed cut's; null under the gap cut),
    "method" (auto|svd|gram, asked for), "min_gap", "gap_margin", "seed", "dtype", "device", "seconds",
    "samplewise" (per-sample Jacobians, or of the batched forward when samples are coupled), "coupling" (why),
    "rows": [{"batch_size", "output_null_dim", "loss_null_dim" (median over the points whose cut is not
    ambiguous; null if all are), "output_null_dims", "loss_null_dims" (each point's count at its cut),
    "output_gap_decades", "loss_gap_decades" (smallest gap at the cut), "output_ambiguous", "loss_ambiguous"
    (per point), "output_runner_up_null_dims", "loss_runner_up_null_dims" (count at the second-largest gap),
    "output_cut_rtols", "loss_cut_rtols" (effective rtol of each point's cut), "output_methods", "loss_methods"
    (svd | gram | gram>svd), "output_unexplained", "loss_unexplained" (null dim − known orbit dim), "seconds"}]}

    With --matrix-free: {"architecture", "num_params", "batch_size", "level", "seed", "dtype", "device",
    "known_symmetries", "fields": {"level", "num_params", "rows", "names", "residuals" (‖J ξ‖ / (‖J‖₂ ‖ξ‖)),
    "field_norms", "jacobian_norm", "norm_estimate", "max_residual", "median_residual", "seconds",
    "peak_memory_mib", "memory_kind"} | null, "block": {"subspace", "dim", "null_dim", "rank", "gap_decades",
    "cut_rtol", "ambiguous", "runner_up_null_dim", "singular_values", "seconds", "peak_memory_mib",
    "memory_kind", …} | null}
    """
    if plot is not None and not plot.lower().endswith((".png", ".pdf", ".svg")):
        raise InputError(f"--plot {plot!r}: use a .png, .pdf or .svg file name")
    if plot is not None:
        check_writable(plot)
    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    sizes = parse_ints(batch_sizes, "--batch-sizes") if batch_sizes else None
    if matrix_free:
        if plot is not None:
            raise InputError("--plot needs the census, not --matrix-free")
        from symdisc.cli.census_matrixfree import run_matrix_free

        run_matrix_free(arch, sizes, level, seed, fields, block, resolve_device(device), max_gb, json_out)
        return
    result = census(arch, sizes, level=level, points=points, seed=seed, rtol=rtol, cut=cut, method=method,
                    min_gap=min_gap, device=resolve_device(device), max_jacobian_gb=max_gb, progress=True)
    if plot:
        from symdisc.plotting import census_figure

        census_figure(result, plot)
    if json_out:
        emit_json(result.to_dict())
        return
    _print_table(result)


def _count(r: CensusRow, lvl: str) -> str:
    dims, amb = getattr(r, f"{lvl}_null_dims"), getattr(r, f"{lvl}_ambiguous")
    if not dims:
        return "-"
    value = getattr(r, f"{lvl}_null_dim")
    if value is None:  # every point ambiguous: the candidates, unsupported
        runner = getattr(r, f"{lvl}_runner_up_null_dims")
        cands = sorted({d for d in dims + runner if d is not None})
        return f"[red]ambiguous[/] ({' or '.join(map(str, cands))})"
    n = sum(amb)
    return f"{value}" + (f" [yellow]({n}/{len(dims)} ambiguous)[/]" if n else "")


def _print_table(result: CensusResult) -> None:
    con = Console()
    if not con.is_terminal:  # a pipe or a file: no width to respect, keep the table's rows on one line each
        con = Console(width=max(con.width, 120))
    con.print(f"[bold]{result.architecture}[/]  p = {result.num_params}  "
              f"known orbit dim = {result.known_orbit_dim} (with loss-level: {result.known_loss_orbit_dim})")
    rule = (f"rank at the largest gap above √max(N,p)·ε·σ_max (ambiguous under {result.min_gap:g} decades or a "
            f"runner-up within {result.gap_margin:g})" if result.cut == "gap" else
            f"fixed cut σ_i > {result.rtol:g}·σ_max")
    con.print(f"[dim]{result.mode()}; {rule}[/]")
    table = Table("batch", "output null dim", "unexplained", "loss null dim", "unexplained", "gap (dec.)",
                  "cut rtol", "method", "seconds")
    for r in result.rows:
        gap = r.output_gap_decades if r.output_gap_decades is not None else r.loss_gap_decades
        rtols = [x for x in (r.output_cut_rtols or r.loss_cut_rtols) if x is not None]  # as the gap column
        methods = sorted(set(r.output_methods + r.loss_methods))
        table.add_row(str(r.batch_size), _count(r, "output"), _fmt(r.output_unexplained), _count(r, "loss"),
                      _fmt(r.loss_unexplained), "-" if gap is None else f"{gap:.1f}",
                      "-" if not rtols else f"{max(rtols):.0e}", ",".join(methods), f"{r.seconds:.2f}")
    con.print(table)


def _fmt(x: int | None) -> str:
    return "-" if x is None else str(x)
