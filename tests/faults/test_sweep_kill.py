"""Crash safety of ``symdisc sweep``: a sweep killed with SIGKILL at a random moment and started again (the same
command: re-running is the resume) ends with the same results, bitwise, as an uninterrupted sweep, loses at most
the task in flight and redoes no finished task; a driver killed alone takes its pool workers with it.

The sweep is the registered ``dcs_sparse_regression`` runner (smoke config, half its steps) over six seeds, one
worker, one thread per task: six seeded CPU optimisations of about 0.25 s each, deterministic on one thread.
This module is its registry (``all_runners``), so that each sweep process imports that runner alone, not the
whole experiments registry.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.dcs import sparse_regression

ROOT = Path(__file__).resolve().parents[2]
SEEDS = list(range(6))
SWEEP = {"registry": "tests.faults.test_sweep_kill", "runners": ["dcs_sparse_regression"], "smoke": True,
         "seeds": SEEDS, "threads": 1, "set": {"steps": 10000, "record_every": 2500}, "out": "out"}
WORKERS = 1                      # tasks in flight at once: at most this many are lost to a kill
TASK_TIMING = ("seconds",)       # the only field of a task file that varies between two runs on one machine
                                 # (host, torch and attempt are compared: same machine, first attempt)
TIMING_FILE = "timing.csv"       # seconds per task: compared by its task column only
GATHERED = ("table.csv", "table.json", "sweep.json")  # compared byte for byte


def all_runners() -> dict:
    return {r.name: r for r in sparse_regression.RUNNERS}


pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or not Path("/proc/self/stat").exists(),
                                reason="needs SIGKILL and /proc")


def sweep_file(tmp_path: Path, name: str, **data) -> Path:
    (tmp_path / name).mkdir()
    path = tmp_path / name / "sweep.json"
    path.write_text(json.dumps({**SWEEP, **data}))
    return path


def start(path: Path, *args: str, output: bool = True) -> subprocess.Popen:
    """``python -m symdisc sweep PATH --json`` in its own session (its pool workers share its process group); a
    run to be killed writes to /dev/null (a pipe would stay open as long as an orphan worker lived)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    stream = subprocess.PIPE if output else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "symdisc", "sweep", str(path), "--json", *args], cwd=ROOT,
                            env=env, stdout=stream, stderr=stream, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


def results(out: Path) -> dict[str, tuple[int, bytes]]:
    """Finished task files: {name: (mtime_ns, bytes)} (temporary files and error files excluded)."""
    tasks = out / "tasks"
    if not tasks.is_dir():
        return {}
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(tasks.iterdir())
            if not p.name.startswith(".") and not p.name.endswith(".error.json")}


def live_in_group(pgid: int) -> list[str]:
    """Processes of process group ``pgid`` that still run (zombies, which nobody may reap here, excluded)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(text[:80])
    return alive


def wait_until(condition, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def partial_files(out: Path) -> list[str]:
    """Leftovers of interrupted atomic writes (``.<name>.<random><suffix>``) anywhere under ``out``."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


def canonical(doc: dict) -> str:
    """A task file without its timing fields, floats by repr (exact: distinguishes every bit, -0.0 too)."""
    return json.dumps({k: v for k, v in doc.items() if k not in TASK_TIMING}, sort_keys=True)


def test_a_sweep_killed_at_a_random_moment_resumes_to_the_same_results(tmp_path):
    ref_out, run_out = tmp_path / "ref" / "out", tmp_path / "run" / "out"
    t0 = time.perf_counter()
    reference = finish(start(sweep_file(tmp_path, "ref")))
    assert reference["done"] == len(SEEDS) and not reference["failed"]
    t_ref = time.perf_counter() - t0
    mtimes = sorted(m for m, _ in results(ref_out).values())
    span = (mtimes[-1] - mtimes[0]) / 1e9  # from the first task's file to the last's: len(SEEDS) - 1 tasks

    path = sweep_file(tmp_path, "run")
    proc = start(path, output=False)
    assert wait_until(lambda: results(run_out) or proc.poll() is not None, 120), "no task finished in 120 s"
    delay = random.Random(os.getpid()).uniform(0.0, 0.6 * span)  # while a later task runs, on this machine
    time.sleep(delay)
    if proc.poll() is not None:
        pytest.fail(f"the sweep finished before it could be killed ({delay:.2f} s after its first task): lengthen it")
    before = results(run_out)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool workers (one process group)
    proc.wait(timeout=30)
    at_kill = results(run_out)
    assert wait_until(lambda: not live_in_group(proc.pid), 10), live_in_group(proc.pid)
    time.sleep(2 * span / (len(SEEDS) - 1))  # two tasks' time: a worker that outlived the kill would write
    killed = results(run_out)
    context = f"killed {delay:.2f} s after the first task, {len(killed)} of {len(SEEDS)} tasks finished"
    assert killed == at_kill, f"a process wrote after the kill ({context})"
    assert before.items() <= killed.items() and len(killed) - len(before) <= WORKERS, context  # in-flight: ≤ 1
    assert 1 <= len(killed) < len(SEEDS) and not (run_out / "table.csv").exists(), context

    t1 = time.perf_counter()
    resumed = finish(start(path))
    t_resume = time.perf_counter() - t1
    assert (resumed["skipped"], resumed["ran"], resumed["done"], resumed["failed"]) == (
        len(killed), len(SEEDS) - len(killed), len(SEEDS), []), context
    final = results(run_out)
    assert {k: final[k] for k in killed} == killed, f"a finished task was redone or overwritten ({context})"
    assert partial_files(run_out) == [] and partial_files(ref_out) == [], context
    assert not list((run_out / "tasks").glob("*.error.json"))

    ref_files = results(ref_out)
    assert sorted(final) == sorted(ref_files) and len(final) == len(SEEDS)
    for name in final:  # every result, bitwise (floats by repr), beside the timing fields
        assert canonical(json.loads(final[name][1])) == canonical(json.loads(ref_files[name][1])), (name, context)
    for name in GATHERED:  # the gathered table and the sweep record, byte for byte
        assert (run_out / name).read_bytes() == (ref_out / name).read_bytes(), (name, context)
    run_rows, ref_rows = ([line.split(",")[0] for line in (d / TIMING_FILE).read_text().splitlines()]
                          for d in (run_out, ref_out))
    assert run_rows == ref_rows  # the same tasks timed (the seconds themselves vary)
    print(f"reference {t_ref:.1f} s, resume {t_resume:.1f} s; {context}")


def test_a_driver_killed_alone_takes_its_workers_with_it(tmp_path):
    """SIGKILL of the driver only (an OOM kill, ``kill -9 PID``): its pool workers end too, instead of running the
    tasks already queued to them beside a re-run, and lingering."""
    path = sweep_file(tmp_path, "slow", registry="tests.sweep_registry", runners=["slow"], seeds=[0, 1, 2, 3],
                      set={"sleep": 0.6}, smoke=False)
    out = path.parent / "out"
    proc = start(path, "--workers", "2", output=False)
    assert wait_until(lambda: results(out) or proc.poll() is not None, 120), "no task finished in 120 s"
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)  # the driver alone
    proc.wait(timeout=30)
    try:
        assert wait_until(lambda: not live_in_group(proc.pid), 5), live_in_group(proc.pid)
        at_exit = results(out)
        time.sleep(1.0)  # longer than a task
        assert results(out) == at_exit and len(at_exit) < 4
    finally:
        if live_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
