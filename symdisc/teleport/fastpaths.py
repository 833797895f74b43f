"""The teleport's fast paths (issue 14), and a switch that turns them all off to measure them against the paths
they replaced, in the same run (benchmarks/teleport_overhead.py) and to check that they change no teleport
(tests/test_fast_fields.py):

* ``DataDependentGL`` / ``ProductSymmetry.closed_form_field``: fields and their adjoints in closed form (through
  g = I + M, the explicit pinv field, a product's factors side by side) instead of a jvp through ``expm``;
* ``routine.PULLBACK``: ∇_c J = Ξᵀ∇_θJ by ``Symmetry.linearize`` instead of reverse mode through the move;
* ``routine.FUSE_OBJECTIVE``: J and ∇_θJ in one pass where the next step needs both;
* ``routine.SKIP_UNUSED_DRIFT`` / ``guard.SKIP_WHEN_OFF``: no loss drift or loss evaluation a guard that is off
  cannot use;
* ``objectives.AUTOGRAD``: gradients by plain autograd instead of ``torch.func.grad_and_value``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from symdisc.symmetry import DataDependentGL, ProductSymmetry
from symdisc.teleport import guard, objectives, routine

SWITCHES = ((DataDependentGL, "closed_form_field"), (ProductSymmetry, "closed_form_field"),
            (routine, "PULLBACK"), (routine, "FUSE_OBJECTIVE"), (routine, "SKIP_UNUSED_DRIFT"),
            (guard, "SKIP_WHEN_OFF"), (objectives, "AUTOGRAD"))


@contextmanager
def disabled() -> Iterator[None]:
    """Every fast path off inside the block (process-wide; not thread-safe), restored on exit."""
    saved = [getattr(owner, name) for owner, name in SWITCHES]
    for owner, name in SWITCHES:
        setattr(owner, name, False)
    try:
        yield
    finally:
        for (owner, name), value in zip(SWITCHES, saved, strict=True):
            setattr(owner, name, value)
