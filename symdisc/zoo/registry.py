"""Registry of architecture presets: name → builder(**options) -> Architecture."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from symdisc.architecture import Architecture
from symdisc.errors import InputError


@dataclass(frozen=True)
class Preset:
    name: str
    builder: Callable[..., Architecture]
    summary: str
    source: str
    defaults: dict

    def options(self) -> list[str]:
        return [p for p in inspect.signature(self.builder).parameters if p != "name"]


_PRESETS: dict[str, Preset] = {}


def register(name: str, builder: Callable[..., Architecture], summary: str, source: str, **defaults) -> None:
    """Register ``name``; ``defaults`` are builder options fixed by this preset (overridable)."""
    _PRESETS[name] = Preset(name, builder, summary, source, defaults)


def names() -> list[str]:
    """The registered presets' names, in registration order (``symdisc zoo list``)."""
    return list(_PRESETS)


def preset(name: str) -> Preset:
    """The registered preset ``name`` (its builder and description); InputError naming the known ones if absent."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise InputError(f"unknown architecture {name!r}; known: {', '.join(_PRESETS)}") from None


def get(name: str, **options) -> Architecture:
    """Build the architecture ``name``; ``options`` (e.g. act, dims, bias) override the preset."""
    p = preset(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(p.options()))
    if unknown:
        raise InputError(
            f"architecture {name!r} takes no option {', '.join(unknown)} (takes: {', '.join(p.options())})"
        )
    return p.builder(name=name, **{**p.defaults, **given})
