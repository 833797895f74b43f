"""The cases of ``symdisc bench`` (symdisc/bench.py): each runs one benchmark script of this directory at a quick
or full size and reads its headline rows (value, baseline measured in the same run, ratio).  The scripts keep
their own JSON (under the case's work directory) with every detail; the full sizes are the scripts' defaults,
the committed measurements of benchmarks/README.md.

Cases and their device: ``dcs_step`` runs on ``--device``; the others measure the CPU path (the discovery,
census, teleport and RR scripts pin their own device).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
for root in (str(HERE), str(HERE.parent)):
    if root not in sys.path:
        sys.path.insert(0, root)


def _run(script: str, argv: list[str], workdir: Path, out: Path | None = None) -> dict:
    """``benchmarks/<script>.py``'s main(argv + --out) in this process; its JSON document (``out``: when argv
    already names it)."""
    import importlib

    if out is None:
        out = workdir / f"{script}.json"
        argv = [*argv, "--out", str(out)]
    importlib.import_module(script).main(argv)
    return json.loads(out.read_text())


def discovery(quick: bool, device: str, workdir: Path) -> list[dict]:
    """Discovery training step: symdisc's batched trainer vs the per-sample Python loop reference, steps/s, both
    phases, on the tiny transformer (k = 8, 32 draws, free generators) and on a tanh MLP with p = 9900 (k = 4,
    8 draws of 16, rank-1 generators)."""
    rows = []
    for model, label in (("tiny-transformer", "tiny transformer"), ("mlp", "MLP, p = 9900")):
        argv = ["--steps", "2", "--loop-steps", "1", "--warmup", "1", "--impls", "symdisc,loop", "--skip-check"] \
            if quick else ["--impls", "symdisc,loop"]
        if model == "mlp":
            argv += ["--model", "mlp"] + (["--phases", "joint"] if quick else [])
        doc = _run("discovery_speed", [*argv, "--out", str(workdir / f"discovery_speed_{model}.json")], workdir,
                   out=workdir / f"discovery_speed_{model}.json")
        for phase, p in doc["summary"].items():
            key = {"key": "discovery_speed_ratio"} if (model, phase) == ("tiny-transformer", "joint") else {}
            rows.append({"metric": f"discovery step, {phase} phase ({label})", "unit": "steps/s",
                         "value": p["symdisc_steps_per_second"], "baseline": "per-sample loop",
                         "baseline_value": p["loop_steps_per_second"], "ratio": p["speedup_vs_loop"],
                         "better": "higher", **key})
    return rows


def verification(quick: bool, device: str, workdir: Path) -> list[dict]:
    """Verification's invariance residuals |∇ℓ_i·ξ_k| per second: the batched path vs a per-sample, per-field loop
    (MLP p = 9610 with its 128 rescalings; tiny transformer), and the end-to-end verify_symmetry per draw (without
    curves and structure: the configuration incremental discovery and the lift check use)."""
    argv = ["--draws", "1", "--verify-draws", "1", "--models", "tiny-transformer", "--before-dims", ""] if quick else []
    rows = []
    for r in _run("verify_throughput", argv, workdir)["rows"]:
        where = f"{r['model']}, p = {r['num_params']}, k = {r['k']}, B = {r['batch']}"
        rows.append({"metric": f"verification residuals ({where})", "unit": "residuals/s",
                     "value": r["residuals_per_second"]["symdisc"], "baseline": "per-sample, per-field loop",
                     "baseline_value": r["residuals_per_second"]["loop"], "ratio": r["speedup"], "better": "higher",
                     "details": {"max_abs_diff": r["max_abs_diff"], "agree": r["agree"]}})
        if r["verify_symmetry_seconds_per_draw"] is not None:
            rows.append({"metric": f"verify_symmetry, invariance report ({where})", "unit": "s/draw",
                         "value": r["verify_symmetry_seconds_per_draw"], "baseline": None, "baseline_value": None,
                         "ratio": None, "better": "lower"})
    return rows


def teleport(quick: bool, device: str, workdir: Path) -> list[dict]:
    """Teleport on E3 vs the reference algorithm (same steps and lr; guard off and on), and one teleport event on
    digits in plain epochs and optimizer steps."""
    argv = ["--events", "1", "--transform-events", "1", "--epochs", "1", "--repeats", "2", "--seeds", "1",
            "--mnist-epochs", "0"] if quick else []
    doc = _run("teleport_overhead", argv, workdir)
    rows = []
    all_runs = doc["e3_reference"]["runs"]
    for lr in sorted({r["lr"] for r in all_runs}, reverse=True):
        runs = [r for r in all_runs if r["lr"] == lr and "time_ratio_over_reference" in r]  # diverged: untimed
        for impl, label in (("symdisc_first_order_guard_off", "guard off"),
                            ("symdisc_first_order_guard_off_before", "guard off, before the issue-14 fast paths"),
                            ("symdisc_first_order", "guard on"), ("symdisc_exp", "exp action, guard on")):
            ratios = [r["time_ratio_over_reference"][impl] for r in runs]
            if not ratios:
                continue
            rows.append({"metric": f"teleport on E3, lr {lr:g}, {label} (8 steps, worst seed)",
                         "unit": "× reference time", "value": max(ratios), "baseline": "reference algorithm",
                         "baseline_value": 1.0, "ratio": max(ratios), "better": "lower",
                         "details": {"per_run": ratios,
                                     "untimed_runs": sum(r["lr"] == lr for r in all_runs) - len(runs)}})
    for data, key in (("digits", "digits"), ("60k MNIST-shaped", "mnist_shape")):
        for opt, r in (doc.get(key) or {"results": {}})["results"].items():
            rows.append({"metric": f"teleport event on {data}, {opt}", "unit": "epochs",
                         "value": r["event_over_epoch"], "baseline": "one plain epoch (s)",
                         "baseline_value": r["epoch"]["median_s"], "ratio": r["event_over_epoch"], "better": "lower",
                         "details": {"event_in_optimizer_steps": r["event_in_optimizer_steps"]}})
    return rows


def census(quick: bool, device: str, workdir: Path) -> list[dict]:
    """The census at one size: dense SVD (fixed cut) vs the Gram method (gap cut), same (θ, X)."""
    argv = ["--kinds", "old,new", "--dims", "16,32,8", "--batch-size", "64"] if quick else ["--kinds", "old,new"]
    res = _run("census_scale", argv, workdir)["results"]
    old, new = res["old_threads1"], res["new_threads1"]
    return [{"metric": f"census, p = {new['num_params']}", "unit": "s", "value": new["wall_seconds"],
             "baseline": "dense SVD census", "baseline_value": old["wall_seconds"],
             "ratio": new["wall_seconds"] / old["wall_seconds"], "better": "lower",
             "details": {"same_null_dim": res["speedup_threads1"]["same_null_dim"]}}]


def ridge(quick: bool, device: str, workdir: Path) -> list[dict]:
    """RR's k most negative Hessian eigenpairs: Lanczos on HVPs vs dense eigh (MLP 64-h-10 on digits)."""
    argv = ["--widths", "16", "--k", "2"] if quick else ["--widths", "16,32,64"]
    rows = []
    for r in _run("rr_eigen", argv, workdir)["rows"]:
        if "dense" not in r or "lanczos" not in r:
            continue
        lz, de = r["lanczos"], r["dense"]
        rows.append({"metric": f"RR eigenpairs, p = {r['p']}", "unit": "s", "value": lz["wall_seconds"],
                     "baseline": "dense eigh", "baseline_value": de["wall_seconds"],
                     "ratio": lz["wall_seconds"] / de["wall_seconds"], "better": "lower",
                     "details": {"hvps": lz["hvps"], "dense_hvps": de["hvps"], "dlambda": r.get("lanczos_dlambda")}})
    return rows


