"""A sweep: registered runners × a grid of their config values × seeds, from a JSON or TOML file.

    # sweep.toml                                  (every key but ``runners`` optional)
    runners  = ["census_presets"]                 # names in the registry
    registry = "experiments.registry"             # a module with all_runners() -> {name: Runner}
    seeds    = [0, 1, 2]
    smoke    = true                               # start from each runner's smoke config
    out      = "sweeps/census"                    # results directory (relative to the config file)
    threads  = 1                                  # torch threads per task
    retries  = 1                                  # re-runs of a failed task
    [set]                                         # fixed config values
    points = 1
    [grid]                                        # the product of these lists
    cases = [["mlp --act relu --dims 3,3,1"], ["tiny-transformer"], ["layernorm-linear"]]
    [resources]                                   # per task, for the Ray backend
    cpus = 1
    gpus = 0
    metrics = ["results.0.rows.1.output_null_dim"]  # result columns the summary figure draws (default: the first
                                                  # six numeric columns that vary)

A runner is any object with ``name``, ``defaults`` (every config key), ``smoke`` and ``run(config, seed) ->
dict`` (``experiments.registry.Runner``); the registry module is imported by name when the sweep runs, so
the library does not depend on the experiments package.  Each task is one (runner, config, seed); its id is
a hash of the three, so a re-run finds the results it already has.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from symdisc.errors import InputError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: JSON sweep files only
    tomllib = None

KNOWN_KEYS = {"runners", "registry", "seeds", "smoke", "out", "threads", "retries", "set", "grid", "resources",
              "name", "metrics"}


@dataclass(frozen=True)
class Task:
    """One run: ``runner``'s ``run(config, seed)``; ``params`` are the grid values that distinguish it."""

    runner: str
    config: dict
    seed: int
    params: dict

    @property
    def id(self) -> str:
        key = json.dumps([self.runner, self.config, self.seed], sort_keys=True)
        return f"{self.runner}-s{self.seed}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def to_dict(self) -> dict:
        return {"id": self.id, "runner": self.runner, "config": self.config, "seed": self.seed, "params": self.params}


@dataclass
class SweepConfig:
    runners: list[str]
    registry: str = "experiments.registry"
    seeds: list[int] = field(default_factory=lambda: [0])
    smoke: bool = False
    out: Path = Path("sweep")
    threads: int = 1
    retries: int = 0
    set: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    resources: dict = field(default_factory=lambda: {"cpus": 1, "gpus": 0})
    name: str = "sweep"
    metrics: list[str] = field(default_factory=list)
    source: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> SweepConfig:
        """Read a ``.json`` or ``.toml`` sweep file (the module docstring); ``out`` is taken relative to it."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no sweep file {str(path)!r}")
        text = path.read_text()
        if path.suffix == ".toml" and tomllib is None:
            raise InputError(f"{path}: TOML sweep files need Python ≥ 3.11; write it as JSON")
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, json.JSONDecodeError) as e:  # tomllib.TOMLDecodeError is a ValueError
            raise InputError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {e}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: a sweep file holds a table of keys ({', '.join(sorted(KNOWN_KEYS))})")
        config = cls.from_dict(data, base=path.parent)
        config.source = path
        return config

    @classmethod
    def from_dict(cls, data: dict, base: Path | None = None) -> SweepConfig:
        unknown = sorted(set(data) - KNOWN_KEYS)
        if unknown:
            raise InputError(f"unknown sweep key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
        runners = data.get("runners")
        if isinstance(runners, str):
            runners = [runners]
        if not runners or not all(isinstance(r, str) for r in runners):
            raise InputError("a sweep needs 'runners': a list of registered runner names")
        seeds = data.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise InputError(f"'seeds' must be a non-empty list of integers ≥ 0, got {seeds!r}")
        grid, fixed = data.get("grid", {}), data.get("set", {})
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            raise InputError("'grid' maps config keys to non-empty lists of values")
        if not isinstance(fixed, dict):
            raise InputError("'set' maps config keys to values")
        resources = {"cpus": 1, "gpus": 0, **data.get("resources", {})}
        if set(resources) - {"cpus", "gpus"} or any(not isinstance(v, (int, float)) or v < 0
                                                     for v in resources.values()):
            raise InputError(f"'resources' takes cpus and gpus ≥ 0, got {resources!r}")
        threads, retries = data.get("threads", 1), data.get("retries", 0)
        if not isinstance(threads, int) or threads < 1 or not isinstance(retries, int) or retries < 0:
            raise InputError(f"'threads' must be ≥ 1 and 'retries' ≥ 0, got {threads!r}, {retries!r}")
        metrics = data.get("metrics", [])
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise InputError(f"'metrics' is a list of result column names, got {metrics!r}")
        out = Path(data.get("out", "sweep"))
        if base is not None and not out.is_absolute():
            out = base / out
        return cls(list(runners), str(data.get("registry", "experiments.registry")), list(seeds),
                   bool(data.get("smoke", False)), out, threads, retries, dict(fixed), dict(grid), resources,
                   str(data.get("name", "sweep")), list(metrics))

    def registry_runners(self) -> dict:
        """``all_runners()`` of the registry module (imported by name: the library never imports it statically),
        looked up from the working directory and the sweep file's directory."""
        for root in (os.getcwd(), *([str(self.source.parent.resolve())] if self.source else [])):
            if root not in sys.path:
                sys.path.insert(0, root)
        try:
            module = importlib.import_module(self.registry)
        except ImportError as e:
            raise InputError(f"cannot import the runner registry {self.registry!r} ({e}); run from the directory "
                             "that holds it or set 'registry'") from None
        if not hasattr(module, "all_runners"):
            raise InputError(f"{self.registry} has no all_runners()")
        return module.all_runners()

    def tasks(self, device: str | None = None) -> list[Task]:
        """Every (runner, grid point, seed), checked against each runner's config keys; ``device`` (cpu | cuda)
        sets the ``device`` key of every runner that has one (and refuses a sweep whose runners have none)."""
        runners = self.registry_runners()
        out = []
        keys = list(self.grid)
        for name in self.runners:
            if name not in runners:
                raise InputError(f"unknown runner {name!r} in {self.registry}; known: {', '.join(sorted(runners))}")
            r = runners[name]
            base = json.loads(json.dumps(r.defaults))
            if self.smoke:
                base.update(json.loads(json.dumps(r.smoke)))
            bad = sorted((set(self.set) | set(keys)) - set(base))
            if bad:
                raise InputError(f"{name} has no config key {', '.join(bad)} (keys: {', '.join(base)})")
            base.update(self.set)
            if device is not None:
                if "device" not in base:
                    raise InputError(f"{name} has no device option (it runs where it runs); drop --device")
                base["device"] = device
            for values in itertools.product(*(self.grid[k] for k in keys)):
                params = dict(zip(keys, values, strict=True))
                for seed in self.seeds:
                    out.append(Task(name, {**base, **params}, seed, params))
        return out
