"""Where sweep tasks run: ``local`` (processes on this machine) or ``ray`` (a Ray cluster).

Both call ``symdisc.sweep.tasks.run_task`` for every task that has no result file yet, re-run a failed task up
to ``retries`` times, and return one status per task.  ``local`` uses a ``spawn`` process pool of ``workers``
processes (each task sets its torch threads itself; a worker ends when its driver dies, so a driver killed
alone leaves no orphan running queued tasks); it needs nothing beyond the package.  ``ray`` (the optional
extra ``pip install -e '.[ray]'``) starts a local instance, or joins ``address`` (``ray start --head`` elsewhere),
and schedules each task with the sweep's ``resources`` (CPUs, GPUs); Ray itself re-runs a task whose worker
died (``max_retries``).  A multi-node cluster must see the results directory on every node: the backend writes
a marker there and checks it from each node before any task runs, and refuses with a clear message otherwise.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from symdisc.errors import InputError
from symdisc.sweep.tasks import run_task

BACKENDS = ("local", "ray")
Progress = Callable[[dict], None]


def _import_roots() -> list[str]:
    """The driver's import roots a worker needs (the working directory first: the registry lives there)."""
    return [os.getcwd(), *(p for p in sys.path if p and Path(p).is_dir())]


def _drive(tasks: list[dict], submit, wait_some, result, retries: int, progress: Progress) -> list[dict]:
    """Submit every task (``submit(task, attempt) -> handle``); as handles finish (``wait_some(handles)``), read
    their status (``result(handle)``; a raise means the worker died), re-submit a failed task up to ``retries``
    times; one status per task, in task order."""
    pending = {submit(t, 1): (t, 1) for t in tasks}
    statuses = {}
    while pending:
        for handle in wait_some(list(pending)):
            task, attempt = pending.pop(handle)
            try:
                status = result(handle)
            except Exception as e:  # noqa: BLE001 - the worker itself died (beyond the backend's own retries)
                status = {"id": task["id"], "status": "failed", "error": f"worker died: {type(e).__name__}: {e}"}
            if status["status"] == "failed" and attempt <= retries:
                pending[submit(task, attempt + 1)] = (task, attempt + 1)
                continue
            statuses[task["id"]] = {**status, "attempts": attempt}
            progress(statuses[task["id"]])
    return [statuses[t["id"]] for t in tasks]


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker as soon as its driver ``parent`` is gone (SIGKILL of the driver alone).
    Otherwise the orphan would run the tasks already queued to it, beside a re-run of the sweep, and then wait
    for more forever; ending it loses at most its task in flight, as a kill of the whole process group does."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.1)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-driver", daemon=True).start()


def run_local(tasks: list[dict], out: Path, registry: str, threads: int, retries: int, workers: int,
              progress: Progress) -> list[dict]:
    import concurrent.futures
    import multiprocessing

    if workers < 1:
        raise InputError(f"--workers must be ≥ 1, got {workers}")
    roots = _import_roots()
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                                initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
        return _drive(tasks, lambda t, a: pool.submit(run_task, t, str(out), registry, threads, roots, a),
                      lambda handles: concurrent.futures.wait(
                          handles, return_when=concurrent.futures.FIRST_COMPLETED)[0],
                      lambda fut: fut.result(), retries, progress)


def _check_shared_storage(ray, out: Path) -> None:
    """Every alive node must see ``out``: write a marker, look for it from each node."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1:
        return
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = out / f".shared-check-{uuid.uuid4().hex}"
    marker.write_text("symdisc sweep")
    try:
        @ray.remote(num_cpus=0)
        def sees(path: str) -> bool:
            return Path(path).exists()

        refs = {n["NodeManagerAddress"]: sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(marker.resolve())) for n in nodes}
        blind = [addr for addr, ref in refs.items() if not ray.get(ref)]
    finally:
        marker.unlink(missing_ok=True)
    if blind:
        raise InputError(f"the results directory {out} is not visible from node(s) {', '.join(blind)}: a multi-node "
                         "sweep needs it on shared storage (NFS, a mounted bucket); choose such a directory")


def run_ray(tasks: list[dict], out: Path, registry: str, threads: int, retries: int, resources: dict,
            address: str | None, progress: Progress) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise InputError("the ray backend needs Ray: pip install -e '.[ray]' (or use --backend local)") from None
    roots = _import_roots()
    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(roots)}}
        try:
            if address:
                ray.init(address=address, runtime_env=env, log_to_driver=False, configure_logging=False)
            else:
                ray.init(num_cpus=max(os.cpu_count() or 1, int(resources.get("cpus", 1))), runtime_env=env,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
        except ConnectionError as e:
            raise InputError(f"cannot reach a Ray cluster at {address!r}: {e}") from None
    try:
        _check_shared_storage(ray, out)
        remote = ray.remote(run_task).options(num_cpus=resources.get("cpus", 1), num_gpus=resources.get("gpus", 0),
                                              max_retries=max(retries, 1))
        where = str(out.resolve())
        return _drive(tasks, lambda t, a: remote.remote(t, where, registry, threads, roots, a),
                      lambda handles: ray.wait(handles, num_returns=1)[0], ray.get, retries, progress)
    finally:
        if started:
            ray.shutdown()
