"""The cloud's side of online collaborative inference: answer each feature with the cloud part's prediction.

A device connects (service "online", the same mutual handshake as the feature stream, keyed by its
run), measures the link, then sends one feature at a time and waits for the answer:

- PING -> PONG at once (round-trip time);
- DATA (a feature-sized frame) -> ACK at once, nothing stored (transfer time, upload goodput);
- INFER (the feature of image ``seq``) -> ANSWER (top-1 class, the cloud part's time in ns measured
  around its runtime call, and the server's time from the frame read to the answer).

The cloud part (the exported ONNX fp32 file of the split) runs in onnxruntime in a thread pool sized
to the cores, never on the event loop that accepts and reads connections; onnxruntime releases the
GIL while it runs. A connection is served one frame at a time, so it holds at most one frame (no
larger than its run's feature); connections are bounded (``max_connections``), an unauthenticated
one has ``handshake_timeout`` seconds to finish the handshake and an authenticated one
``idle_timeout`` seconds between frames. A peer that breaks the protocol loses its own connection,
with the reason logged and counted in ``rejections`` (the collector's reason codes).

Features are kept (``keep_features``) only for runs whose simulated defences are applied here after
the run (``top1`` on the defended features), bounded by ``max_kept_bytes`` over all runs.
"""

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from device_agents.protocol import (
    ANSWER, DATA, INFER, PING, PONG, SERVICE_ONLINE, ConnectionClosed, ProtocolError, check_key, decode_ping,
    decode_tensor, encode_ack, encode_answer, encode_error, encode_ping, read_frame_async, server_handshake_async,
)
from device_agents.runtime import load_runner

from .feature_store import Expectation
from .server_thread import ServerThread

__all__ = ["OnlineServer", "OnlineServerThread", "OnlineRunLog", "top1"]

log = logging.getLogger(__name__)


@dataclass
class OnlineRunLog:
    """What the server saw of a run: answers sent, the features kept (row ``i``: image ``i``), and
    the run's cloud part (``top1(log.runner, features)`` answers as the run was answered)."""

    answers: int
    features: np.ndarray | None
    received: np.ndarray | None  # bool per image: a feature of it was kept
    runner: object


@dataclass
class _Run:
    run_id: str
    key: bytes
    expect: Expectation
    runner: object
    features: np.ndarray | None
    received: np.ndarray | None
    answers: int = 0
    writers: set = field(default_factory=set)


