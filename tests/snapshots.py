"""Deep snapshots of symdisc objects, to prove that a call mutated nothing (values, dtypes, attributes)."""

from __future__ import annotations

import torch
from torch import nn

_PLAIN = (bool, int, float, str, type(None))


def snapshot(obj) -> dict[str, object]:
    """path → value for every tensor, module state, plain attribute and container reachable from ``obj``
    through symdisc objects (others, e.g. functions, by identity)."""
    out: dict[str, object] = {}
    seen: set[int] = set()

    def walk(o, path: str) -> None:
        if isinstance(o, _PLAIN):
            out[path] = o
            return
        if id(o) in seen:
            return
        seen.add(id(o))
        if isinstance(o, torch.Tensor):
            out[path] = o.detach().clone()
        elif isinstance(o, nn.Module):
            out[path + ".training"] = o.training
            for k, v in o.state_dict(keep_vars=True).items():
                walk(v, f"{path}.{k}")
        elif isinstance(o, (list, tuple)):
            out[path + ".len"] = len(o)
            for i, x in enumerate(o):
                walk(x, f"{path}[{i}]")
        elif isinstance(o, dict):
            out[path + ".keys"] = tuple(o)
            for k, x in o.items():
                walk(x, f"{path}[{k!r}]")
        elif type(o).__module__.startswith("symdisc") and hasattr(o, "__dict__"):
            for k, x in vars(o).items():
                walk(x, f"{path}.{k}")
        else:
            out[path] = ("id", id(o))

    walk(obj, "")
    return out


def assert_unchanged(before: dict[str, object], after: dict[str, object], what: str = "object") -> None:
    assert before.keys() == after.keys(), f"{what}: attributes changed: {set(before) ^ set(after)}"
    for path, old in before.items():
        new = after[path]
        if isinstance(old, torch.Tensor):
            same = (old.dtype == new.dtype and old.device == new.device and old.shape == new.shape
                    and torch.equal(old, new.detach()))
            assert same, f"{what}{path} was modified"
        else:
            assert old == new, f"{what}{path} changed from {old!r} to {new!r}"
