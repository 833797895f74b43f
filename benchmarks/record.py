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
