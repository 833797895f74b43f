"""``symdisc rr TARGET``: Ridge Rider on a problem of the paper (toy2d, tree, lever) or an architecture."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console

from symdisc.cli.common import ACT, BIAS, DEVICE, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture
from symdisc.cli.resume import check_resume
from symdisc.devices import resolve_device
from symdisc.errors import InputError
from symdisc.io import atomic_write, json_ready

RUN_FILE = "rr_run.json"
GENERAL = {"max_depth": 4}  # the CLI's own default where RRConfig's (8) suits a library call, not a first try


def _target(options: dict):
    import torch

    from symdisc.ridge import targets

    if options["target"] in targets.PROBLEMS:
        return targets.problem(options["target"], options["seed"], options["symmetry"], options["depth"],
                               options["init_scale"])
    arch = load_architecture(options["target"], **options["arch"])
    arch = arch.to(dtype=torch.float64, device=resolve_device(options["device"]))
    return targets.architecture(arch, options["seed"], options["symmetry"], options["batch_size"],
                                options["init_scale"], options["mis"])


def _run_dir(out: Path | None, resume: bool, options: dict, restart: bool = False) -> dict:
    """The options of this run: new (written to OUT/rr_run.json) or, with --resume, the stored ones; --restart
    deletes an earlier run's files first."""
    check_resume(out, resume, restart, "DIR, the run directory")
    if out is None:
        return options
    if restart:
        for name in (RUN_FILE, "archive.json", "archive.safetensors"):
            (out / name).unlink(missing_ok=True)
    stored = out / RUN_FILE
    if resume:
        if not stored.is_file():
            raise InputError(f"{out} holds no RR run to resume ({RUN_FILE} missing)")
        return {**json.loads(stored.read_text()), "budget": options["budget"]}
    if stored.exists() or (out / "archive.json").exists() or (out / "archive.safetensors").exists():
        raise InputError(f"{out} already holds an RR run: --resume to continue it, --restart to start over (deletes "
                         "it), or another directory")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(stored, lambda tmp: Path(tmp).write_text(json.dumps(options, indent=1)))
    return options


