"""Discovery reproductions, one runner per case: ``discovery_<case>`` for every case of ``cases.CASES``.

A run trains the case with symdisc's discovery engine (``symdisc.discovery.api.discover``, the seed as its
seed), verifies on held-out draws (float64) and exports the artefact (card + safetensors) to
``<zoo>/<case>/`` (seed 0; ``<case>-seed<S>`` otherwise; ``zoo: null`` keeps it in a temporary directory
removed when the process exits).  ``reverify: true`` only re-verifies the artefact already there,
keeping its training record (the card's).  The figure step draws the artefact's generators, exp(h)
and loss along learned vs random curves as ``<case>_generators.png``, ``_exp_generators.png``,
``_curves.png``.

Config: ``steps``, ``k``, ``preset`` (the discovery preset), ``verify_draws``, ``zoo``, ``reverify``, ``block``
(incremental discovery when < k), ``generator_kind`` and ``rank`` (None: the preset's).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import symdisc
from experiments.discovery.cases import CASES, Case, case_metrics
from experiments.registry import ROOT, Runner
from symdisc.discovery import artefact
from symdisc.discovery.api import discover
from symdisc.errors import ArtefactError, InputError

ARTEFACT_FILES = ("card.json", "symmetry.safetensors")
_scratch: list[tempfile.TemporaryDirectory] = []  # where zoo: null runs keep their artefact until exit


def artefact_dir(name: str, config: dict, seed: int) -> Path | None:
    """``<zoo>/<case>`` (relative to the repository root) for seed 0, ``<zoo>/<case>-seed<S>`` otherwise."""
    if config["zoo"] is None:
        return None
    return ROOT / config["zoo"] / (name if seed == 0 else f"{name}-seed{seed}")


def _scratch_dir(name: str) -> Path:
    if not _scratch:
        _scratch.append(tempfile.TemporaryDirectory(prefix="experiments-discovery-"))
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_scratch[0].name))


def summary(name: str, case: Case, verification: dict, training: dict, extra: dict) -> dict:
    """The case's record: what it must show, training, the verification's headline numbers and all of it."""
    v = verification
    return {
        "case": name, "figure": case.figure, "claim": case.claim, "architecture": case.architecture,
        "options": case.options, **training, "batch_size": v["batch_size"], "verdict": v["verdict"],
        "invariance_median": v["invariance"]["median"],
        "curve_ratio": {c: v["curves"][c]["ratio"] for c in v["curves"]},
        "principal_angles_mean_cos2": v["principal_angles_mean_cos2"],
        "null_share_output_min": min(f["null_share_output"] for f in v["fields"]),
        "null_share_loss_min": min(f["null_share_loss"] for f in v["fields"]),
        "counts": v["counts"], "census": v["census"], "data_dependence_median": v["data_dependence_median"],
        **extra, "verification": v,
    }


def train_case(name: str, case: Case, config: dict, seed: int) -> dict:
    """Discover, verify, export the artefact; the case's record."""
    arch = case.arch()
    dest = artefact_dir(name, config, seed) or _scratch_dir(name)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / name
        t0 = time.perf_counter()
        report = discover(arch, run_dir, k=config["k"], steps=config["steps"], preset=config["preset"],
                          verify_draws=config["verify_draws"], make_figures=False, seed=seed, progress=True,
                          block=config["block"], generator_kind=config["generator_kind"], rank=config["rank"])
        seconds = time.perf_counter() - t0
        extra = case_metrics(case, artefact.load(run_dir, arch=arch, fields="all"), arch)
        dest.mkdir(parents=True, exist_ok=True)
        for f in ARTEFACT_FILES:
            shutil.copy(run_dir / f, dest / f)
    training = {"k": config["k"], "preset": config["preset"], "steps": report["training"]["steps"],
                "stopped": report["training"]["stopped"], "seconds": round(seconds, 1), "block": config["block"],
                "rounds": report["training"].get("rounds")}
    return {**summary(name, case, report["verification"], training, extra), "artefact": str(dest)}


def reverify_case(name: str, case: Case, config: dict, seed: int) -> dict:
    """Verify the exported artefact again (its card records the new verification); training from the card."""
    directory = artefact_dir(name, config, seed)
    if directory is None:
        raise InputError("reverify needs the zoo directory the artefact was exported to (zoo: null given)")
    if not (directory / "card.json").is_file():
        raise ArtefactError(f"no artefact to re-verify in {directory}")
    arch = case.arch()
    card = json.loads((directory / "card.json").read_text())
    t0 = time.perf_counter()
    v = symdisc.verify(directory, arch=arch, draws=config["verify_draws"], seed=seed)
    trained = card["training"]
    training = {"k": trained["config"]["k"], "preset": trained["config"]["preset"],
                "steps": trained["summary"]["steps"], "stopped": trained["summary"]["stopped"],
                "seconds": round(time.perf_counter() - t0, 1), "reverified": True}
    extra = case_metrics(case, artefact.load(directory, arch=arch, fields="all"), arch)
    return {**summary(name, case, v, training, extra), "artefact": str(directory)}


def case_runner(name: str, case: Case) -> Runner:
    def run(config: dict, seed: int) -> dict:
        return {"seed": seed, **(reverify_case if config["reverify"] else train_case)(name, case, config, seed)}

    def outputs(config: dict, seed: int) -> list[Path]:
        directory = artefact_dir(name, config, seed)
        return [] if directory is None else [directory / "card.json"]

    return Runner(f"discovery_{name}", f"fig. {case.figure}: {case.claim}", run, figure,
                  {"steps": case.steps, "k": case.k, "preset": case.preset, "verify_draws": 16, "zoo": "zoo",
                   "reverify": False, "block": case.block, "generator_kind": case.generator_kind,
                   "rank": case.rank}, {"steps": 5, "verify_draws": 2, "zoo": None}, summarize,
                  group="discovery", stem=name, outputs=outputs)


def summarize(results: list[dict], config: dict) -> dict:
    return {str(r["seed"]): {k: r[k] for k in ("verdict", "invariance_median", "curve_ratio", "counts")}
            for r in results}


def figure(document: dict, path: Path) -> None:
    """The discovery figures of the first seed's artefact as ``<stem>_<figure>.png`` beside ``path``."""
    from symdisc.discovery.figures import figures

    result, path = document["results"][0], Path(path)
    arch = CASES[result["case"]].arch()
    sym = artefact.load(result["artefact"], arch=arch, fields="all")
    with tempfile.TemporaryDirectory() as tmp:
        for fig_path in figures(sym, arch, sym.data_shape[0], tmp, seed=result["seed"]):
            shutil.copy(fig_path, path.with_name(f"{path.stem}_{Path(fig_path).name}"))


RUNNERS = [case_runner(name, case) for name, case in CASES.items()]
