"""The cloud's feature collector: an asyncio server that receives authenticated feature streams.

Each device connects, proves it holds its run's key (and the collector proves it back), then sends
DATA frames. The collector checks each frame against the run's registered expectation, stores it
durably (fsync) and only then acknowledges it; a resent frame that is already stored is
acknowledged again and not rewritten. Group commit: every frame that has arrived while the previous
group was being fsynced is appended and fsynced together, then acknowledged. When END arrives and
every frame is stored the run is sealed. A peer that breaks the protocol loses its own connection
only; the reason is logged and counted in ``Collector.rejections``. Memory is bounded: about
``max_group_bytes`` of frames queued per connection (at least one), plus the group being stored, and
a frame may be no larger than its run's feature.
"""

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from device_agents.protocol import (
    DATA, DEFAULT_MAX_PAYLOAD, END, SERVICE_STREAM, ConnectionClosed, End, ProtocolError, TensorFrame,
    check_key, decode_end, decode_tensor, encode_ack, encode_end_ack, encode_error, read_frame_async,
    server_handshake_async,
)

from .feature_store import Expectation, RunStore, StoredRun, UnsealedRunError, read_features, read_run
from .server_thread import ServerThread

__all__ = ["Collector", "CollectorThread", "StoredRun", "UnsealedRunError", "read_features", "read_run"]

log = logging.getLogger(__name__)


@dataclass
class _Run:
    run_id: str
    key: bytes
    store: RunStore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sealed: asyncio.Event = field(default_factory=asyncio.Event)
    writers: set = field(default_factory=set)  # its connections past the handshake


class _Refusal(NamedTuple):
    """A frame that broke the run's rules: answered with ERROR, then the connection closes."""
    error: ProtocolError


