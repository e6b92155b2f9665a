"""Crash-safe file writing and hashing shared by the agent, the cloud side and the workstation.

Everything edgekit writes for others to read goes through ``atomic_write``: the data lands in a
temporary file next to the target, is fsynced, and is renamed over the target, so a reader sees
either the old file or the whole new one, never half of it.
"""

import contextlib
import hashlib
import json
import os
import tempfile


@contextlib.contextmanager
def staged_path(path, perms=None):
    """Yield a temporary path next to ``path``; it replaces ``path`` only if the block succeeds.

    For writers that want a file name (converters, savers); ``atomic_write`` wraps it for file
    objects. The staged file is fsynced before the rename and the directory after it.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + ".",
                               suffix=os.path.splitext(path)[1], dir=directory)
    try:
        if perms is not None:
            os.fchmod(fd, perms)
        os.close(fd)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


@contextlib.contextmanager
def atomic_write(path, mode="wb", perms=None):
    """Yield a file object whose contents replace ``path`` only if the block ends without error."""
    with staged_path(path, perms) as tmp:
        with open(tmp, mode) as handle:
            yield handle


def fsync_dir(directory):
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path, obj, perms=None):
    """Atomically write ``obj`` as indented JSON."""
    with atomic_write(path, "w", perms=perms) as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
