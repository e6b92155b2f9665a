"""The console commands print to: the terminal's width, or 160 columns when output is redirected."""

from rich.console import Console


def console() -> Console:
    """Log lines carry their time, not the source line that printed them."""
    probe = Console(log_path=False)
    return probe if probe.is_terminal else Console(width=160, log_path=False)
