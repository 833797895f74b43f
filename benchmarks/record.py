"""The header every benchmark result carries: the command that made it, when, and on what."""

from __future__ import annotations

import datetime
import platform
import shlex
import sys


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


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
