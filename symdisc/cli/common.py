"""Shared CLI pieces: architecture options, user-module loading, JSON output."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import typer

from symdisc import zoo
from symdisc.architecture import Architecture
from symdisc.errors import InputError

ACT = typer.Option(None, "--act", help="activation: linear|relu|leakyrelu|tanh|sigmoid|gelu|softplus|radial")
DIMS = typer.Option(None, "--dims", help="comma-separated layer widths d_0,…,d_L, e.g. 3,3,1")
BIAS = typer.Option(None, "--bias/--no-bias", help="biases on every layer (MLP presets)")
LOSS = typer.Option(None, "--loss", help="per-sample loss: mse|cross_entropy")
SKIP = typer.Option(None, "--skip/--no-skip", help="residual skips between equal-width hidden layers (MLP)")
VARIANT = typer.Option(None, "--variant", help="tiny-transformer reading: plain (p=28)|wo (p=32)|ffn-bias (p=32)")
DEVICE = typer.Option("cpu", "--device", help="cpu | cuda")
JSON = typer.Option(False, "--json", help="print one JSON document on stdout (fields: docs/cli.md)")


def load_architecture(name: str, **options: Any) -> Architecture:
    """A zoo preset, or ``FILE.py:FUNC`` where FUNC() returns an Architecture, (module, sample_batch, loss) or
    (module, sample_batch, loss, symmetries) with ``symmetries(arch) -> [Symmetry]`` its known symmetries."""
    if ".py:" not in name:
        return zoo.get(name, **options)
    if any(v is not None for v in options.values()):
        raise InputError("architecture options (--act, --dims, …) apply to zoo presets, not to FILE.py:FUNC")
    file, func = name.rsplit(":", 1)
    path = Path(file)
    if not path.is_file():
        raise InputError(f"no such file {file!r}")
    spec = importlib.util.spec_from_file_location(f"symdisc_user_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        factory = getattr(module, func)
    except AttributeError:
        raise InputError(f"{file} defines no {func!r}") from None
    except Exception as e:  # noqa: BLE001 - user code
        raise InputError(f"importing {file} failed: {type(e).__name__}: {e}") from e
    try:
        made = factory()
    except Exception as e:  # noqa: BLE001 - user code
        raise InputError(f"{name}() failed: {type(e).__name__}: {e}") from e
    if isinstance(made, Architecture):
        return made
    if isinstance(made, tuple) and len(made) in (3, 4):
        return zoo.from_module(*made[:3], name=func, symmetries=made[3] if len(made) == 4 else None)
    raise InputError(f"{name}() must return an Architecture, (module, sample_batch, loss) or "
                     "(module, sample_batch, loss, symmetries)")


def parse_ints(text: str, what: str, minimum: int = 1) -> list[int]:
    try:
        values = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise InputError(f"malformed {what} {text!r}: expected comma-separated integers") from None
    if not values or any(v < minimum for v in values):
        raise InputError(f"malformed {what} {text!r}: expected integers ≥ {minimum}")
    return values


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
