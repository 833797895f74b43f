"""Running one sweep task in a worker (a local process or a Ray worker), and the files it leaves.

``OUT/tasks/<id>.json`` holds a finished task ({"task", "result", "seconds", "host", "torch"}); it is written
atomically, so a task either has its file or has none, and a re-run skips exactly the tasks that have one (a file
that does not read as a finished task, cut short outside the write's protection, counts as none: the task runs
again and its new file replaces it).
A task that raises leaves ``OUT/tasks/<id>.error.json`` ({"task", "error", "traceback", "attempt"}) instead and
never disturbs another task's file.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

TASK_DIR = "tasks"


def result_path(out: Path, task_id: str) -> Path:
    return Path(out) / TASK_DIR / f"{task_id}.json"


def error_path(out: Path, task_id: str) -> Path:
    return Path(out) / TASK_DIR / f"{task_id}.error.json"


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; None when there is no such file or it does not parse as one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return doc if isinstance(doc, dict) else None


def finished(out: Path, task_id: str) -> dict | None:
    """The finished task's file ({"task", "result", ...}), or None: the task has yet to run."""
    doc = read_json(result_path(out, task_id))
    return doc if doc is not None and "result" in doc else None


def run_task(task: dict, out: str, registry: str, threads: int, sys_path: list[str], attempt: int = 1) -> dict:
    """Run ``task`` (``Task.to_dict()``) with ``threads`` torch threads; write its file; return its status
    {"id", "status": "done" | "failed", "error"}.  Importable by a fresh process (``spawn``) or a Ray worker:
    ``sys_path`` are the driver's import roots (where the registry module lives)."""
    for p in reversed(sys_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    import torch

    from symdisc.io import json_ready, write_json

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        runner = importlib.import_module(registry).all_runners()[task["runner"]]
        result = runner.run(json.loads(json.dumps(task["config"])), task["seed"])
        doc = {"task": task, "result": json_ready(result, nonfinite_to_null=True),
               "seconds": time.perf_counter() - t0, "host": platform.node(), "torch": torch.__version__,
               "attempt": attempt}
        write_json(result_path(Path(out), task["id"]), doc)
        if error_path(Path(out), task["id"]).exists():
            error_path(Path(out), task["id"]).unlink()
        return {"id": task["id"], "status": "done", "error": None}
    except Exception as e:  # noqa: BLE001 - a task's failure is reported, never fatal to the sweep
        message = f"{type(e).__name__}: {e}"
        write_json(error_path(Path(out), task["id"]), {"task": task, "error": message, "attempt": attempt,
                                                        "traceback": traceback.format_exc(), "host": platform.node()})
        return {"id": task["id"], "status": "failed", "error": message}
