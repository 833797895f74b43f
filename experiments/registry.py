"""The registry of reproduction runners: one :class:`Runner` per name, collected from the modules in ``MODULES``.

A runner is a pure function ``run(config, seed) -> dict`` — the JSON-ready result of ONE seed, every
random draw made from ``symdisc.make_generator(seed, stream, ...)``, so that a seed's result never
depends on the order of runs or on which other seeds run — plus ``figure(document, path)``, which
draws the written result document (``{"runner", "config", "seeds", "results", "summary", ...}``) at
``path`` (a runner with several figures writes ``<stem>_<part>.png`` beside it), the declared
``defaults`` (every config key), ``smoke`` (overrides for a seconds-long CI run), optionally
``summarize(results, config)`` (statistics over seeds) and ``default_seeds``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from symdisc.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
MODULES = (
    "experiments.teleport.testfunctions", "experiments.teleport.e3_regression", "experiments.teleport.e4_sweep",
    "experiments.teleport.e7_runtime", "experiments.teleport.e12_digits", "experiments.teleport.e6_schedules",
    "experiments.teleport.e8_correlation", "experiments.teleport.e9_generalization", "experiments.teleport.e13_meta",
    "experiments.discovery.reproductions", "experiments.census.presets", "experiments.census.detected",
    "experiments.ridge.symmetric_rr",
    "experiments.ridge.toy", "experiments.ridge.tree_rl", "experiments.ridge.lever_game",
    "experiments.ridge.digits_rr", "experiments.ridge.colored_rr",
    "experiments.dcs.sparse_regression", "experiments.dcs.matrix_factorization",
    "experiments.dcs.lasso_path", "experiments.dcs.digits_compression",
    "experiments.dcs.transformer_coverage",
)


def no_summary(results: list[dict], config: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Runner:
    """A registered reproduction (see the module docstring for the contract)."""

    name: str
    doc: str                                           # what it reproduces (one line)
    run: Callable[[dict, int], dict]
    figure: Callable[[dict, Path], None]
    defaults: dict
    smoke: dict
    summarize: Callable[[list[dict], dict], dict] = no_summary
    default_seeds: int = 1
    group: str = "teleport"                            # results subdirectory ("" = experiments/results)
    stem: str | Callable[[dict], str] | None = None    # result file name without suffix (default: name)
    digits: int | None = None                          # significant digits kept in the JSON (None: all)
    outputs: Callable[[dict, int], list[Path]] = field(default=lambda config, seed: [])  # other files run writes

    def configure(self, smoke: bool = False, sets: Iterable[str] = ()) -> dict:
        """defaults, then the smoke overrides, then ``KEY=VALUE`` items (VALUE parsed as JSON, else a string)."""
        config = json.loads(json.dumps(self.defaults))  # a deep copy
        if smoke:
            config.update(json.loads(json.dumps(self.smoke)))
        for item in sets:
            key, eq, raw = item.partition("=")
            if not eq or key not in config:
                raise InputError(f"--set {item!r}: {self.name} takes KEY=VALUE with KEY in {', '.join(config)}")
            config[key] = parse_value(raw, config[key], key)
        return config

    def result_stem(self, config: dict) -> str:
        if callable(self.stem):
            return self.stem(config)
        return self.stem or self.name

    def default_path(self, config: dict) -> Path:
        return RESULTS / self.group / f"{self.result_stem(config)}.json"


def parse_value(raw: str, default, key: str):
    """A ``--set`` value: JSON (numbers, true/false/null, lists, objects) or a plain string; it must
    have the default's kind (an int may stand for a float; null is always allowed)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), list: (list,), dict: (dict,)}
    allowed = kinds.get(type(default))
    if value is not None and allowed and (not isinstance(value, allowed) or (bool not in allowed and
                                                                             isinstance(value, bool))):
        raise InputError(f"--set {key}={raw}: expected a value of type {type(default).__name__}, like "
                         f"{json.dumps(default)}")
    return float(value) if isinstance(default, float) and isinstance(value, int) else value


def seed_results(document: dict) -> list[dict]:
    """The per-seed results of a result file: ``document["results"]`` of the entry point's documents, or
    the whole file, one seed, for a result written by the retired scripts (no ``"runner"`` key)."""
    return document["results"] if "runner" in document else [document]


def all_runners() -> dict[str, Runner]:
    """Every registered runner by name (each module of ``MODULES`` lists its own in ``RUNNERS``)."""
    out: dict[str, Runner] = {}
    for module in MODULES:
        for runner in importlib.import_module(module).RUNNERS:
            if runner.name in out:
                raise RuntimeError(f"runner {runner.name} registered twice")
            out[runner.name] = runner
    return out


def get(name: str) -> Runner:
    runners = all_runners()
    if name not in runners:
        raise InputError(f"unknown runner {name!r}; `python -m experiments list` names them all")
    return runners[name]
