"""Where a dataset's files are looked for: ``root`` if given, else the download cache, else system dirs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from edgekit.errors import EdgekitError
from edgekit.paths import cache_dir


def search_dirs(name: str, root=None, system_dirs: Iterable[str] = ()) -> list[Path]:
    """The directories to look in, in order: only ``root`` when given."""
    if root is not None:
        return [Path(root).expanduser()]
    return [cache_dir("datasets", name), *(Path(d) for d in system_dirs)]


def first_complete(dirs: Iterable[Path], complete: Callable[[Path], bool]) -> Path | None:
    return next((d for d in dirs if complete(d)), None)


def not_found(name: str, dirs: Iterable[Path], needed: str, hints: Iterable[str] = ()) -> EdgekitError:
    """The one-line error for a dataset whose files are in none of ``dirs``."""
    looked = ", ".join(str(d) for d in dirs)
    remedies = " or ".join([f"run `edgekit data fetch {name}`", *hints])
    return EdgekitError(f"{name}: {needed} not found in {looked}; {remedies}")
