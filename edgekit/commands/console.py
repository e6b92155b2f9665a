"""The console commands print to: the terminal's width, or 160 columns when output is redirected."""

from rich.console import Console


def console() -> Console:
    probe = Console()
    return probe if probe.is_terminal else Console(width=160)
