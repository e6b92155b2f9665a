"""Converters write files themselves, so an artifact is staged under a temporary name in its
directory, checked there, and renamed into place only when the check passed."""

import contextlib
import os
import tempfile
from pathlib import Path

from device_agents.fileio import fsync_dir


@contextlib.contextmanager
def staged_path(final: Path):
    """Yield a temporary path next to ``final``; rename it to ``final`` if the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{final.name}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(final.parent)
