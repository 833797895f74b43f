"""What every resumable symmetry-using method keeps (the optimizer base, Ridge Rider, DCS): a random generator
for everything it draws, a step count and an event log, saved and restored together so that a resumed run
repeats its draws and events bitwise."""

from __future__ import annotations

import torch


class Resumable:
    """Mixin: ``generator``, ``steps_done``, ``events`` and their state (``resumable_state`` / ``load_resumable``)."""

    def init_resumable(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator or torch.Generator().manual_seed(0)
        self.steps_done = 0
        self.events: list[dict] = []

    def resumable_state(self) -> dict:
        return {"steps_done": self.steps_done, "events": [dict(e) for e in self.events],
                "generator": self.generator.get_state()}

    def load_resumable(self, state: dict) -> None:
        self.steps_done, self.events = int(state["steps_done"]), [dict(e) for e in state["events"]]
        self.generator.set_state(state["generator"])
