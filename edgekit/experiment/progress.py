"""The sweep's live display: configurations done of total, the current step, time elapsed and left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class SweepProgress:
    """``with SweepProgress(total) as progress: progress.step("..."); progress.finished(key, ok)``."""

    def __init__(self, total: int, done: int = 0, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(), TextColumn("configurations"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("[dim]elapsed"), TimeElapsedColumn(), TextColumn("[dim]left"), TimeRemainingColumn(),
            TextColumn("{task.description}"), console=self.console, transient=False)
        self._task = self._progress.add_task("starting", total=total, completed=done)

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *exc):
        self._progress.stop()

    def step(self, text: str) -> None:
        """Show what the sweep is doing now (also as a log line when the output is not a terminal)."""
        self._progress.update(self._task, description=text)
        if not self.console.is_terminal:
            self.log(text)

    def log(self, text: str) -> None:
        """A line printed above the bar (kept in the scrollback)."""
        self._progress.console.log(text)

    def finished(self, key: str, ok: bool, error: str = "") -> None:
        self._progress.advance(self._task)
        if not ok:
            self.log(f"[red]failed[/red] {key}: {error}")
