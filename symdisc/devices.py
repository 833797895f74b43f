"""Device selection with a clear error when CUDA is asked for but absent."""

from __future__ import annotations

import torch

from symdisc.errors import SymdiscError


def resolve_device(name: str | torch.device | None) -> torch.device:
    if name is None:
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise SymdiscError(f"unknown device {name!r}; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SymdiscError("--device cuda requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise SymdiscError(f"unsupported device {name!r}; use cpu or cuda")
    return dev
