"""Content-addressed upload of a run directory to a device.

Every file is stored once on the device as ``WORKDIR/blobs/<sha256>`` (uploaded to a temporary
name, then renamed); a run directory ``WORKDIR/runs/<name>`` (mode 0700) holds symlinks into
the blobs. Unchanged files are never sent twice. Everything here is SFTP: one remote command costs
a process start on the board, an SFTP request only a round trip.
"""

import os
from pathlib import Path, PurePosixPath

import device_agents
from device_agents.fileio import sha256_file
from edgekit.devices.connection import Connection, quote
from edgekit.devices.probe import PythonFacts
from edgekit.errors import EdgekitError

AGENT_PACKAGE = Path(device_agents.__file__).parent
DISK_MARGIN = 16 << 20  # left free on the device besides what is sent


def agent_files() -> dict[str, Path]:
    """The agent package as run-directory paths (``device_agents/...``) -> local files."""
    return {
        str(PurePosixPath("device_agents", path.relative_to(AGENT_PACKAGE).as_posix())): path
        for path in sorted(AGENT_PACKAGE.rglob("*.py"))
    }


def stage(conn: Connection, facts: PythonFacts, files: dict[str, Path], run_name: str) -> str:
    """Send the blobs the device lacks and create the run directory; returns its remote path."""
    blobs, run_dir = f"{facts.workdir}/blobs", f"{facts.workdir}/runs/{run_name}"
    digests = {name: sha256_file(path) for name, path in files.items()}
    missing = {digest: files[name] for name, digest in digests.items() if digest not in facts.blobs}
    need = sum(os.path.getsize(path) for path in missing.values())
    if need + DISK_MARGIN > facts.free_bytes:
        raise EdgekitError(f"device {conn.device!r}: not enough free disk in {facts.workdir}: {_mib(need)} to send "
                           f"plus {_mib(DISK_MARGIN)} margin, {_mib(facts.free_bytes)} free")
    for digest, path in missing.items():
        conn.put(path, f"{blobs}/{digest}")
    conn.mkdir(run_dir, 0o700)
    try:
        for parent in sorted({str(PurePosixPath(name).parent) for name in digests} - {"."}):
            conn.mkdir(f"{run_dir}/{parent}", 0o700)
        for name, digest in digests.items():
            depth = len(PurePosixPath(name).parts) - 1
            conn.symlink("../" * (depth + 2) + f"blobs/{digest}", f"{run_dir}/{name}")
    except BaseException:
        remove_dir(conn, run_dir)
        raise
    return run_dir


def remove_dir(conn: Connection, path: str):
    conn.run(f"rm -rf -- {quote(path)}", check=False)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
