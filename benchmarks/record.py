"""The header every benchmark result carries: the command that made it, when, and on what."""

from __future__ import annotations

import datetime
import platform
import shlex
import sys

from symdisc.bench import cpu_model  # noqa: F401 - re-exported for the scripts


def header(threads: int = 1) -> dict:
    """{"command", "date", "torch", "python", "threads", "machine"} of this process."""
    import torch

    return {"command": "python " + shlex.join(sys.argv), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(), "threads": threads,
            "machine": platform.machine()}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux ``ru_maxrss`` is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_fresh(measure, task: dict) -> dict:
    """``measure(task)`` in a fresh ``spawn`` subprocess (its own imports, threads and peak memory)."""
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        return ex.submit(measure, task).result()


def timed(measure, task: dict, label: str | None = None, shown=lambda r: r) -> dict:
    """``run_fresh`` plus the 1-min load average before and after, printed as it lands."""
    import os
    import time

    load0, t0 = os.getloadavg()[0], time.perf_counter()
    r = run_fresh(measure, task)
    r["loadavg_1min_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    print(f"  {label or task}: {shown(r)}  ({time.perf_counter() - t0:.1f} s incl. spawn)", flush=True)
    return r


def profile_split(prof, buckets: tuple, other: str, top: int = 15) -> dict:
    """A ``cProfile.Profile``'s own time per bucket — ``buckets``: ((label, (needle, …)), …), first needle found in
    "file:function" wins, the rest is ``other`` — with shares, and its ``top`` functions by own time."""
    import os
    import pstats

    stats = pstats.Stats(prof).stats  # {(file, line, func): (cc, nc, tottime, cumtime, callers)}

    def bucket(key: tuple) -> str:
        name = f"{key[0]}:{key[2]}"
        return next((label for label, needles in buckets if any(n in name for n in needles)), other)

    split: dict[str, float] = {}
    for key, (_, _, tottime, _, _) in stats.items():
        split[bucket(key)] = split.get(bucket(key), 0.0) + tottime
    total = sum(split.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    return {"split": {k: {"seconds": round(v, 3), "share": round(v / total, 4)}
                      for k, v in sorted(split.items(), key=lambda kv: -kv[1])},
            "top_tottime": [{"function": f"{os.path.basename(k[0])}:{k[1]}({k[2]})", "calls": v[1],
                             "tottime": round(v[2], 3), "cumtime": round(v[3], 3)} for k, v in ranked]}
