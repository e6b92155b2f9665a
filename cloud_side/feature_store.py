"""Durable storage of one run's features: an append-only frame log, sealed by an atomic rename.

Layout under the store directory::

    <run_id>.partial/meta.json   the expectation (dtype, shape, layout, count), written at registration
    <run_id>.partial/frames.log  records: header (seq, length, start_ns, end_ns, crc32) + raw payload
    <run_id>/index.bin           written when sealing: per seq (payload offset, length, start_ns, end_ns)

A frame is acknowledged only after its record is fsynced (frames that arrive together share one
fsync), so an acknowledged frame survives a crash;
a torn record at the end of the log (a crash mid-write) is cut off when the run is opened again.
A run is sealed (``<run_id>.partial`` renamed to ``<run_id>``) only when every frame is present.
"""

import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from device_agents.fileio import atomic_write, fsync_dir, write_json
from device_agents.protocol import DTYPES, LAYOUTS, MAX_NDIM, ProtocolError, run_id_bytes

_RECORD = struct.Struct("<QQqqI")  # seq, payload length, start_ns, end_ns, crc32(payload)
_INDEX_DTYPE = np.dtype([("offset", "<u8"), ("length", "<u8"), ("start_ns", "<i8"), ("end_ns", "<i8")])
LOG_NAME = "frames.log"
INDEX_NAME = "index.bin"
META_NAME = "meta.json"


class UnsealedRunError(RuntimeError):
    """The run exists but not every frame has arrived (or its END has not), so it is not sealed."""