def dcs(quick: bool, device: str, workdir: Path) -> list[dict]:
    """DCS (every parameter w ⊙ u) vs the plain model: step time and accounted memory."""
    argv = ["--models", "mlp", "--batches", "1,8", "--steps", "2"] if quick else []
    rows = []
    for r in _run("dcs_step", [*argv, "--device", device], workdir)["rows"]:
        p, d = r["plain"], r["dcs"]
        rows.append({"metric": f"DCS step, {r['model']}, batch {r['batch']}", "unit": "ms",
                     "value": d["step_seconds"] * 1e3, "baseline": "plain model",
                     "baseline_value": p["step_seconds"] * 1e3, "ratio": r["time_ratio"], "better": "lower"})
        rows.append({"metric": f"DCS memory, {r['model']}, batch {r['batch']}", "unit": "MiB",
                     "value": d["accounted_mib"], "baseline": "plain model", "baseline_value": p["accounted_mib"],
                     "ratio": r["memory_ratio"], "better": "lower"})
    return rows


def compile_(quick: bool, device: str, workdir: Path) -> list[dict]:
    """``torch.compile`` against eager on the hot kernels (compile_trial.py): per call after a cold compile, the
    compile time and the calls it takes to pay; a kernel that cannot be compiled is a row without a value."""
    argv = ["--kernels", "verify_jacobian", "--reps", "2"] if quick else []
    rows = []
    for r in _run("compile_trial", argv, workdir)["kernels"]:
        details = {k: r.get(k) for k in ("p", "compile_seconds", "break_even_calls", "max_abs_diff", "error")}
        if "eager_total_seconds" in r:  # end to end: three Lanczos solves, compile included
            rows.append({"metric": f"compiled HVPs, 3 Lanczos solves (p = {r['p']})", "unit": "s",
                         "value": r["compiled_total_seconds"], "baseline": "eager HVPs",
                         "baseline_value": r["eager_total_seconds"],
                         "ratio": r["compiled_total_seconds"] / r["eager_total_seconds"], "better": "lower",
                         "details": {"max_abs_dlambda": r["max_abs_dlambda"], "hvps": r["compiled_hvps"]}})
            continue
        rows.append({"metric": f"torch.compile, {r['kernel']} (p = {r['p']})", "unit": "ms/call",
                     "value": None if r["compiled_seconds"] is None else r["compiled_seconds"] * 1e3,
                     "baseline": "eager", "baseline_value": r["eager_seconds"] * 1e3,
                     "ratio": None if r["compiled_seconds"] is None else r["compiled_seconds"] / r["eager_seconds"],
                     "better": "lower", "details": details})
    return rows


CASES: dict[str, Callable[..., list[dict]]] = {"discovery": discovery, "verification": verification,
                                               "teleport": teleport, "census": census, "ridge": ridge, "dcs": dcs,
                                               "compile": compile_}
