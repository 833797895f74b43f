"""The rules of ``--resume`` / ``--restart`` that every long command (discover aside: its API owns them) shares."""

from __future__ import annotations

from pathlib import Path

from symdisc.errors import InputError


def check_resume(out: Path | None, resume: bool, restart: bool, what: str, checkpoint: Path | None = None,
                 every: int | None = None) -> None:
    """The rules of ``--resume`` / ``--restart`` every long command shares: they need ``--out`` (``what`` it
    names), exclude each other, and a ``checkpoint`` that exists is resumed or started over on request, never
    overwritten silently."""
    if resume and restart:
        raise InputError("--resume and --restart exclude each other: continue the interrupted run, or start over")
    if out is None:
        if resume or restart:
            raise InputError(f"--resume and --restart need --out {what}")
        return
    if every is not None and every < 1:
        raise InputError(f"--checkpoint-every must be ≥ 1, got {every}")
    if checkpoint is None:
        return
    if resume and not checkpoint.is_file():
        raise InputError(f"no interrupted run to resume: {checkpoint} does not exist")
    if checkpoint.exists() and not (resume or restart):
        raise InputError(f"{checkpoint} holds the checkpoint of an interrupted run: --resume to continue it, or "
                         "--restart to start over (deletes it)")
