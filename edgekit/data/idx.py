"""The IDX file format of MNIST and Fashion-MNIST, gzipped or raw.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of dimensions),
one big-endian uint32 per dimension, then the values in big-endian C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from device_agents.fileio import atomic_write
from edgekit.errors import EdgekitError

DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (in native byte order); EdgekitError naming the file if it is not one."""
    path = Path(path)
    return parse_idx(read_bytes(path), path)


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz`` (e.g. to make a subset)."""
    codes = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in codes or array.ndim == 0:
        raise EdgekitError(f"cannot write a {array.dtype} array of {array.ndim} dimensions as IDX; "
                           f"accepted: {', '.join(str(d) for d in codes)} with >= 1 dimension")
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(native.newbyteorder(">")).tobytes()
    with atomic_write(path) as handle:
        handle.write(gzip.compress(data) if str(path).endswith(".gz") else data)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped (decided by its content, not its name)."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw.startswith(GZIP_MAGIC) else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise EdgekitError(f"{path}: cannot read ({exc})") from None


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] not in DTYPES or data[3] == 0:
        magic = data[:4].hex() or "empty file"
        codes = ", ".join(f"0x{code:02x}" for code in DTYPES)
        raise EdgekitError(f"{path}: not an IDX file (magic number {magic}; expected 0000XXNN with "
                           f"dtype code XX in {codes} and NN >= 1 dimensions)")
    dtype, ndim = DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise EdgekitError(f"{path}: truncated IDX header ({len(data)} bytes, expected {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        problem = "truncated" if len(data) - header < expected else "has trailing bytes"
        raise EdgekitError(f"{path}: {problem}: {len(data) - header} data bytes, expected {expected} "
                           f"for shape {shape}")
    values = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)