def rr_command(
    target: str = typer.Argument(..., help="toy2d | tree | lever (the paper's problems) | a zoo preset | FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP, variant: str = VARIANT,
    symmetry: str = typer.Option("none", "--symmetry", help="none | known (exact known symmetries; lever: the "
                                 "softmax shift) | an artefact directory (symdisc discover)"),
    update: str = typer.Option("exact", "--update", help="exact (Alg. 1: eigendecomposition each step) | gradient "
                               "(Alg. 2: eigenpair gradient steps on HVPs) | fixed (direction never updated)"),
    budget: int = typer.Option(2000, "--budget", help="ride iterations (trial points) over the whole search"),
    n_ridges: int = typer.Option(None, "--n-ridges", help="ridges offered per branching point, most negative first "
                                 "(6; lever 10)"),
    max_depth: int = typer.Option(None, "--max-depth", help="branchings along a path (4; tree 8, lever 1)"),
    search: str = typer.Option("bfs", "--search", help="archive order: bfs | dfs | random | loss"),
    eigensolver: str = typer.Option(None, "--eigensolver", help="auto (default) | dense | lanczos | lobpcg"),
    compile_hvp: bool = typer.Option(None, "--compile/--no-compile", help="Hessian-vector products through "
                                     "torch.compile (off; pays at large p after a few hundred products)"),
    grad_tol: float = typer.Option(None, "--grad-tol", help="‖∇L‖ at or below which a point is a saddle: both signs "
                                   "offered, orbit tangents projected (1e-8; lever 1e-4)"),
    max_ride_steps: int = typer.Option(None, "--max-ride-steps", help="steps per ride (1000; tree 10)"),
    alpha: float = typer.Option(1.0, "--alpha", help="ridge step α (exact: the largest, halved adaptively)"),
    alpha_min: float = typer.Option(None, "--alpha-min", help="smallest α before a ride ends (1e-4; tree 0.01)"),
    delta_break: float = typer.Option(0.95, "--delta-break", help="least overlap of consecutive ridges"),
    inner_steps: int = typer.Option(1, "--inner-steps", help="eigenpair gradient steps per ride step (gradient)"),
    lr_e: float = typer.Option(0.1, "--lr-e", help="eigenvector learning rate (gradient; 0 keeps the direction)"),
    lr_lambda: float = typer.Option(0.01, "--lr-lambda", help="eigenvalue learning rate (gradient)"),
    finish_steps: int = typer.Option(None, "--finish-steps", help="gradient-descent steps polishing each ride's end "
                                     "(0; lever 100)"),
    finish_lr: float = typer.Option(None, "--finish-lr", help="learning rate of the polishing descent (0.1; lever 30)"),
    project: bool = typer.Option(True, "--project/--no-project", help="design B: orbit tangents projected out"),
    adapt: bool = typer.Option(True, "--adapt/--no-adapt", help="design A: one ridge per certified cluster"),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="design C: merge orbit-equivalent rides"),
    depth: int = typer.Option(4, "--depth", help="tree: the random tree's depth"),
    runs: int = typer.Option(8, "--runs", help="lever: independent runs of the zero-shot-coordination protocol "
                             "(Alg. 3; 0: skip it)"),
    signed: bool = typer.Option(False, "--signed", help="lever: score (Ψ, sign) apart in the protocol (our variant; "
                                "the paper's Alg. 3 pools ± by self-play)"),
    batch_size: int = typer.Option(64, "--batch-size", help="architecture: samples of the fixed batch"),
    init_scale: float = typer.Option(1e-2, "--init-scale", help="ε of the start θ₀ = ε·θ_init (near the saddle at 0)"),
    mis: bool = typer.Option(False, "--mis/--no-mis", help="architecture: start at the MIS (min ‖∇L‖² + ‖ξ‖²)"),
    seed: int = typer.Option(0, "--seed"),
    device: str = DEVICE,
    out: Path = typer.Option(None, "--out", help="run directory: archive checkpointed after every ride"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out (its stored options; --budget "
                                "from this call)"),
    restart: bool = typer.Option(False, "--restart", help="start over in an --out that holds a run (deletes its "
                                 "rr_run.json and archive; without --resume or --restart such an --out is refused)"),
    json_out: bool = JSON,
) -> None:
    """Ridge Rider: branch along the most negative Hessian eigenvectors from a saddle and collect the solutions.

    JSON: {"target", "symmetry", "config", "mis" (grad_norm, entropy, invariance, loss, iterations, or null),
    "summary" (rides, pending, solutions, merged, ends, iterations, hvps, seconds, stopped, best_loss),
    "solutions": [{"id", "parent", "fingerprint", "sign", "loss", "steps", "end_reason", … the problem's reading:
    tree: return, leaf, reward, positive; lever: self_play, levers, payoff; toy2d: nearest_critical_point}],
    "problem" (tree: positive_found, positive_leaves; lever: "zsc", the zero-shot-coordination protocol:
    selected_fingerprint, selected_sign, selected_payoff, selected_cross_play, selected_self_play, ridges),
    "run_dir"}.
    """
    import torch

    from symdisc.ridge import RidgeRider, RRConfig

    options = {"target": target, "arch": {"act": act, "dims": dims, "bias": bias, "loss": loss, "skip": skip,
                                          "variant": variant},
               "symmetry": symmetry, "depth": depth, "batch_size": batch_size, "init_scale": init_scale, "mis": mis,
               "seed": seed, "device": device, "budget": budget,
               "runs": runs, "signed": signed,
               "config": {k: v for k, v in dict(
                   update=update, n_ridges=n_ridges, max_depth=max_depth, search=search, eigensolver=eigensolver,
                   compile_hvp=compile_hvp,
                   grad_tol=grad_tol, max_ride_steps=max_ride_steps, alpha=alpha, alpha_min=alpha_min,
                   delta_break=delta_break, inner_steps=inner_steps, lr_e=lr_e, lr_lambda=lr_lambda,
                   finish_steps=finish_steps, finish_lr=finish_lr, project=project, adapt=adapt, merge=merge,
                   budget=budget).items() if v is not None}}
    RRConfig.from_dict({**GENERAL, **options["config"]})  # bad options fail before any work
    if runs < 0:
        raise InputError(f"--runs must be ≥ 0, got {runs}")
    t = None if resume else _target(options)  # a bad target fails before anything is written or deleted
    options = _run_dir(out, resume, options, restart)
    t = t or _target(options)
    config = RRConfig.from_dict({**GENERAL, **t.defaults, **options["config"]})
    X = t.info.get("X")
    if resume:
        rr = RidgeRider.resume(out, t.loss, symmetry=t.symmetry, X=X, progress=True)
        rr.config = replace(rr.config, budget=budget)
    else:
        rr = RidgeRider(t.loss, t.start, config, symmetry=t.symmetry, X=X,
                        generator=torch.Generator().manual_seed(seed), directory=out, progress=True)
    result = rr.run(budget)
    solutions = [{"id": n.id, "parent": n.parent, "fingerprint": n.fingerprint, "sign": n.sign, "loss": n.loss_end,
                  "steps": n.steps, "end_reason": n.end_reason, "leaf": n.leaf, **t.describe(n.theta_end)}
                 for n in result.archive.ends()]
    problem = {k: v for k, v in t.info.items() if k != "X"}
    if t.name == "tree":
        from symdisc.ridge.problems.tree import Tree, fraction_positive_found

        tree = Tree.from_dict(t.info["tree"])
        problem["positive_found"] = fraction_positive_found([n.theta_end for n in result.archive.ends()], tree)
    if t.name == "lever" and options.get("runs", 0):
        from symdisc.ridge.zsc import lever_zsc

        protocol = {k: v for k, v in config.to_dict().items() if k not in ("project", "adapt", "merge")}
        problem["zsc"] = lever_zsc(options["runs"], options["seed"], protocol, signed=options.get("signed", False))
    doc = json_ready({"target": t.name, "symmetry": None if t.symmetry is None else t.symmetry.name,
                      "config": rr.config.to_dict(), "mis": None if t.mis is None else t.mis.summary(),
                      "summary": result.summary(), "solutions": solutions, "problem": problem,
                      "run_dir": None if out is None else str(out)}, nonfinite_to_null=True)
    if json_out:
        emit_json(doc)
        return
    s, con = doc["summary"], Console()
    con.print(f"[bold]Ridge Rider on {t.name}[/]" + (f" with {doc['symmetry']}" if doc["symmetry"] else "")
              + f": {s['rides']} rides, {s['ends']} end points ({s['solutions']} leaves, {s['merged']} merged), "
              f"{s['iterations']} iterations, {s['hvps']} HVPs, {s['seconds']:.1f} s, stopped: {s['stopped']}")
    if "positive_found" in problem:
        con.print(f"positive leaves found: {problem['positive_found']:.0%} of {len(problem['positive_leaves'])}")
    for sol in sorted(solutions, key=lambda d: d["loss"])[:10]:
        extra = {k: v for k, v in sol.items() if k not in ("id", "parent", "sign", "steps", "leaf")}
        con.print(f"  Ψ={sol['fingerprint']}{'+' if sol['sign'] > 0 else '−'}  " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items() if k != "fingerprint"))
