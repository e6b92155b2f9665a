"""Stream features from the agent's timed loop to the cloud collector without ever blocking it.

``put`` only queues a frame (in memory up to ``max_queue`` frames, then in an append-only spill
file) and wakes the background thread only once per batch of frames. That thread sends queued
frames in batches, keeps at most ``window`` of them unacknowledged, reconnects with capped
exponential back-off when the connection drops, and then resends exactly the frames the collector
has not acknowledged (the collector says in its WELCOME how many frames it holds contiguously from
0, and acknowledges an already-stored resend without storing it again).

    streamer = FeatureStreamer(host, port, key, run_id, meta, spill_dir)
    for index, image in enumerate(images):
        start = time.monotonic_ns(); features = runner.run(image); end = time.monotonic_ns()
        streamer.put(index, features, start, end)
    stats = streamer.close(timeout=60)   # the run is sealed, or AgentError
"""

import collections
import json
import os
import select
import socket
import struct
import threading
import time
from typing import NamedTuple

import numpy as np

from . import protocol as wire
from .errors import AgentError
from .fileio import fsync_dir

_SPILL_RECORD = struct.Struct("<QqqI")  # seq, start_ns, end_ns, payload length


class _Item(NamedTuple):
    seq: int
    start_ns: int
    end_ns: int
    payload: bytes


class _Outbox:
    """A FIFO of frames to send: in memory up to ``max_items``, then appended to a spill file.

    Once anything is spilled, later frames go to the spill file too until it is drained, so the
    order stays first in, first out and memory stays bounded whatever the cloud does. ``push``
    wakes a waiting sender only once ``wake_at`` frames are queued, and never waits on the disk:
    the sender fsyncs spilled records in batches (``sync``) and pops a spilled frame only once it
    is durable, so every frame counted in ``spilled`` survives a crash of the agent.
    """

    def __init__(self, max_items, spill_dir, name, wake_at):
        self._max = max_items
        self._spill_dir = spill_dir
        self._name = name
        self._wake_at = wake_at
        self._memory = collections.deque()
        self._spill_writer = None
        self._spill_reader = None
        self._spill_path = None
        self._spill_pending = 0
        self._spill_unsynced = 0  # the newest of the pending records, not fsynced yet
        self._spill_new = False  # created, its directory entry not fsynced yet
        self._spill_files = 0
        self._closed = False
        self.spilled = 0
        self.cond = threading.Condition()

    def push(self, item):
        with self.cond:
            if self._closed:
                return
            if self._spill_pending == 0 and len(self._memory) < self._max:
                self._memory.append(item)
            else:
                self._spill(item)
            if len(self._memory) + self._spill_pending >= self._wake_at:
                self.cond.notify()

    def _spill(self, item):
        if self._spill_writer is None:
            os.makedirs(self._spill_dir, exist_ok=True)
            self._spill_files += 1
            self._spill_path = os.path.join(self._spill_dir, "{}.spill{}".format(self._name, self._spill_files))
            self._spill_writer = open(self._spill_path, "wb")  # a new run starts its spill files afresh
            self._spill_reader = open(self._spill_path, "rb")
            self._spill_new = True
        self._spill_writer.write(_SPILL_RECORD.pack(item.seq, item.start_ns, item.end_ns, len(item.payload)))
        self._spill_writer.write(item.payload)
        self._spill_writer.flush()
        self._spill_pending += 1
        self._spill_unsynced += 1

    def sync(self):
        """fsync every spill record written since the last call (one fsync, ``push`` not held up)."""
        with self.cond:
            count, writer = self._spill_unsynced, self._spill_writer
            if not count:
                return
            fd = os.dup(writer.fileno())  # stays valid if the file is discarded meanwhile
            new_file, self._spill_new = self._spill_new, False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if new_file:
            fsync_dir(self._spill_dir)  # the file's name, too, survives a crash
        with self.cond:
            if self._spill_writer is writer:
                self._spill_unsynced -= count
                self.spilled += count

    def pop(self):
        """The oldest frame, or None if there is none, the oldest is spilled but not yet synced, or closed."""
        with self.cond:
            if self._closed:
                return None
            if self._memory:
                return self._memory.popleft()
            if self._spill_pending == self._spill_unsynced:
                return None
            seq, start_ns, end_ns, length = _SPILL_RECORD.unpack(self._spill_reader.read(_SPILL_RECORD.size))
            item = _Item(seq, start_ns, end_ns, self._spill_reader.read(length))
            self._spill_pending -= 1
            if not self._spill_pending:
                self.discard_spill()
            return item

    def __len__(self):
        with self.cond:
            return len(self._memory) + self._spill_pending

    def discard_spill(self):
        """Close and delete the current spill file (drained, or abandoned at close)."""
        with self.cond:
            if self._spill_writer is None:
                return
            self._spill_writer.close()
            self._spill_reader.close()
            os.unlink(self._spill_path)
            self._spill_writer = self._spill_reader = self._spill_path = None
            self._spill_pending = self._spill_unsynced = 0

    def close(self):
        """Refuse every later push and pop, and delete the spill file (the frames are abandoned)."""
        with self.cond:
            self._closed = True
            self.discard_spill()


