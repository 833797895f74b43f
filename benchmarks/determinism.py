#!/usr/bin/env python
"""Determinism of symdisc's commands (not a test): the same seed, run again, under other conditions.

Each case is one CLI command with a fixed seed, run as ``python -m symdisc …`` in a fresh process with
OMP_NUM_THREADS=1 (the reference), then again under each condition:

* ``repeat``            another fresh process, the same settings (is a run repeatable at all?);
* ``threads_2``         OMP/MKL and torch intra-op threads 2 (other reduction splits in BLAS and ATen);
* ``in_process_second`` a process that runs the same command twice through ``symdisc.cli.main.main`` and keeps the
                        second run (what a notebook or a test suite does: caches, allocator and BLAS state warm);
* ``cuda``              ``--device cuda`` (only where a GPU is present).

Compared: every number in the command's ``--json`` document and JSON files, and every tensor of its safetensors
files, except wall-clock and date fields (``IGNORED``).  Per condition: ``bitwise`` (all equal), the largest
absolute and relative difference, how many of the values differ, and for runs that verify (discover) whether the
verification verdicts are the same (a basis-free reading: learned generators are one basis of many).

    python benchmarks/determinism.py [--cases census,census_wide,discover,teleport,rr,dcs,dcs_auto]
                                     [--out benchmarks/results/determinism.json] [--merge]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header  # noqa: E402

CASES = {  # name: (argv with {out}, files the run writes under {out})
    "census": (["census", "mlp", "--act", "tanh", "--dims", "4,6,3", "--batch-sizes", "1,4,16", "--json"], []),
    "census_wide": (["census", "mlp", "--act", "tanh", "--dims", "32,64,10", "--batch-sizes", "64", "--json"], []),
    "discover": (["discover", "mlp", "-k", "2", "--steps", "60", "--verify-draws", "4", "--no-figures", "--json",
                  "--out", "{out}/run"], ["run/symmetry.safetensors", "run/card.json"]),
    "teleport": (["teleport", "mlp", "--steps", "200", "--teleport-every", "50", "--json", "--out", "{out}/r.json"],
                 ["r.json"]),
    "rr": (["rr", "mlp", "--dims", "3,3,3", "--act", "linear", "--no-bias", "--batch-size", "20", "--max-depth", "2",
            "--n-ridges", "2", "--budget", "400", "--json", "--out", "{out}/run"],
           ["run/archive.safetensors", "run/archive.json"]),
    "dcs": (["dcs", "mlp", "--steps", "1000", "--json", "--out", "{out}/run"],
            ["run/model.safetensors", "run/dcs_run.json"]),
    "dcs_auto": (["dcs", "tiny-transformer", "--constraint", "auto", "--steps", "300", "--json", "--out", "{out}/run"],
                 ["run/model.safetensors", "run/dcs_run.json"]),
}
IGNORED = ("seconds", "seconds_plain", "seconds_teleport", "created", "date", "loadavg", "wall_s")
TWICE = """import contextlib, json, os, sys
from symdisc.cli.main import main
first, second = json.loads(sys.argv[1]), json.loads(sys.argv[2])
with open(os.devnull, "w") as f, contextlib.redirect_stdout(f):
    assert main(first) == 0
with open(sys.argv[3], "w") as f, contextlib.redirect_stdout(f):
    sys.exit(main(second))
