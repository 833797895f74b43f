"""Sweeps over registered experiment runners: runners × grid × seeds, on this machine or a Ray cluster.

    from symdisc.sweep import SweepConfig, run_sweep
    report = run_sweep(SweepConfig.load("sweep.toml"), backend="local", workers=2)

``OUT/sweep.json`` records the sweep (its config and tasks); a directory that holds a different sweep is
refused.  Finished tasks (``OUT/tasks/<id>.json``) are skipped on a re-run, so an interrupted sweep re-run
completes only the missing ones (and first removes the temporary files of writes the interruption cut short);
a failed task is reported with its error and costs no other result.  One driver at a time per directory.  The
gathered table, timing and summary figure: ``symdisc.sweep.gather``.
"""

from __future__ import annotations

import json
from pathlib import Path

from symdisc.errors import InputError, PartialFailure
from symdisc.io import write_json
from symdisc.sweep import gather
from symdisc.sweep.backends import BACKENDS, run_local, run_ray
from symdisc.sweep.config import SweepConfig, Task
from symdisc.sweep.tasks import TASK_DIR, error_path, finished, result_path

SWEEP_FILE = "sweep.json"


class SweepIncomplete(PartialFailure):
    """Some tasks failed; every other result was kept (the CLI exits with code 5)."""


def _claim(out: Path, record: dict) -> None:
    """Write ``sweep.json`` or check that the directory holds this same sweep."""
    path = out / SWEEP_FILE
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{path} is not a sweep record; choose another directory") from None
        if stored.get("task_ids") != record["task_ids"]:
            raise InputError(f"{out} holds another sweep ({stored.get('name')!r}, {len(stored.get('task_ids', []))} "
                             "tasks): choose another 'out' or remove it")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def _remove_partial_writes(out: Path, task_ids: list[str]) -> None:
    """Delete what killed writes left: ``atomic_write``'s temporary ``.<name>.<random><suffix>`` files of this
    sweep's own files (task results and errors, the record, the table, the figure) and a Ray storage marker."""
    names = {SWEEP_FILE, "table.csv", "table.json", "timing.csv", "summary.png"}
    names |= {p.name for i in task_ids for p in (result_path(out, i), error_path(out, i))}
    for folder in (out, out / TASK_DIR):
        for path in folder.glob(".*"):
            if path.is_file() and (path.name[1:].rsplit(".", 2)[0] in names or path.name.startswith(".shared-check-")):
                path.unlink(missing_ok=True)


def run_sweep(config: SweepConfig, backend: str = "local", address: str | None = None, workers: int = 1,
              progress=None, device: str | None = None) -> dict:
    """Run the tasks without a result, gather the table; returns the report (see ``symdisc sweep --help``)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
    if address and backend != "ray":
        raise InputError("--address applies to the ray backend")
    tasks = [t.to_dict() for t in config.tasks(device)]
    out = config.out
    _claim(out, {"name": config.name, "registry": config.registry, "runners": config.runners, "seeds": config.seeds,
                 "grid": config.grid, "set": config.set, "smoke": config.smoke,
                 "task_ids": [t["id"] for t in tasks], "tasks": tasks})
    (out / TASK_DIR).mkdir(exist_ok=True)
    _remove_partial_writes(out, [t["id"] for t in tasks])
    todo = [t for t in tasks if finished(out, t["id"]) is None]
    report = progress or (lambda status: None)
    if backend == "local":
        statuses = run_local(todo, out, config.registry, config.threads, config.retries, workers, report)
    else:
        statuses = run_ray(todo, out, config.registry, config.threads, config.retries, config.resources, address,
                           report)
    table = gather.rows(out, tasks)
    paths = gather.write_table(out, table)
    failed = [{"id": r["task"], "error": r["error"]} for r in table if r["status"] == "failed"]
    return {"name": config.name, "backend": backend, "out": str(out), "tasks": len(tasks),
            "skipped": len(tasks) - len(todo), "ran": len(todo),
            "done": sum(r["status"] == "done" for r in table), "failed": failed,
            "attempts": sum(s.get("attempts", 1) for s in statuses), **paths,
            "figure": gather.figure(out, table, config.metrics)}


__all__ = ["BACKENDS", "SWEEP_FILE", "SweepConfig", "SweepIncomplete", "Task", "run_sweep"]
