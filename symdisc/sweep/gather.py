"""The sweep's results as one table: a row per task, its grid values, and the scalar leaves of its result.

Nested results are flattened to dotted column names (``summary.rr_global``; list items by index, lists of at most
``MAX_LIST`` items).  Columns whose name holds a timing word (``seconds``, ``elapsed``) vary from run to run,
so they go to ``timing.csv``: ``table.csv`` / ``table.json`` depend only on the tasks' results, and two
backends (or two machines) that computed the same results write identical tables.  Failed tasks are rows
with ``status = failed`` and their ``error``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from symdisc.errors import InputError
from symdisc.io import atomic_write, write_json
from symdisc.sweep.tasks import error_path, finished, read_json

MAX_LIST = 16
MAX_COLUMNS = 400
TIMING_WORDS = ("seconds", "elapsed")


def flatten(value, prefix: str, out: dict) -> None:
    """Scalar leaves of a JSON value as ``{dotted.name: value}``."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        if len(value) <= MAX_LIST:
            for i, v in enumerate(value):
                flatten(v, f"{prefix}.{i}", out)
    elif value is None or isinstance(value, (bool, int, float, str)):
        out[prefix] = value


def _cell(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def rows(out: Path, tasks: list[dict]) -> list[dict]:
    """One dict per task in task order (status done | failed | missing)."""
    table = []
    for t in tasks:
        row = {"task": t["id"], "runner": t["runner"], "seed": t["seed"],
               **{f"param.{k}": _cell(v) for k, v in t["params"].items()}}
        doc = finished(out, t["id"])
        failed = read_json(error_path(out, t["id"])) if doc is None else None
        if doc is not None:
            leaves: dict = {}
            flatten(doc["result"], "", leaves)
            row.update({"status": "done", "error": None, "seconds_task": doc.get("seconds")})
            row.update({f"result.{k}": v for k, v in leaves.items()})
        elif failed is not None:
            row.update({"status": "failed", "error": failed.get("error")})
        else:
            row.update({"status": "missing", "error": None})
        table.append(row)
    return table


def write_table(out: Path, table: list[dict]) -> dict:
    """``table.csv``, ``table.json`` (results) and ``timing.csv``; returns their paths."""
    import pandas as pd

    frame = pd.DataFrame(table)
    timing = [c for c in frame.columns if any(w in c for w in TIMING_WORDS)]
    keep = [c for c in frame.columns if c not in timing][:MAX_COLUMNS]
    results, times = frame[keep], frame[["task", *timing]]
    paths = {"table_csv": out / "table.csv", "table_json": out / "table.json", "timing_csv": out / "timing.csv"}
    atomic_write(paths["table_csv"], lambda tmp: results.to_csv(tmp, index=False))
    atomic_write(paths["timing_csv"], lambda tmp: times.to_csv(tmp, index=False))
    records = json.loads(results.to_json(orient="records"))
    write_json(paths["table_json"], records)
    return {k: str(v) for k, v in paths.items()}


def figure(out: Path, table: list[dict], metrics: list[str] | None = None) -> str | None:
    """``summary.png``: the ``metrics`` result columns (default: the first six numeric ones that vary) against the
    task's grid values, one panel each, coloured by runner; None when there is nothing numeric to draw."""
    import pandas as pd

    from symdisc.plotting import plt, save_figure, sns

    frame = pd.DataFrame([r for r in table if r["status"] == "done"])
    if frame.empty:
        return None
    params = [c for c in frame.columns if c.startswith("param.")]
    frame["grid point"] = frame[params].astype(str).agg(", ".join, axis=1) if params else frame["runner"]
    if metrics:
        missing = [m for m in metrics if f"result.{m}" not in frame.columns]
        if missing:
            raise InputError(f"no result column {', '.join(missing)} to draw (see {out / 'table.csv'})")
        numeric = [f"result.{m}" for m in metrics]
    else:
        numeric = [c for c in frame.columns if c.startswith("result.") and not any(w in c for w in TIMING_WORDS)
                   and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 1
                   and all(math.isfinite(v) for v in frame[c].dropna())][:6]
    if not numeric:
        return None
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(len(numeric), 1, figsize=(9, 2.6 * len(numeric)), squeeze=False)
    for ax, col in zip(axes[:, 0], numeric, strict=True):
        several = frame["runner"].nunique() > 1
        sns.stripplot(data=frame, x="grid point", y=col, hue="runner" if several else None, ax=ax, size=6,
                      jitter=0.1)
        ax.set_title(col.removeprefix("result."), fontsize=9)
        ax.set_ylabel("")
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelsize=7, rotation=15)
    fig.tight_layout()
    path = out / "summary.png"
    save_figure(fig, path)
    return str(path)
