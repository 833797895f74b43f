"""Reproductions of dissertation ch. 6 (figs. 6.3–6.7) and known-symmetry recoveries.

    python experiments/discovery_reproductions.py [--case NAME ...] [--steps N] [--smoke]

Each case trains with symdisc's discovery engine, verifies on held-out draws (float64) and writes
experiments/results/discovery/<case>.json (summary + full verification) and the case's figures
(generators, exp(h), loss along learned vs random curves) as <case>_*.png; the artefact (card +
safetensors) goes to zoo/<case>/.  --smoke runs every case for a few steps into a temporary
directory (CI).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import torch

import symdisc
from symdisc import make_generator
from symdisc.discovery import artefact
from symdisc.discovery.api import discover
from symdisc.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "discovery"
ZOO = ROOT / "zoo"

# name: (figure, zoo preset, options, k, preset, steps, what the case must show)
CASES = {
    "fig6.3-linear-scalar": ("6.3", "linear-scalar", {}, 1, "default", 600,
                             "field ∥ (w1, −w2), median |cos| ≥ 0.99; h/‖h‖ vs ±diag(1,−1)/√2"),
    "fig6.3-linear-scalar-faithful": ("6.3", "linear-scalar", {}, 1, "faithful", 600,
                                      "the same with eq. 6.3 as printed (faithful preset)"),
    "fig6.4-sigmoid-2layer": ("6.4", "sigmoid-2layer", {}, 4, "default", 1000,
                              "data-dependent symmetries at batch 1: ‖∂ξ/∂X‖ > 0"),
    "fig6.5-tanh-3layer": ("6.5", "tanh-3layer", {}, 4, "default", 1000,
                           "batch-1 symmetries; coupling of non-contiguous layers"),
    "fig6.7-tiny-transformer": ("6.7", "tiny-transformer", {}, 8, "default", 1000,
                                "each field classified: in the known GL span, functional or loss-only"),
    "gl3-linear-3-3-1": ("B3/B9", "mlp", {"act": "linear", "dims": "3,3,1"}, 9, "default", 800,
                         "span ⊇ GL(3) tangent space: mean cos² ≥ 0.95; each field ≥ 0.99 in the null space"),
    "rescale-relu-3-3-1": ("B3/B9", "mlp", {"act": "relu", "dims": "3,3,1"}, 3, "default", 800,
                           "the 3 rescalings: mean cos² ≥ 0.95, null share ≥ 0.99, invariance ≤ 1e-3"),
    "none-tanh-3-3-1": ("B9", "mlp", {"act": "tanh", "dims": "3,3,1"}, 2, "default", 400,
                        "census dimension 0 at batch 64: verification reports no symmetry"),
}


def scalar_case_metrics(sym) -> dict:
    """B6: |cos(ξ, (w1, −w2))| on held-out θ and the distance of h/‖h‖ to ±diag(1, −1)/√2."""
    arch = symdisc.zoo.get("linear-scalar").to(dtype=torch.float64)
    theta, X, _ = arch.sample_draws(64, 1, make_generator(123, 20))
    cos = []
    for th, x in zip(theta, X, strict=True):
        xi, target = sym.tangents(th, x)[:, 0], torch.stack([th[0], -th[1]])
        cos.append(float(((xi @ target).abs() / (xi.norm() * target.norm())).detach()))
    h = sym.generators()[0]
    h = h / h.norm()
    ref = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)) / math.sqrt(2)
    return {"median_abs_cos_with_w1_minus_w2": sorted(cos)[len(cos) // 2],
            "h_normalised": h.tolist(), "frobenius_distance_to_pm_diag": float(min((h - ref).norm(), (h + ref).norm()))}


def layer_coupling(sym, arch) -> list[dict]:
    """Share of each generator's Frobenius mass in blocks (parameter a, parameter b): fig. 6.5's
    'symmetries acting on non-contiguous layers' made measurable."""
    H = sym.generators()
    names, out = arch.layout.names, []
    for i in range(H.shape[0]):
        total = float(H[i].pow(2).sum())
        blocks = {f"{a}<-{b}": float(H[i][arch.layout.slice(a), arch.layout.slice(b)].pow(2).sum()) / total
                  for a in names for b in names}
        out.append(blocks)
    return out


def reverify_case(name: str, results: Path) -> dict:
    """Re-run only the verification of a committed case (zoo/<case>), keeping its training record."""
    path = results / f"{name}.json"
    summary = json.loads(path.read_text())
    _, preset_name, options, *_ = CASES[name]
    v = symdisc.verify(ZOO / name, arch=symdisc.zoo.get(preset_name, **options), draws=16)
    summary.update(verdict=v["verdict"], invariance_median=v["invariance"]["median"], counts=v["counts"],
                   verification=v, reverify_command=f"python experiments/discovery_reproductions.py --case {name} "
                                                    "--reverify")
    write_json(path, summary)
    return summary


def run_case(name: str, steps: int | None, results: Path, zoo_dir: Path | None, verify_draws: int = 16) -> dict:
    fig, preset_name, options, k, preset, default_steps, claim = CASES[name]
    arch = symdisc.zoo.get(preset_name, **options)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / name
        t0 = time.perf_counter()
        report = discover(arch, run_dir, k=k, steps=steps or default_steps, preset=preset, verify_draws=verify_draws,
                          make_figures=True)
        seconds = time.perf_counter() - t0
        sym = artefact.load(run_dir, arch=arch)
        extra = {}
        if preset_name == "linear-scalar":
            extra["scalar"] = scalar_case_metrics(sym)
        if preset_name in ("tanh-3layer", "sigmoid-2layer"):
            extra["layer_coupling"] = layer_coupling(sym, arch)
        for fig_path in report["figures"]:
            shutil.copy(fig_path, results / f"{name}_{Path(fig_path).name}")
        if zoo_dir is not None:
            dest = zoo_dir / name
            dest.mkdir(parents=True, exist_ok=True)
            for f in ("card.json", "symmetry.safetensors"):
                shutil.copy(run_dir / f, dest / f)
    v = report["verification"]
    summary = {
        "case": name, "figure": fig, "claim": claim, "architecture": preset_name, "options": options, "k": k,
        "preset": preset, "steps": report["training"]["steps"], "stopped": report["training"]["stopped"],
        "seconds": round(seconds, 1), "batch_size": v["batch_size"], "verdict": v["verdict"],
        "invariance_median": v["invariance"]["median"],
        "curve_ratio": {c: v["curves"][c]["ratio"] for c in v["curves"]},
        "principal_angles_mean_cos2": v["principal_angles_mean_cos2"],
        "null_share_output_min": min(f["null_share_output"] for f in v["fields"]),
        "null_share_loss_min": min(f["null_share_loss"] for f in v["fields"]),
        "counts": v["counts"], "census": v["census"], "data_dependence_median": v["data_dependence_median"],
        **extra,
        "command": f"python experiments/discovery_reproductions.py --case {name}",
        "verification": v,
    }
    write_json(results / f"{name}.json", summary)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="repeatable; default: all")
    ap.add_argument("--steps", type=int, default=None, help="override every case's steps")
    ap.add_argument("--smoke", action="store_true", help="5 steps, 2 held-out draws per case, in a temporary dir")
    ap.add_argument("--reverify", action="store_true", help="only re-verify the committed artefacts in zoo/")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the committed runs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = args.case or list(CASES)
    if args.reverify:
        for name in cases:
            print(json.dumps({k: v for k, v in reverify_case(name, RESULTS).items() if k in ("case", "verdict")}))
        return
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            for name in cases:
                s = run_case(name, 5, Path(tmp), None, verify_draws=2)
                print(json.dumps({"case": name, "verdict": s["verdict"]}))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in cases:
        s = run_case(name, args.steps, RESULTS, ZOO)
        print(json.dumps({k: s[k] for k in ("case", "seconds", "invariance_median", "curve_ratio", "verdict")}))


if __name__ == "__main__":
    main()