class FeatureStreamer:
    """The agent's feature sink when the run spec names a cloud.

    ``meta``: {"dtype": "float32", "shape": [per-feature shape], "layout": "NCHW", "count": N}.
    ``put`` accepts an array of exactly ``shape`` or with an extra leading batch of 1.
    """

    def __init__(self, host, port, key, run_id, meta, spill_dir, max_queue=256, window=256,
                 backoff_initial=0.05, backoff_max=2.0, connect_timeout=5.0, io_timeout=30.0, linger=0.05):
        wire.run_id_bytes(run_id)
        self._key = wire.check_key(key)
        self._address = (host, port)
        self._run_id = run_id
        self._dtype = np.dtype(meta["dtype"])
        self._shape = tuple(int(d) for d in meta["shape"])
        self._layout = meta.get("layout", "NCHW")
        self._count = int(meta["count"])
        if self._dtype.name not in wire.DTYPES or self._layout not in wire.LAYOUTS:
            raise ValueError("meta dtype/layout {}/{} cannot travel".format(self._dtype, self._layout))
        self._header_dtype = self._dtype.name
        self._window = window
        self._batch = max(1, window // 2)
        self._linger = linger
        self._backoff = (backoff_initial, backoff_max)
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._outbox = _Outbox(max_queue, spill_dir, run_id, self._batch)
        self._inflight = collections.OrderedDict()  # seq -> _Item, sent and not yet acknowledged
        self._ever_sent = set()
        self._acked = set()
        self._puts = 0
        self._closing = False
        self._abort = False
        self._done = False
        self._fatal = None
        self._last_error = None
        self._stats = {"sent": 0, "acked": 0, "resent": 0, "spilled": 0, "reconnects": 0}
        self._thread = threading.Thread(target=self._run, name="edgekit-streamer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the timed loop's side

    def put(self, index, features, start_ns, end_ns):
        """Queue one feature; never waits for the network."""
        if self._closing:
            raise RuntimeError("put after close")
        if not 0 <= index < self._count:
            raise ValueError("index {} outside the run's {} frames".format(index, self._count))
        array = np.asarray(features)
        if array.shape == (1,) + self._shape:
            array = array.reshape(self._shape)
        if array.shape != self._shape or array.dtype != self._dtype:
            raise ValueError("feature {} {} does not match the run's {} {}".format(
                array.dtype, array.shape, self._dtype, self._shape))
        self._puts += 1
        if self._fatal is None:
            self._outbox.push(_Item(index, int(start_ns), int(end_ns), wire.tensor_payload(array)))

    def close(self, timeout):
        """Send END and wait until the collector has sealed the run; return the stats.

        Stats: {"sent", "acked", "resent", "spilled", "reconnects"}. If the run is not sealed within
        ``timeout`` seconds, or the collector refused it, raises AgentError (``.stats`` attached).
        """
        self._closing = True
        self._wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.abort()
        self._outbox.close()
        stats = dict(self._stats, spilled=self._outbox.spilled)
        if not self._done:
            reason = self._fatal or "not sealed within {}s, {} frames unacknowledged (last error: {})".format(
                timeout, len(self._inflight) + len(self._outbox), self._last_error)
            error = AgentError("feature stream to {}:{}: {}; {}".format(
                self._address[0], self._address[1], reason, json.dumps(stats, sort_keys=True)))
            error.stats = stats
            raise error
        return stats

    def abort(self):
        """Stop sending and drop whatever was not delivered (spill files included)."""
        self._closing = self._abort = True
        self._wake()
        self._thread.join(self._connect_timeout + 1.0)
        self._outbox.close()  # the thread may still be sending (up to io_timeout): it gets nothing more

    def _wake(self):
        with self._outbox.cond:
            self._outbox.cond.notify()

    # ------------------------------------------------------------ the sender thread

    def _run(self):
        delay = self._backoff[0]
        first = True
        while not (self._abort or self._done or self._fatal):
            try:
                sock, session, welcome, recv_exact = self._connect()
            except (OSError, wire.ProtocolError) as err:
                self._failed(err, authenticated=False)
                self._sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            if not first:
                self._stats["reconnects"] += 1
            first = False
            try:
                self._pump(sock, session, welcome, recv_exact)
            except (OSError, wire.ProtocolError) as err:
                self._failed(err, authenticated=True)
            finally:
                sock.close()

    def _failed(self, err, authenticated):
        """Note why the connection failed; give up for good only when retrying can never succeed.

        An ERROR on the session comes from the collector itself and is final. A REJECT during the
        handshake is not authenticated and may be transient (a restarted collector that has not
        registered the run again yet answers ``unknown-run``): only ``bad-auth`` is final.
        """
        self._last_error = "{}: {}".format(type(err).__name__, err)
        if isinstance(err, wire.ProtocolError) and err.reason == "refused" and (
                authenticated or err.detail == "bad-auth"):
            self._fatal = "the collector refused the stream: {}".format(err.detail)

    def _sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while not self._abort and time.monotonic() < deadline:
            self._outbox.sync()
            time.sleep(min(0.05, seconds))

    def _connect(self):
        sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._io_timeout)
            session, welcome, recv_exact = wire.client_handshake(sock, self._key, wire.SERVICE_STREAM, self._run_id)
        except BaseException:
            sock.close()
            raise
        return sock, session, welcome, recv_exact

    def _pump(self, sock, session, welcome, recv_exact):
        """Send, resend and collect acknowledgements on one connection until the run is sealed.

        Frames go out in batches (one ``sendall`` each): ``window // 2`` of them, or whatever is
        queued once the sender has nothing in flight and ``linger`` seconds passed, or once closing.
        """
        for seq in [s for s in self._inflight if s < welcome.next_seq]:
            self._acknowledge(seq)
        self._send(sock, session, list(self._inflight.values()))
        end_sent = False
        last_heard = time.monotonic()
        while not self._abort:
            self._outbox.sync()
            if self._due():
                self._send(sock, session, self._take(welcome.next_seq))
            if self._closing and not end_sent and not self._inflight and not len(self._outbox):
                sock.sendall(wire.encode_end(session, self._run_id, self._puts))
                end_sent = True
            if not self._inflight and not end_sent:
                with self._outbox.cond:
                    if not self._due():
                        self._outbox.cond.wait(self._linger)
                self._send(sock, session, self._take(welcome.next_seq))
                last_heard = time.monotonic()
                continue
            if select.select([sock], [], [], 0.05)[0]:
                last_heard = time.monotonic()
                while True:  # every acknowledgement already here
                    if self._on_frame(wire.read_frame(recv_exact, session)):
                        return
                    if not select.select([sock], [], [], 0)[0]:
                        break
            elif time.monotonic() - last_heard > self._io_timeout:
                raise TimeoutError("no acknowledgement for {}s".format(self._io_timeout))

    def _due(self):
        """A batch can go: enough frames queued and room for them, or any at all when closing."""
        ready = min(len(self._outbox), self._window - len(self._inflight))
        return ready >= self._batch or (ready > 0 and self._closing)

    def _take(self, next_seq):
        """Move queued frames into the window; those the collector already holds are acknowledged."""
        items = []
        while len(self._inflight) < self._window:
            item = self._outbox.pop()
            if item is None:
                break
            if item.seq < next_seq or item.seq in self._acked:
                self._acknowledge(item.seq)
                continue
            self._inflight[item.seq] = item
            items.append(item)
        return items

    def _send(self, sock, session, items):
        if not items:
            return
        frames = []
        for item in items:
            header = wire.encode_tensor_header(self._run_id, item.seq, self._header_dtype, self._layout,
                                               self._shape, item.start_ns, item.end_ns)
            frames.append(session.seal(wire.DATA, header, item.payload))
        sock.sendall(b"".join(frames))
        for item in items:
            if item.seq in self._ever_sent:
                self._stats["resent"] += 1
            else:
                self._ever_sent.add(item.seq)
                self._stats["sent"] += 1

    def _acknowledge(self, seq):
        self._inflight.pop(seq, None)
        if seq not in self._acked:
            self._acked.add(seq)
            self._stats["acked"] += 1

    def _on_frame(self, frame):
        """Handle ACK / END_ACK / ERROR; True when the run is sealed."""
        frame = wire.expect(frame, wire.ACK, wire.END_ACK)
        if frame.ftype == wire.ACK:
            ack = wire.decode_ack(frame)
            self._acknowledge(ack.seq)
            for seq in [s for s in self._inflight if s < ack.contiguous]:
                self._acknowledge(seq)
            return False
        end = wire.decode_end_ack(frame)
        if not end.sealed:
            self._fatal = "the collector holds {} of {} frames after END".format(end.stored, end.count)
            return True
        self._done = True
        return True
