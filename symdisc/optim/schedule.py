"""When a symmetry-using optimizer acts: the one way to write a schedule.

Steps are counted as torch.optim does, 1 after the first ``step()``; 0 means "before the first
step" (an optimizer calls ``act_now()`` for it).  A schedule is one of

* ``Schedule.at([5, 100])``           — after those steps;
* ``Schedule.every(100, start=100)``  — after steps start, start + n, … (≤ ``stop`` if given);
* ``Schedule.when(predicate)``        — after every step t with predicate(t);
* ``Schedule.never()``.

``Schedule.of(x)`` accepts a Schedule, a collection of steps, a predicate or None, so optimizers take
any of them.  Schedules are pure: ``due(t)`` depends on t alone, so a resumed run repeats them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from symdisc.errors import InputError


@dataclass(frozen=True)
class Schedule:
    """``due(t)``: whether to act after optimizer step t."""

    steps: frozenset[int] = frozenset()
    period: int | None = None
    start: int = 0
    stop: int | None = None
    predicate: Callable[[int], bool] | None = None

    @classmethod
    def at(cls, steps: Collection[int]) -> Schedule:
        steps = frozenset(int(s) for s in steps)
        if any(s < 0 for s in steps):
            raise InputError(f"schedule steps must be ≥ 0, got {sorted(steps)}")
        return cls(steps=steps)

    @classmethod
    def every(cls, n: int, start: int | None = None, stop: int | None = None) -> Schedule:
        if n < 1:
            raise InputError(f"a schedule's period must be ≥ 1, got {n}")
        return cls(period=int(n), start=int(n if start is None else start), stop=stop)

    @classmethod
    def when(cls, predicate: Callable[[int], bool]) -> Schedule:
        return cls(predicate=predicate)

    @classmethod
    def never(cls) -> Schedule:
        return cls()

    @classmethod
    def of(cls, spec: Schedule | Collection[int] | Callable[[int], bool] | None) -> Schedule:
        if spec is None:
            return cls.never()
        if isinstance(spec, Schedule):
            return spec
        if callable(spec):
            return cls.when(spec)
        return cls.at(spec)

    def due(self, step: int) -> bool:
        if step in self.steps:
            return True
        if self.period is not None and step >= self.start and (self.stop is None or step <= self.stop):
            return (step - self.start) % self.period == 0
        return bool(self.predicate(step)) if self.predicate is not None else False

    def describe(self) -> dict:
        return {"at": sorted(self.steps), "every": self.period, "start": self.start if self.period else None,
                "stop": self.stop, "predicate": None if self.predicate is None else repr(self.predicate)}