class Collector:
    """Receives feature streams into ``store_dir``; ``register_run`` before the device connects."""

    def __init__(self, store_dir, host="127.0.0.1", port=0, max_payload=DEFAULT_MAX_PAYLOAD,
                 handshake_timeout=10.0, idle_timeout=600.0, max_connections=256, max_group_bytes=8 << 20):
        self.store_dir = store_dir
        self.host = host
        self.port = port
        self.max_payload = max_payload
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_group_bytes = max_group_bytes
        self.rejections = Counter()
        self.duplicates = 0
        self._runs = {}
        self._connections = {}  # writer -> the task serving it
        self._server = None

    def register_run(self, run_id, key, expect):
        """Accept frames for ``run_id`` authenticated with ``key``; ``expect``: dtype, shape, layout, count.

        Registering a run already on disk (after a restart) resumes it where it stopped; registering
        one again while a device streams it raises RuntimeError.
        """
        expectation = Expectation.from_dict(expect)
        old = self._runs.get(run_id)
        if old is not None:
            if old.writers:
                raise RuntimeError(f"run {run_id} is streaming: it cannot be registered again now")
            old.store.close()  # no connection, so no store call in flight
        run = _Run(run_id, check_key(key), RunStore(self.store_dir, run_id, expectation))
        if run.store.sealed:
            run.sealed.set()
        self._runs[run_id] = run

    async def forget_run(self, run_id):
        """Drop the run: close its connections and its store (its files stay); unknown from now on."""
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        await self._disconnect(list(run.writers))
        async with run.lock:
            run.store.close()

    async def start(self):
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("collector listening on %s:%d", self.host, self.port)

    async def stop(self):
        """Stop listening, drop every connection and close the run files."""
        if self._server is not None:
            self._server.close()
            await self._disconnect(list(self._connections))
            await self._server.wait_closed()
            self._server = None
        for run in self._runs.values():
            async with run.lock:
                run.store.close()

    async def _disconnect(self, writers):
        """Close these connections and wait until their handlers have returned."""
        handlers = [self._connections[writer] for writer in writers]
        for writer in writers:
            writer.close()  # its handler sees the end of the stream and returns
        await asyncio.gather(*handlers, return_exceptions=True)

    async def wait_sealed(self, run_id, timeout):
        """True once the run is sealed, False if ``timeout`` seconds pass first."""
        try:
            await asyncio.wait_for(self._runs[run_id].sealed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _reject(self, reason, peer, detail):
        self.rejections[reason] += 1
        log.warning("rejected %s from %s: %s", reason, peer, detail)

    async def _handle(self, reader, writer):
        peer = writer.get_extra_info("peername")
        if len(self._connections) >= self.max_connections:
            self._reject("too-many-connections", peer, f"{self.max_connections} already open")
            writer.close()
            return
        self._connections[writer] = asyncio.current_task()
        run = None
        try:
            run, session = await asyncio.wait_for(self._handshake(reader, writer), self.handshake_timeout)
            if self._runs.get(run.run_id) is not run:  # forgotten or registered again meanwhile
                raise ProtocolError("unknown-run", f"run {run.run_id} was dropped during the handshake")
            run.writers.add(writer)
            await self._receive(run, session, reader, writer)
        except asyncio.TimeoutError:
            self._reject("timeout", peer, "no handshake or no frame in time")
        except ProtocolError as err:
            self._reject(err.reason, peer, err.detail)
        except (ConnectionClosed, ConnectionError):
            log.info("%s disconnected", peer)
        finally:
            self._connections.pop(writer, None)
            if run is not None:
                run.writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _handshake(self, reader, writer):
        def lookup(run_id):
            run = self._runs.get(run_id)
            return None if run is None else (run.key, run.store.contiguous, run)

        _, session, run = await server_handshake_async(reader, writer, SERVICE_STREAM, lookup)
        log.info("run %s connected from %s, next seq %d", run.run_id, writer.get_extra_info("peername"),
                 run.store.contiguous)
        return run, session

    async def _receive(self, run, session, reader, writer):
        """Group commit: while one group of frames is being stored, the next is read."""
        frame_bytes = run.store.expect.frame_bytes
        items = asyncio.Queue(max(1, self.max_group_bytes // max(1, frame_bytes)))
        max_payload = min(self.max_payload, frame_bytes)
        reading = asyncio.ensure_future(self._read(run, session, reader, items, max_payload))
        try:
            while True:
                group = [await items.get()]
                while not items.empty():
                    group.append(items.get_nowait())
                await self._answer(run, session, group, writer)
        finally:
            reading.cancel()

    async def _read(self, run, session, reader, items, max_payload):
        """Queue checked frames (TensorFrame, End); a failure is queued last, after what came before."""
        while True:
            try:
                frame = await asyncio.wait_for(read_frame_async(reader, session, max_payload), self.idle_timeout)
            except Exception as err:  # timeout, protocol error, disconnection: raised by _answer
                await items.put(err)
                return
            try:
                item = self._check(run, frame)
            except ProtocolError as err:
                await items.put(_Refusal(err))
                return
            await items.put(item)

    def _check(self, run, frame):
        if frame.ftype == DATA:
            return run.store.expect.check(run.run_id, decode_tensor(frame, DATA))
        if frame.ftype == END:
            return self._check_end(run, decode_end(frame))
        raise ProtocolError("unexpected-frame", f"frame type {frame.ftype} on a feature stream")

    async def _answer(self, run, session, group, writer):
        """Reply to ``group`` in order; each stretch of DATA frames in it is stored with one fsync."""
        replies, tensors = [], []
        try:
            for item in group:
                if isinstance(item, TensorFrame):
                    tensors.append(item)
                    continue
                replies += await self._store(run, session, tensors)
                tensors = []
                if isinstance(item, End):
                    replies.append(await self._on_end(run, session, item))
                elif isinstance(item, _Refusal):
                    replies.append(encode_error(session, item.error.reason))
                    raise item.error
                else:
                    raise item
            replies += await self._store(run, session, tensors)
        finally:
            writer.write(b"".join(replies))
        await writer.drain()

    @staticmethod
    def _check_end(run, end):
        if end.run_id != run.run_id:
            raise ProtocolError("run-mismatch", f"END for run {end.run_id} on run {run.run_id}'s session")
        count = run.store.expect.count
        if end.count != count:
            raise ProtocolError("count-mismatch", f"END says {end.count} frames, run expects {count}")
        return end

    async def _store(self, run, session, tensors):
        """Store the new frames among ``tensors`` with one fsync; return their ACKs.

        Frames now below the contiguous count share one ACK (it acknowledges every seq below it);
        any other frame gets its own.
        """
        if not tensors:
            return []
        async with run.lock:
            new = {}
            for tensor in tensors:
                if run.store.has(tensor.seq) or tensor.seq in new:
                    self.duplicates += 1
                else:
                    new[tensor.seq] = (tensor.seq, tensor.payload, tensor.start_ns, tensor.end_ns)
            if new:
                await asyncio.get_running_loop().run_in_executor(None, run.store.append, list(new.values()))
            contiguous = run.store.contiguous
        seqs = [tensor.seq for tensor in tensors]
        covered = [seq for seq in seqs if seq < contiguous]
        acked = [seq for seq in seqs if seq >= contiguous] + covered[-1:]
        return [encode_ack(session, run.run_id, seq, contiguous) for seq in acked]

    async def _on_end(self, run, session, end):
        expect = run.store.expect
        async with run.lock:
            if run.store.complete and not run.store.sealed:
                await asyncio.get_running_loop().run_in_executor(None, run.store.seal)
                log.info("run %s sealed with %d frames", run.run_id, expect.count)
            if run.store.sealed:
                run.sealed.set()
            stored, sealed = run.store.stored, run.store.sealed
        return encode_end_ack(session, run.run_id, expect.count, stored, sealed)


class CollectorThread(ServerThread):
    """A Collector running its own event loop in a background thread, for synchronous callers.

    ``with CollectorThread(store_dir) as collector: collector.register_run(...); ...wait_sealed(...)``
    """

    def __init__(self, store_dir, host="127.0.0.1", port=0, **options):
        super().__init__(Collector(store_dir, host, port, **options), name="edgekit-collector")

    @property
    def collector(self):
        return self.server

    def register_run(self, run_id, key, expect):
        async def register():
            self.collector.register_run(run_id, key, expect)
        self.call(register())

    def forget_run(self, run_id):
        self.call(self.collector.forget_run(run_id))

    def wait_sealed(self, run_id, timeout):
        return self.call(self.collector.wait_sealed(run_id, timeout))
