"""``symdisc census --matrix-free``: check symmetry fields and a block's null dimension by jvp / vjp."""

from __future__ import annotations

import torch
from rich.console import Console

from symdisc.architecture import Architecture, make_generator
from symdisc.cli.common import emit_json
from symdisc.errors import InputError
from symdisc.matrixfree import check_fields, subspace_null_dimension
from symdisc.symmetry.known import continuous_symmetries


def _fields(spec: str, arch: Architecture, level: str, theta: torch.Tensor, seed: int):
    """known → the known continuous symmetries of the level; random:K → K Gaussian directions; none → None."""
    if spec == "none":
        return None, []
    if spec == "known":
        syms = continuous_symmetries(arch, "output" if level == "output" else None)
        if not syms:
            raise InputError(f"{arch.name} has no known continuous symmetries to check (use --fields random:K)")
        return syms, [s.name for s in syms]
    if spec.startswith("random:"):
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError:
            k = 0
        if k < 1:
            raise InputError(f"--fields {spec!r}: expected random:K with K ≥ 1")
        g = make_generator(seed, 2)
        return torch.randn(arch.num_params, k, generator=g, dtype=torch.float64).to(theta), []
    raise InputError(f"--fields {spec!r}: choose known, random:K or none")


def run_matrix_free(arch: Architecture, sizes: list[int] | None, level: str, seed: int, fields: str,
                    block: str | None, device, max_gb: float, json_out: bool) -> None:
    """One point (θ_0, X) of the census's streams at the first batch size."""
    if level not in ("output", "loss", "both"):
        raise InputError(f"unknown level {level!r}; choose output, loss or both")
    level = "output" if level == "both" else level
    B = (sizes or [arch.default_batch_size])[0]
    arch = arch.to(dtype=torch.float64, device=device)
    theta = arch.sample_params(make_generator(seed, 0, 0))
    X, Y = arch.sample_data(B, make_generator(seed, 1, 0, B))
    chosen, names = _fields(fields, arch, level, theta, seed)
    checked = None if chosen is None else check_fields(arch, theta, X, chosen, Y, level, progress=True)
    names_b = [n for n in (block or "").replace(" ", "").split(",") if n]
    sub = subspace_null_dimension(arch, theta, X, block=names_b, Y=Y, level=level, max_gb=max_gb) if names_b else None
    if checked is None and sub is None:
        raise InputError("--matrix-free with --fields none needs --block")
    doc = {"architecture": arch.name, "num_params": arch.num_params, "batch_size": B, "level": level, "seed": seed,
           "dtype": "float64", "device": str(arch.device), "known_symmetries": names,
           "fields": None if checked is None else checked.to_dict(), "block": None if sub is None else sub.to_dict()}
    if json_out:
        emit_json(doc)
        return
    con = Console()
    con.print(f"[bold]{arch.name}[/]  p = {arch.num_params}  batch {B}, {level} level, matrix-free")
    if checked is not None:
        con.print(f"fields ({fields}): {len(checked.names)} checked, ‖J ξ‖/(‖J‖‖ξ‖) max {checked.max_residual:.2e}, "
                  f"median {checked.median_residual:.2e}; ‖J‖₂ ≈ {checked.jacobian_norm:.3e} "
                  f"({checked.seconds:.1f} s, peak +{checked.peak_memory_mib:.0f} MiB)")
    if sub is not None:
        count = f"[red]ambiguous[/] ({sub.rank} or {sub.runner_up_null_dim})" if sub.null_dim is None else sub.null_dim
        gap = "-" if sub.gap_decades is None else f"{sub.gap_decades:.1f}"
        con.print(f"block {sub.subspace}: dim {sub.dim}, null dim {count} (gap {gap} decades; "
                  f"{sub.seconds:.1f} s, peak +{sub.peak_memory_mib:.0f} MiB)")