@dataclass(frozen=True)
class Expectation:
    """What every frame of a run must look like."""
    dtype: str
    shape: tuple
    layout: str
    count: int

    @classmethod
    def from_dict(cls, expect):
        dtype, layout, count = expect.get("dtype"), expect.get("layout", "NCHW"), expect.get("count")
        shape = expect.get("shape")
        if dtype not in DTYPES:
            raise ValueError(f"expect dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        if layout not in LAYOUTS:
            raise ValueError(f"expect layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"expect count must be a non-negative int, got {count!r}")
        if (not isinstance(shape, (list, tuple)) or len(shape) > MAX_NDIM
                or not all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"expect shape must be at most {MAX_NDIM} non-negative ints, got {shape!r}")
        return cls(dtype, tuple(shape), layout, count)

    def as_dict(self):
        return {"dtype": self.dtype, "shape": list(self.shape), "layout": self.layout, "count": self.count}

    @property
    def frame_bytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def check(self, run_id, tensor, seq_bound=True):
        """``tensor`` (a decoded TensorFrame on run ``run_id``'s session) if it is one of the run's
        frames (``seq_bound``: its seq below the count); ProtocolError naming what differs otherwise."""
        if tensor.run_id != run_id:
            raise ProtocolError("run-mismatch", f"frame for run {tensor.run_id} on run {run_id}'s session")
        if tensor.dtype != self.dtype:
            raise ProtocolError("dtype-mismatch", f"{tensor.dtype}, run {run_id} expects {self.dtype}")
        if tensor.shape != self.shape:
            raise ProtocolError("shape-mismatch", f"{tensor.shape}, run {run_id} expects {self.shape}")
        if tensor.layout != self.layout:
            raise ProtocolError("layout-mismatch", f"{tensor.layout}, run {run_id} expects {self.layout}")
        if seq_bound and tensor.seq >= self.count:
            raise ProtocolError("seq-out-of-range", f"seq {tensor.seq} in a run of {self.count} frames")
        return tensor


class RunStore:
    """One run's frames on disk; ``append`` is durable when it returns. Not thread-safe."""

    def __init__(self, store_dir, run_id, expect):
        run_id_bytes(run_id)  # a checked run id is also a safe file name
        self.run_id = run_id
        self.expect = expect
        self.sealed_dir = os.path.join(store_dir, run_id)
        self.partial_dir = self.sealed_dir + ".partial"
        count = expect.count
        self._index = np.zeros(count, dtype=_INDEX_DTYPE)
        self._present = np.zeros(count, dtype=bool)
        self.stored = 0
        self.contiguous = 0
        self._log = None
        if os.path.isdir(self.sealed_dir):
            self._check_meta(self.sealed_dir)
            self._present[:] = True
            self.stored = self.contiguous = count
            self.sealed = True
            return
        self.sealed = False
        os.makedirs(self.partial_dir, exist_ok=True)
        if os.path.exists(os.path.join(self.partial_dir, META_NAME)):
            self._check_meta(self.partial_dir)
        else:
            write_json(os.path.join(self.partial_dir, META_NAME), expect.as_dict())
        self._recover()

    def _check_meta(self, directory):
        with open(os.path.join(directory, META_NAME)) as handle:
            stored = Expectation.from_dict(json.load(handle))
        if stored != self.expect:
            raise ValueError(f"run {self.run_id} is already stored with {stored.as_dict()}, "
                             f"not {self.expect.as_dict()}")

    def _recover(self):
        """Load the index from the log and cut off a torn or corrupt tail."""
        path = os.path.join(self.partial_dir, LOG_NAME)
        good_end = 0
        if os.path.exists(path):
            with open(path, "rb") as log:
                while True:
                    raw = log.read(_RECORD.size)
                    if len(raw) < _RECORD.size:
                        break
                    seq, length, start_ns, end_ns, crc = _RECORD.unpack(raw)
                    if seq >= self.expect.count or length != self.expect.frame_bytes:
                        break
                    payload = log.read(length)
                    if len(payload) < length or zlib.crc32(payload) != crc:
                        break
                    if not self._present[seq]:
                        self._note(seq, good_end + _RECORD.size, length, start_ns, end_ns)
                    good_end = log.tell()
        self._log = open(path, "ab")
        self._log.truncate(good_end)
        self._log.seek(good_end)

    def _note(self, seq, offset, length, start_ns, end_ns):
        self._index[seq] = (offset, length, start_ns, end_ns)
        self._present[seq] = True
        self.stored += 1
        while self.contiguous < self.expect.count and self._present[self.contiguous]:
            self.contiguous += 1

    def has(self, seq):
        return bool(self._present[seq])

    @property
    def complete(self):
        return self.stored == self.expect.count

    def append(self, frames):
        """Write frames (seq, payload, start_ns, end_ns) and fsync them once (a group commit).

        The caller checks each is new, distinct and matches the expectation.
        """
        offsets = []
        for seq, payload, start_ns, end_ns in frames:
            self._log.write(_RECORD.pack(seq, len(payload), start_ns, end_ns, zlib.crc32(payload)))
            offsets.append(self._log.tell())
            self._log.write(payload)
        self._log.flush()
        os.fsync(self._log.fileno())
        for offset, (seq, payload, start_ns, end_ns) in zip(offsets, frames):
            self._note(seq, offset, len(payload), start_ns, end_ns)

    def seal(self):
        """Write the index and rename the run into place; only when every frame is present."""
        if self.sealed:
            return
        if not self.complete:
            raise UnsealedRunError(f"run {self.run_id}: {self.stored} of {self.expect.count} frames stored")
        self.close()
        with atomic_write(os.path.join(self.partial_dir, INDEX_NAME)) as handle:
            handle.write(self._index.tobytes())
        os.rename(self.partial_dir, self.sealed_dir)
        fsync_dir(os.path.dirname(os.path.abspath(self.sealed_dir)))
        self.sealed = True

    def close(self):
        if self._log is not None:
            self._log.close()
            self._log = None


class StoredRun(NamedTuple):
    features: np.ndarray  # [count, *shape], in seq order
    start_ns: np.ndarray  # int64 [count]
    end_ns: np.ndarray
    expect: Expectation


def read_run(store_dir, run_id):
    """Features and timestamps of a sealed run; UnsealedRunError if it is not sealed yet."""
    run_id_bytes(run_id)
    sealed_dir = os.path.join(store_dir, run_id)
    if not os.path.isdir(sealed_dir):
        if os.path.isdir(sealed_dir + ".partial"):
            raise UnsealedRunError(f"run {run_id} is not sealed: frames are missing or its END has not arrived")
        raise FileNotFoundError(f"no run {run_id} in {store_dir}")
    with open(os.path.join(sealed_dir, META_NAME)) as handle:
        expect = Expectation.from_dict(json.load(handle))
    index = np.fromfile(os.path.join(sealed_dir, INDEX_NAME), dtype=_INDEX_DTYPE)
    if len(index) != expect.count or np.any(index["length"] != expect.frame_bytes):
        raise ValueError(f"run {run_id}: index does not match {expect.as_dict()}")
    features = np.empty((expect.count,) + expect.shape, dtype=np.dtype(expect.dtype).newbyteorder("<"))
    flat = memoryview(features.reshape(-1).view(np.uint8))
    size = expect.frame_bytes
    with open(os.path.join(sealed_dir, LOG_NAME), "rb") as log:
        for seq, offset in enumerate(index["offset"]):
            log.seek(int(offset))
            if log.readinto(flat[seq * size:(seq + 1) * size]) != size:
                raise ValueError(f"run {run_id}: frame {seq} is truncated")
    return StoredRun(features, index["start_ns"].copy(), index["end_ns"].copy(), expect)


def read_features(store_dir, run_id):
    """The features of a sealed run, stacked in seq order: [count, *shape]."""
    return read_run(store_dir, run_id).features
