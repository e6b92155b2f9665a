"""Where edgekit keeps its caches: ``$EDGEKIT_CACHE`` or ``~/.cache/edgekit``."""

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """A directory under the cache root, created on first use."""
    root = Path(os.environ.get("EDGEKIT_CACHE") or Path.home() / ".cache" / "edgekit")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
