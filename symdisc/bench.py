"""``symdisc bench``: one benchmark suite, each case a value with its ratio to a baseline measured in the same run.

The suite is a module (default ``benchmarks.suite``, found from the working directory: the benchmarks live in
the repository, not in the installed library) with ``CASES``: an ordered mapping name → ``case(quick, device,
workdir) -> list[dict]``.  Each row a case returns states one measurement:

    {"metric": "discovery step, joint phase", "value": 34.9, "unit": "steps/s",
     "baseline": "per-sample loop reference", "baseline_value": 1.46, "ratio": 23.8,
     "better": "higher" | "lower", "details": {...}}

``ratio`` is value / baseline_value, both from the same run; a measurement that could not be made (a kernel
``torch.compile`` cannot compile) has value and ratio None and says why in ``details["error"]``.  Running a
subset of the cases into a directory that holds a ``bench.json`` of the same size replaces those cases' rows and
keeps the others (each row has its date).  ``quick`` sizes run in CI as a smoke test of the harness (nothing
asserts a time); full sizes are for measurements.  ``run_bench`` writes ``bench.json`` — the machine, device, torch
version, the rows, and a top-level ``discovery_speed_ratio`` (the discovery case's joint-phase ratio) — and
``bench.md``, a Markdown table of the same
rows. A case that raises is recorded with its error and costs no other case.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from symdisc.errors import InputError
from symdisc.io import atomic_write, write_json


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


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    cpu = cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def load_suite(module: str):
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        suite = importlib.import_module(module)
    except ImportError as e:
        raise InputError(f"cannot import the benchmark suite {module!r} ({e}); run from the repository root or "
                         "pass the module that defines CASES") from None
    if not hasattr(suite, "CASES"):
        raise InputError(f"{module} defines no CASES")
    return suite


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [f"# symdisc bench ({'quick' if doc['quick'] else 'full'})", "",
             f"{doc['date']}, device {doc['device']}, CPU {m['cpu']} ({m['cpu_count']} cores), GPU {m['gpu']}, "
             f"torch {m['torch']}, 1-min load {m['loadavg_1min']}; `{doc['command']}`", "",
             "| case | metric | value | baseline | ratio |", "|---|---|---|---|---|"]
    for r in doc["rows"]:
        if r.get("error"):
            lines.append(f"| {r['case']} | failed | {r['error']} | | |")
            continue
        better = {"higher": "↑", "lower": "↓"}.get(r.get("better"), "")
        base = f"{r['baseline']}: {r['baseline_value']:.4g}" if r.get("baseline_value") is not None else "—"
        ratio = f"{r['ratio']:.3g} {better}" if r.get("ratio") is not None else "—"
        value = f"{r['value']:.4g} {r['unit']}" if r.get("value") is not None else \
            f"— ({(r.get('details') or {}).get('error') or 'not measured'})"
        lines.append(f"| {r['case']} | {r['metric']} | {value} | {base} | {ratio} |")
    return "\n".join(lines) + "\n"


def run_bench(out: Path, suite: str = "benchmarks.suite", cases: list[str] | None = None, quick: bool = False,
              device: str = "cpu", command: str = "symdisc bench", progress=None) -> dict:
    """Run ``cases`` (default: all) of ``suite``; write ``OUT/bench.json`` and ``OUT/bench.md``; return the document."""
    module = load_suite(suite)
    names = list(module.CASES) if cases is None else cases
    unknown = [c for c in names if c not in module.CASES]
    if unknown:
        raise InputError(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(module.CASES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        work = out / "cases" / name
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the scripts' progress lines: stdout stays the result's
                got = module.CASES[name](quick=quick, device=device, workdir=work)
            rows += [{"case": name, **r, "date": stamp, "error": None} for r in got]
        except Exception as e:  # noqa: BLE001 - one case's failure is reported, the suite goes on
            rows.append({"case": name, "date": stamp, "error": f"{type(e).__name__}: {e}",
                         "traceback": traceback.format_exc()})
        if progress:
            progress(name, time.perf_counter() - t0)
    previous = out / "bench.json"
    if cases is not None and previous.exists():  # a partial re-run: keep the other cases' rows, in suite order
        import json

        old = json.loads(previous.read_text())
        if old.get("quick") == quick and old.get("device") == device:
            kept = [r for r in old["rows"] if r["case"] not in names]
            order = {c: i for i, c in enumerate(module.CASES)}
            rows = sorted(kept + rows, key=lambda r: order.get(r["case"], len(order)))
    discovery = next((r["ratio"] for r in rows if r.get("key") == "discovery_speed_ratio"), None)
    doc = {"benchmark": "symdisc bench", "quick": quick, "device": device, "command": command,
           "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
           "discovery_speed_ratio": discovery, "rows": rows}
    write_json(out / "bench.json", doc)
    atomic_write(out / "bench.md", lambda tmp: Path(tmp).write_text(markdown(doc)))
    return doc