class OnlineServer:
    """Answers online inferences; ``register_run`` before the device connects, ``finish_run`` after."""

    def __init__(self, host="127.0.0.1", port=0, workers=None, handshake_timeout=5.0, idle_timeout=300.0,
                 max_connections=64, max_kept_bytes=1 << 30, runtime_threads=1):
        self.host = host
        self.port = port
        self.workers = workers or os.cpu_count() or 1
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_kept_bytes = max_kept_bytes
        self.runtime_threads = runtime_threads
        self.rejections = Counter()
        self._runs = {}
        self._connections = {}  # writer -> the task serving it
        self._server = None
        self._pool = None

    # ------------------------------------------------------------ runs

    def load_cloud_part(self, cloud_part):
        """A runner for ``cloud_part``: the runtime's artifact dict (path, sha256, format onnx,
        input/output names) of a cloud part taking one feature with a batch of 1 and returning its
        logits. Slow (the runtime loads the file): call it off the event loop."""
        return load_runner(cloud_part, self.runtime_threads)

    def register_run(self, run_id, key, runner, expect, keep_features=False):
        """Answer run ``run_id``'s device, authenticated with ``key``, with ``runner`` (``load_cloud_part``).

        ``expect``: the feature's dtype, shape (no batch), layout, and the image count. ValueError if
        the kept features would exceed ``max_kept_bytes``; RuntimeError if the run is registered.
        """
        if run_id in self._runs:
            raise RuntimeError(f"run {run_id} is registered already")
        expectation = Expectation.from_dict(expect)
        features = received = None
        if keep_features:
            kept = sum(r.features.nbytes for r in self._runs.values() if r.features is not None)
            if kept + expectation.count * expectation.frame_bytes > self.max_kept_bytes:
                raise ValueError(f"keeping run {run_id}'s features would hold more than {self.max_kept_bytes} bytes")
            features = np.zeros((expectation.count,) + expectation.shape, dtype=expectation.dtype)
            received = np.zeros(expectation.count, dtype=bool)
        self._runs[run_id] = _Run(run_id, check_key(key), expectation, runner, features, received)

    async def finish_run(self, run_id):
        """Close the run's connections and drop it (unknown from now on); its ``OnlineRunLog``."""
        run = self._runs.pop(run_id)
        await self._disconnect(list(run.writers))
        return OnlineRunLog(run.answers, run.features, run.received, run.runner)

    # ------------------------------------------------------------ serving

    async def start(self):
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edgekit-cloud-part")
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("online inference server listening on %s:%d (%d workers)", self.host, self.port, self.workers)

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._disconnect(list(self._connections))
            await self._server.wait_closed()
            self._server = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def _disconnect(self, writers):
        handlers = [self._connections[writer] for writer in writers if writer in self._connections]
        for writer in writers:
            writer.close()
        await asyncio.gather(*handlers, return_exceptions=True)

    def _reject(self, reason, peer, detail):
        self.rejections[reason] += 1
        log.warning("online: rejected %s from %s: %s", reason, peer, detail)

    async def _handle(self, reader, writer):
        peer = writer.get_extra_info("peername")
        if len(self._connections) >= self.max_connections:
            self._reject("too-many-connections", peer, f"{self.max_connections} already open")
            writer.close()
            return
        self._connections[writer] = asyncio.current_task()
        run = None
        try:
            _, session, run = await asyncio.wait_for(
                server_handshake_async(reader, writer, SERVICE_ONLINE, self._lookup), self.handshake_timeout)
            if self._runs.get(run.run_id) is not run:
                raise ProtocolError("unknown-run", f"run {run.run_id} was dropped during the handshake")
            run.writers.add(writer)
            await self._serve(run, session, reader, writer)
        except asyncio.TimeoutError:
            self._reject("timeout", peer, "no handshake or no frame in time")
        except ProtocolError as err:
            self._reject(err.reason, peer, err.detail)
        except (ConnectionClosed, ConnectionError):
            log.info("online: %s disconnected", peer)
        finally:
            self._connections.pop(writer, None)
            if run is not None:
                run.writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _lookup(self, run_id):
        run = self._runs.get(run_id)
        return None if run is None else (run.key, 0, run)

    async def _serve(self, run, session, reader, writer):
        loop = asyncio.get_running_loop()
        received = 0
        while True:
            frame = await asyncio.wait_for(read_frame_async(reader, session, run.expect.frame_bytes), self.idle_timeout)
            read_ns = time.monotonic_ns()
            try:
                if frame.ftype == PING:
                    ping = decode_ping(frame, PING)
                    reply = encode_ping(session, PONG, run.run_id, ping.seq)
                elif frame.ftype == DATA:
                    tensor = run.expect.check(run.run_id, decode_tensor(frame, DATA), seq_bound=False)
                    received += 1
                    reply = encode_ack(session, run.run_id, tensor.seq, received)
                elif frame.ftype == INFER:
                    tensor = run.expect.check(run.run_id, decode_tensor(frame, INFER))
                    prediction, cloud_ns = await loop.run_in_executor(self._pool, self._infer, run, tensor)
                    run.answers += 1
                    reply = encode_answer(session, run.run_id, tensor.seq, prediction, cloud_ns,
                                          time.monotonic_ns() - read_ns)
                else:
                    raise ProtocolError("unexpected-frame", f"frame type {frame.ftype} on the online service")
            except ProtocolError as err:
                writer.write(encode_error(session, err.reason))
                raise
            writer.write(reply)
            await writer.drain()

    @staticmethod
    def _infer(run, tensor):
        """In a pool thread: (top-1 class, ns of the runtime call); keeps the feature if asked to."""
        x = tensor.array().reshape((1,) + tensor.shape)
        start = time.monotonic_ns()
        try:
            logits = run.runner.run(x)
        except Exception as err:  # the runtime's own error, reported to the device
            raise ProtocolError("runtime-error", str(err)) from err
        cloud_ns = time.monotonic_ns() - start
        if run.features is not None:
            run.features[tensor.seq] = x[0]
            run.received[tensor.seq] = True
        return _top1(logits), cloud_ns


def _top1(logits):
    return int(np.argmax(np.asarray(logits).reshape(-1)))


def top1(runner, features):
    """Top-1 class of ``runner`` (a cloud part) for each row of ``features``, one row at a time as online."""
    return np.array([_top1(runner.run(np.ascontiguousarray(row[None]))) for row in features], dtype=np.int64)


class OnlineServerThread(ServerThread):
    """An OnlineServer on its own event loop in a background thread, for synchronous callers."""

    def __init__(self, host="127.0.0.1", port=0, **options):
        super().__init__(OnlineServer(host, port, **options), name="edgekit-online")

    def register_run(self, run_id, key, cloud_part, expect, keep_features=False):
        """Load ``cloud_part`` here (not on the server's loop), then register the run there."""
        runner = self.server.load_cloud_part(cloud_part)

        async def register():
            self.server.register_run(run_id, key, runner, expect, keep_features)
        self.call(register())

    def finish_run(self, run_id):
        return self.call(self.server.finish_run(run_id))
