"""Incremental discovery: find, verify, freeze and deflate fields a block at a time.

Round r trains a symmetry of n_r + b_r generators: the n_r fields verified so far (copied in, frozen, and
the action network with them after round 1) and b_r ≤ ``block`` fresh ones (the spectral start of the
n_r + b_r generators, orthonormalised against the frozen ones).  The objective sees all n_r + b_r fields,
so its independence barrier deflates the fresh fields away from the verified span.  After the round a
held-out check (``verification``, invariance and independence only) keeps the fields that are invariant
and independent of those kept before; the rest are reported.  A round that verifies nothing new halves
the block (asking for one field too many at once can spoil the reachable ones: 0 of 4 on ReLU 3-3-1,
whose census is 3); the rounds stop when k fields are verified, when a round of one fresh field verifies
nothing (what is left is not reachable by this engine), or after ``max_rounds`` (default 2k).

The artefact is the largest round's symmetry among those whose frozen fields are the final verified ones:
the verified fields first, then the fields of that round that did not verify — "6 of 8 verified; kept" —
and its card lists every round.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from symdisc.architecture import Architecture
from symdisc.discovery.config import DiscoveryConfig
from symdisc.discovery.trainer import Trainer
from symdisc.verification.config import VerifyConfig
from symdisc.verification.run import verify_symmetry

ROUND_VERIFY_DRAWS = 8


def _copy_in(trainer: Trainer, previous: Trainer, kept: list[int]) -> None:
    """Put the ``kept`` generators of ``previous`` first in ``trainer`` (and its action network)."""
    src, dst = previous.symmetry.gens, trainer.symmetry.gens
    idx = torch.as_tensor(kept, dtype=torch.long)
    n = len(kept)
    with torch.no_grad():
        trainer.symmetry.action.load_state_dict(previous.symmetry.action.state_dict())
        if dst.kind == "free":
            dst.H.data[:, :n] = src.H.data[:, idx]
        else:
            dst.U.data[:n], dst.V.data[:n] = src.U.data[idx], src.V.data[idx]
    trainer.freeze(list(range(n)), action=True)  # also orthonormalises the fresh columns against the frozen ones


def fit_incremental(arch: Architecture, cfg: DiscoveryConfig, out: str | Path, block: int,
                    max_rounds: int | None = None, progress: bool = False,
                    round_draws: int = ROUND_VERIFY_DRAWS) -> tuple[Trainer, dict]:
    """Run the rounds (module docstring), each checked on ``round_draws`` held-out draws; the last round's
    trainer (its artefact is in ``out``) and a summary."""
    out = Path(out)
    kept: list[int] = []
    trainer: Trainer | None = None
    rounds, seconds, stopped, trainers = [], 0.0, "all verified", []
    for r in range(max_rounds or 2 * cfg.k):
        fresh = min(block, cfg.k - len(kept))
        round_cfg = replace(cfg, k=len(kept) + fresh)
        nxt = Trainer(arch, round_cfg)
        if trainer is not None:
            _copy_in(nxt, trainer, kept)
        summary = nxt.fit(out, progress=progress)
        seconds += summary["seconds"]
        report = verify_symmetry(nxt.symmetry, arch, nxt.batch,
                                 VerifyConfig(draws=round_draws, seed=cfg.seed, curves=False, structure=False,
                                              prior=tuple(range(len(kept)))))
        new = [i for i in report["verified"]["indices"] if i >= len(kept)]
        rounds.append({"round": r, "k": round_cfg.k, "frozen": len(kept), "trained": fresh, "steps": summary["steps"],
                       "stopped": summary["stopped"], "verified_new": len(new),
                       "residuals": [f["invariance_median"] for f in report["fields"]]})
        trainer = nxt
        trainers.append((nxt, summary))
        if not new:
            if fresh > 1:  # too many fresh fields at once can spoil those that were reachable: halve the block
                block = fresh // 2
                continue
            stopped = "a round verified no new field"
            break
        kept = list(range(len(kept))) + new  # the frozen ones come first: they stay verified (same draws, fields)
        if len(kept) == cfg.k:
            break
    else:
        stopped = "max rounds"
    # the artefact: the largest symmetry whose frozen fields are the final verified ones (a halved last round
    # holds fewer fields than the round before it, which already asked for all k)
    best = max((i for i, x in enumerate(rounds) if x["frozen"] == len(kept) or i == len(rounds) - 1),
               key=lambda i: (rounds[i]["k"], i))
    if best != len(rounds) - 1:
        trainer = trainers[best][0]
        trainer.write(out, trainers[best][1])
    result = {"steps": sum(x["steps"] for x in rounds), "stopped": stopped, "seconds": round(seconds, 3),
              "final": {}, "rounds": rounds, "requested_k": cfg.k, "verified_in_rounds": len(kept)}
    return trainer, result
