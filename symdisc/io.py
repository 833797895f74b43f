"""Atomic file output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from symdisc.errors import ArtefactError, InputError, StorageError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early (before long work) if ``path`` cannot be written as a file."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target} is a directory, expected a file path")
    if not target.parent.is_dir():
        raise InputError(f"directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise InputError(f"directory {target.parent} is not writable")
    return target


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, fsync it and move the result to ``path``; on any failure (a kill, a full disk, a
    power loss) the old file or none is left, never a part of one."""
    target = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    except OSError as e:
        raise storage_error(target, e) from None
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        _fsync(tmp)  # the bytes reach the disk before the rename: a power loss leaves the old file, not an empty one
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if (isinstance(e, OSError) and not isinstance(e, StorageError)) or \
                (type(e).__name__ == "SafetensorError" and "os error" in str(e).lower()):
            raise storage_error(target, e, "; nothing was written") from None
        raise
    return target


def _fsync(path: str | os.PathLike) -> None:
    """fsync a file or (the rename's record) a directory; file systems that cannot fsync a directory are let be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        if not os.path.isdir(path):
            raise
    finally:
        os.close(fd)


def json_ready(obj: Any, digits: int | None = None, nonfinite_to_null: bool = False) -> Any:
    """A copy of a result for JSON: tensors dropped from dicts, lists and tuples walked, floats cut to
    ``digits`` significant digits (results files stay small) and, with ``nonfinite_to_null``, NaN/inf
    (a diverged run) written as null, which strict JSON readers accept."""
    if isinstance(obj, dict):
        return {k: json_ready(v, digits, nonfinite_to_null) for k, v in obj.items() if not hasattr(v, "detach")}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v, digits, nonfinite_to_null) for v in obj]
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None if nonfinite_to_null else obj
        return float(f"{obj:.{digits}g}") if digits and obj != 0 else obj
    return obj


def write_json(path: str | os.PathLike, data: Any) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")

    return atomic_write(path, write)


def parse_json(data: bytes, where: str) -> Any:
    """JSON from untrusted bytes: any decoding failure (bad UTF-8, syntax, nesting too deep, a number too long)
    is an ArtefactError."""
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{where} is corrupted or truncated: {' '.join(str(e).split())[:200]}") from None


def storage_error(target: str | os.PathLike, e: BaseException, after: str = "") -> StorageError:
    """The one-line StorageError for a write of ``target`` that failed with ``e``."""
    return StorageError(f"cannot write {target}: {getattr(e, 'strerror', None) or e}{after}")


class AppendLog:
    """A JSON-lines log, one record per line, flushed at once; an OSError (a full disk, a read-only directory) is a
    StorageError.  A kill leaves at most one cut last line, which ``read_log`` skips."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._file = self.path.open("a")
        except OSError as e:
            raise storage_error(self.path, e) from None

    def write(self, record: dict) -> None:
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as e:
            raise storage_error(self.path, e) from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as e:
            raise storage_error(self.path, e) from None

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines log; lines that do not parse (cut by a kill) are skipped."""
    records = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