"""


def _env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _argv(case: str, out: Path, extra=()) -> list[str]:
    return [a.format(out=out) for a in CASES[case][0]] + list(extra)


def run(case: str, out: Path, condition: str) -> float:
    """Run ``case`` into ``out`` under ``condition``; its --json document goes to out/stdout.json."""
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    if condition == "in_process_second":
        scratch = out / "first"
        cmd = [sys.executable, "-c", TWICE, json.dumps(_argv(case, scratch)), json.dumps(_argv(case, out)),
               str(out / "stdout.json")]
        scratch.mkdir()
        proc = subprocess.run(cmd, env=_env(1), capture_output=True, text=True)
    else:
        extra = ["--device", "cuda"] if condition == "cuda" else []
        with open(out / "stdout.json", "w") as f:
            proc = subprocess.run([sys.executable, "-m", "symdisc", *_argv(case, out, extra)], stdout=f,
                                  stderr=subprocess.PIPE, text=True, env=_env(2 if condition == "threads_2" else 1))
    if proc.returncode != 0:
        raise RuntimeError(f"{case} ({condition}) failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def _numbers(doc, path="") -> dict[str, float]:
    if isinstance(doc, dict):
        return {k: v for key, val in doc.items() if not any(i in key for i in IGNORED)
                for k, v in _numbers(val, f"{path}.{key}").items()}
    if isinstance(doc, list):
        return {k: v for i, val in enumerate(doc) for k, v in _numbers(val, f"{path}[{i}]").items()}
    if isinstance(doc, (int, float)) and not isinstance(doc, bool):
        return {path: float(doc)}
    return {}


def values(case: str, out: Path) -> dict[str, list[float]]:
    """Every compared value of a run: JSON numbers by path, tensors by file and name."""
    from safetensors.torch import load_file

    found = {f"stdout{k}": [v] for k, v in _numbers(json.loads((out / "stdout.json").read_text())).items()}
    for name in CASES[case][1]:
        path = out / name
        if name.endswith(".json"):
            found.update({f"{name}{k}": [v] for k, v in _numbers(json.loads(path.read_text())).items()})
        else:
            found.update({f"{name}:{k}": t.double().reshape(-1).tolist() for k, t in load_file(str(path)).items()
                          if t.is_floating_point()})
    return found


def verdicts(out: Path) -> list[str]:
    """The verification verdicts a run prints (basis-free: which fields verified, in which span)."""
    found = []

    def walk(doc):
        if isinstance(doc, dict):
            found.extend(v for k, v in doc.items() if k == "verdict" and isinstance(v, str))
            for v in doc.values():
                walk(v)
        elif isinstance(doc, list):
            for v in doc:
                walk(v)

    walk(json.loads((out / "stdout.json").read_text()))
    return found


def compare(ref: dict, other: dict) -> dict:
    keys = sorted(set(ref) & set(other))
    abs_diff = rel_diff = 0.0
    differing = total = 0
    where: list[str] = []
    for k in keys:
        differing += abs(len(ref[k]) - len(other[k]))  # a tensor of another size differs in every extra value
        for a, b in zip(ref[k], other[k], strict=False):
            total += 1
            if a == b or (math.isnan(a) and math.isnan(b)):
                continue
            differing += 1
            if k not in where:
                where.append(k)
            d = abs(a - b)
            abs_diff, rel_diff = max(abs_diff, d), max(rel_diff, d / max(abs(a), abs(b), 1e-300))
    return {"bitwise": differing == 0 and set(ref) == set(other), "values": total, "differing": differing,
            "max_abs_diff": abs_diff, "max_rel_diff": rel_diff,
            "only_in_one": sorted(set(ref) ^ set(other))[:10], "differing_in": where[:12],
            "differing_files": sorted({_file_of(k) for k in where})}


def _file_of(key: str) -> str:
    """The file a compared value comes from: a tensor file's "name:tensor", a JSON file's "name.json…", stdout."""
    if ":" in key:
        return key.split(":")[0]
    return key[:key.index(".json") + 5] if ".json" in key else key.split(".")[0]


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default="benchmarks/results/determinism.json")
    parser.add_argument("--merge", action="store_true", help="keep the other cases already in --out")
    args = parser.parse_args()
    conditions = ["repeat", "threads_2", "in_process_second"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            ref_dir = Path(tmp) / case / "reference"
            seconds = run(case, ref_dir, "reference")
            ref = values(case, ref_dir)
            results[case] = {"argv": CASES[case][0], "reference_seconds": round(seconds, 2)}
            for condition in conditions:
                d = Path(tmp) / case / condition
                run(case, d, condition)
                results[case][condition] = r = compare(ref, values(case, d))
                if verdicts(ref_dir):
                    r["same_verdict"] = verdicts(d) == verdicts(ref_dir)
                print(f"{case:9s} {condition:18s} bitwise {r['bitwise']!s:5s} differing {r['differing']}/{r['values']}"
                      f"  max abs {r['max_abs_diff']:.1e}  max rel {r['max_rel_diff']:.1e}", flush=True)
    if args.merge and Path(args.out).exists():
        results = {**json.loads(Path(args.out).read_text())["results"], **results}
    doc = {**header(threads=1), "cpu": cpu_model(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available()
           else None, "loadavg_1min_after": round(os.getloadavg()[0], 2), "results": results}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
