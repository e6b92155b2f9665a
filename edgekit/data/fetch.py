"""Download MNIST, Fashion-MNIST and CIFAR-10 into the edgekit cache, checked and resumable.

Each file is downloaded to ``FILE.part``; a later run resumes it with an HTTP Range request. Only
a file whose checksum matches the published one is renamed to its final name, so an interrupted
or corrupted download never looks like a finished one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from device_agents.fileio import fsync_dir
from edgekit.errors import EdgekitError, unknown
from edgekit.paths import cache_dir

MIRROR_ENV = "EDGEKIT_DATA_MIRROR"
CHUNK = 1 << 16
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name under the base URL and its checksum as ``"md5:HEX"`` or ``"sha256:HEX"``."""

    name: str
    checksum: str
    unpacks_to: str | None = None  # a .tar.gz archive: the folder it holds, which replaces the archive


@dataclass(frozen=True)
class Source:
    base_url: str
    files: tuple[RemoteFile, ...]


SOURCES = {
    "mnist": Source("https://ossci-datasets.s3.amazonaws.com/mnist/", (
        RemoteFile("train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        RemoteFile("train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c"),
    )),
    "fashion-mnist": Source("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
        RemoteFile("train-images-idx3-ubyte.gz", "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", "md5:25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "md5:bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "md5:bb300cfdad3c16e7a12a480ee83cd310"),
    )),
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/", (
        RemoteFile("cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a",
                   unpacks_to="cifar-10-batches-py"),
    )),
}


def fetch(name: str, dest=None, mirror: str | None = None, sources: dict[str, Source] = SOURCES,
          progress: bool = True, timeout: float = TIMEOUT_S) -> Path:
    """Download dataset ``name`` into ``dest`` (default: the edgekit cache) and return that folder.

    ``mirror`` (else ``$EDGEKIT_DATA_MIRROR``) replaces the base URL; ``sources`` is the table of
    files and checksums, injectable so tests can serve their own small files.
    """
    if name not in sources:
        raise unknown("dataset to fetch", name, sources)
    source = sources[name]
    directory = Path(dest).expanduser() if dest is not None else cache_dir("datasets", name)
    directory.mkdir(parents=True, exist_ok=True)
    base_url = mirror or os.environ.get(MIRROR_ENV) or source.base_url
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        for remote in source.files:
            target = directory / remote.name
            if remote.unpacks_to and (directory / remote.unpacks_to).is_dir():
                continue
            if not (target.is_file() and checksum_matches(target, remote.checksum)):
                download(base_url.rstrip("/") + "/" + remote.name, target, remote.checksum, timeout, bar)
            if remote.unpacks_to:
                extract_tar(target, directory, remote.unpacks_to)
                target.unlink()
    return directory


def checksum_matches(path: Path, checksum: str) -> bool:
    algorithm, expected = checksum.split(":", 1)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == expected.lower()


def download(url: str, target: Path, checksum: str, timeout: float, bar) -> None:
    """Fetch ``url`` into ``target.part`` (resuming it), check it, then rename it to ``target``."""
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            resumed = response.status == 206
            if resumed and range_start(response) != offset:
                raise EdgekitError(f"{url}: the server sent bytes from {range_start(response)}, "
                                   f"not from {offset} as asked; delete {part} and run again")
            # A server that ignores Range sends the whole file with 200: start the .part again.
            save_body(response, part, offset if resumed else 0, bar.add_task(target.name), bar)
    except urllib.error.HTTPError as exc:
        if not (exc.code == 416 and offset):  # 416 on a resume: the .part is already whole
            raise EdgekitError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise EdgekitError(f"download of {url} interrupted ({exc}); {part} is kept: run the same "
                           f"command again to resume") from None
    if not checksum_matches(part, checksum):
        part.unlink()
        raise EdgekitError(f"{url}: checksum mismatch (expected {checksum}); deleted {part}, "
                           f"check the mirror and run the command again")
    os.replace(part, target)
    fsync_dir(target.parent)


def save_body(response, part: Path, offset: int, task, bar) -> None:
    """Write the response body to ``part`` from byte ``offset`` on; IncompleteRead if it ends early."""
    length = int(response.headers.get("Content-Length", -1))
    bar.update(task, total=offset + length if length >= 0 else None, completed=offset)
    received = 0
    with open(part, "ab" if offset else "wb") as out:
        for block in iter(lambda: response.read(CHUNK), b""):
            out.write(block)
            received += len(block)
            bar.advance(task, len(block))
    if 0 <= length != received:
        raise http.client.IncompleteRead(b"", length - received)


def range_start(response) -> int | None:
    """The first byte offset of a 206 response's ``Content-Range: bytes START-END/TOTAL``."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def extract_tar(archive: Path, directory: Path, folder: str) -> None:
    """Unpack ``folder`` from ``archive`` into ``directory``, refusing members that point outside it.

    Members land in a staging folder first, so a refused or interrupted extraction leaves nothing.
    """
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=directory)).resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                extract_member(tar, member, staging, archive)
        if not (staging / folder).is_dir():
            raise EdgekitError(f"{archive}: expected the archive to hold {folder}/")
        os.replace(staging / folder, directory / folder)
        fsync_dir(directory)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise EdgekitError(f"{archive}: cannot unpack ({exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, archive: Path) -> None:
    target = (staging / member.name).resolve()
    if not target.is_relative_to(staging) or not (member.isfile() or member.isdir()):
        raise EdgekitError(f"{archive}: refusing member {member.name!r} (only plain files and folders "
                           f"inside the archive are unpacked)")
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tar.extractfile(member) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
