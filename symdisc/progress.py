"""Progress bars on stderr (rich); silent when disabled or when stderr is not a terminal (a transient
bar would leave a blank line in a log), so stdout stays clean for --json."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def _console(enabled: bool) -> Console | None:
    """The stderr console if a bar should be drawn there, else None."""
    console = Console(stderr=True)
    return console if enabled and console.is_terminal else None


def track(items: Iterable[T], description: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    console = _console(enabled)
    if console is None:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        yield from bar.track(items, total=total, description=description)


class LiveBar:
    """A bar with live fields (e.g. the loss terms); a no-op when disabled."""

    def __init__(self, total: int, description: str, enabled: bool = True, completed: int = 0):
        console = _console(enabled)
        self.enabled = console is not None
        if self.enabled:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("{task.fields[info]}"))
            self.progress = Progress(*columns, console=console, transient=True)
            self.task = self.progress.add_task(description, total=total, completed=completed, info="")

    def __enter__(self) -> LiveBar:
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)

    def advance(self, info: str = "", steps: int = 1) -> None:
        if self.enabled:
            self.progress.update(self.task, advance=steps, info=info)
