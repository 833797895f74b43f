import json
import os
import stat

import pytest

from symdisc import SymdiscError
from symdisc.io import atomic_write, write_json


def test_write_json_atomic_and_readable(tmp_path):
    path = write_json(tmp_path / "a.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not the 0600 of a temporary file


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def explode(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_bad_targets(tmp_path):
    with pytest.raises(SymdiscError, match="does not exist"):
        write_json(tmp_path / "missing" / "a.json", {})
    with pytest.raises(SymdiscError, match="directory"):
        write_json(tmp_path, {})
