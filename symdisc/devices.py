"""Device selection with a clear error when CUDA is asked for but absent."""

from __future__ import annotations

import torch

from symdisc.errors import InputError


def resolve_device(name: str | torch.device | None) -> torch.device:
    if name is None:
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {name!r}; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {name!r}; use cpu or cuda")
    return dev
