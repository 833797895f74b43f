"""``symdisc bench``: the benchmark suite, each value beside its baseline measured in the same run."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import JSON, emit_json


def bench_command(
    quick: bool = typer.Option(False, "--quick", help="the small sizes (a smoke test of the harness, seconds)"),
    cases: str = typer.Option(None, "--cases", help="comma-separated cases (default: all; see --list)"),
    out: Path = typer.Option(Path("benchmarks/results/bench"), "--out", help="directory for bench.json, bench.md "
                             "and each case's own JSON"),
    suite: str = typer.Option("benchmarks.suite", "--suite", help="module defining CASES (from the working "
                              "directory: run from the repository root)"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda (cases that honour it: benchmarks/suite.py)"),
    list_cases: bool = typer.Option(False, "--list", help="print the cases and exit"),
    json_out: bool = JSON,
) -> None:
    """Run the benchmark suite; write OUT/bench.json and OUT/bench.md.

    JSON: {"benchmark", "quick", "device", "command", "date", "machine" (cpu, cpu_count, gpu, torch, python,
    platform, loadavg_1min), "discovery_speed_ratio" (symdisc's discovery step over the per-sample loop, joint
    phase), "rows": [{"case", "metric", "value", "unit", "baseline", "baseline_value", "ratio" (value /
    baseline_value), "better" (higher | lower), "details", "error"}]}.  Exit code 5 when a case failed.
    """
    from symdisc.bench import load_suite, run_bench
    from symdisc.devices import resolve_device
    from symdisc.errors import PartialFailure

    module = load_suite(suite)
    if list_cases:
        for name, fn in module.CASES.items():
            print(f"{name}: {(fn.__doc__ or '').strip().splitlines()[0]}")
        return
    resolve_device(device)
    names = None if cases is None else [c.strip() for c in cases.split(",") if c.strip()]
    con = Console(stderr=True)
    report = (lambda name, s: con.print(f"  {name}: {s:.1f} s")) if not json_out else None
    doc = run_bench(out, suite, names, quick, device, "symdisc " + shlex.join(sys.argv[1:]), report)
    if json_out:
        emit_json(doc)
    else:
        print((out / "bench.md").read_text(), end="")
    failed = [r["case"] for r in doc["rows"] if r.get("error")]
    if failed:
        raise PartialFailure(f"case(s) {', '.join(failed)} failed (errors in {out / 'bench.json'})")
