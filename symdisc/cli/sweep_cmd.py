"""``symdisc sweep CONFIG``: registered experiment runners × a grid × seeds, locally or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import JSON, emit_json


def sweep_command(
    config: Path = typer.Argument(..., help="sweep file (.toml or .json; docs/sweeps.md)"),
    backend: str = typer.Option("local", "--backend", help="local (processes on this machine) | ray (a Ray "
                                "cluster: a local instance, or --address)"),
    address: str = typer.Option(None, "--address", help="ray: an existing cluster (e.g. 127.0.0.1:6379 after "
                                "`ray start --head`, or auto)"),
    workers: int = typer.Option(1, "--workers", help="local: tasks run at once (each with the sweep's threads)"),
    out: Path = typer.Option(None, "--out", help="results directory instead of the sweep file's 'out'"),
    device: str = typer.Option(None, "--device", help="cpu | cuda: the runners' device option (default: as "
                               "configured)"),
    json_out: bool = JSON,
) -> None:
    """Run a sweep: each task (runner, config, seed) once, finished tasks skipped on a re-run, failures reported.

    JSON: {"name", "backend", "out", "tasks", "skipped" (already done before this call), "ran", "done",
    "failed": [{"id", "error"}], "attempts", "table_csv", "table_json", "timing_csv", "figure" (or null)}.
    Exit code 5 when a task failed (its error is in the table; every other result is kept).
    """
    from symdisc.devices import resolve_device
    from symdisc.progress import LiveBar
    from symdisc.sweep import SweepConfig, SweepIncomplete, run_sweep
    from symdisc.sweep.tasks import finished

    cfg = SweepConfig.load(config)
    if out is not None:
        cfg.out = out
    if device is not None:
        resolve_device(device)
    tasks = cfg.tasks(device)
    todo = sum(finished(cfg.out, t.id) is None for t in tasks)
    with LiveBar(todo, f"sweep {cfg.name}", enabled=not json_out) as bar:
        report = run_sweep(cfg, backend, address, workers,
                           progress=lambda s: bar.advance(f"{s['id']}: {s['status']}"), device=device)
    if json_out:
        emit_json(report)
    else:
        con = Console()
        con.print(f"[bold]sweep {report['name']}[/] ({report['backend']}): {report['tasks']} tasks, "
                  f"{report['skipped']} already done, {report['ran']} run, {report['done']} done, "
                  f"{len(report['failed'])} failed")
        for f in report["failed"]:
            con.print(f"  [red]failed[/] {f['id']}: {f['error']}")
        con.print(f"table: {report['table_csv']} (and .json; timings in {report['timing_csv']})"
                  + (f"; figure: {report['figure']}" if report["figure"] else ""))
    if report["failed"]:
        raise SweepIncomplete(f"{len(report['failed'])} of {report['tasks']} tasks failed (errors in "
                              f"{report['table_csv']}); re-run to retry them")
