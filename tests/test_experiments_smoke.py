"""Smoke runs of the reproduction scripts (tiny configurations; the full runs are committed results)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("case", ["fig6.3-linear-scalar-faithful", "fig6.7-tiny-transformer", "none-tanh-3-3-1"])
def test_discovery_reproduction_smoke(case):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "discovery_reproductions.py"), "--smoke",
                           "--case", case], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'"case": "{case}"' in proc.stdout and "verdict" in proc.stdout


def test_teleport_regression_smoke():
    """Every part of experiments/teleport_regression.py in its tiny configuration (E1–E4, E7, E10, E11)."""
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "teleport_regression.py"), "--smoke"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parts = {line.split('"part": "')[1].split('"')[0] for line in proc.stdout.splitlines() if '"part"' in line}
    assert parts == {"testfunctions", "regression", "sweep", "momentum", "adagrad", "runtime"}
