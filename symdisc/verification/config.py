"""What a verification run measures, and on which held-out stream."""

from __future__ import annotations

from dataclasses import dataclass

from symdisc.linalg import DEFAULT_RTOL

HELD_OUT_STREAM = 20  # draws come from SeedSequence([seed, 20, j]), never used in training
INVARIANT = 1e-3  # a field is invariant when its median relative residual is at most this
INDEPENDENT = 1e-2  # … and adds a direction when its median distance from the accepted fields' span is at least this


@dataclass(frozen=True)
class VerifyConfig:
    draws: int = 16
    seed: int = 0
    curve_points: int = 9
    curve_rel: float = 0.1  # curves move ‖θ‖·curve_rel along ξ at the ends
    flow_steps: int = 8
    composition_ts: tuple[float, ...] = (0.05, 0.1)
    rtol: float = DEFAULT_RTOL
    prior: tuple[int, ...] = ()  # fields verified before (incremental rounds): considered first when selecting
    structure: bool = True  # False skips identity, composition, bracket, closure, data dependence
    curves: bool = True  # False skips the orbit/flow curves (the slow part), reported null; nothing else changes
    device: str = "cpu"  # where the float64 checks run (draws come from CPU generators: the same on every device)
