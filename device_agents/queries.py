"""Black-box queries through the board: a server that runs the device part on a batch of images.

The black-box attacker may query the device part but not read its weights; answering those queries
on the board (``python -m device_agents serve-queries``) keeps the experiment honest. Peers
authenticate with the same handshake as the feature stream (service "query"), requests are QUERY
tensor frames [N, C, H, W] float32 with N <= the server's max batch, answers are RESULT frames.
"""

import collections
import json
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import uuid

import numpy as np

from . import protocol as wire
from .errors import AgentError

DEFAULT_MAX_BATCH = 64
log = logging.getLogger(__name__)


class QueryServer(socketserver.ThreadingTCPServer):
    """Answers authenticated queries with ``runner.run(x[1,C,H,W]) -> features[1,...]`` per image.

    ``input_shape`` ([1, C, H, W]), when known, lets malformed requests be refused before they are
    read; ``max_clients`` bounds the connections served at once (others are closed at once).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, runner, key, host="127.0.0.1", port=0, input_shape=None,
                 max_batch=DEFAULT_MAX_BATCH, max_clients=4, io_timeout=120.0):
        self.runner = runner
        self.key = wire.check_key(key)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.max_batch = max_batch
        self.io_timeout = io_timeout
        self.rejections = collections.Counter()
        if self.input_shape is None:
            self.max_payload = wire.DEFAULT_MAX_PAYLOAD
        else:
            self.max_payload = max_batch * int(np.prod(self.input_shape[1:])) * 4
        self._slots = threading.BoundedSemaphore(max_clients)
        self._run_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def port(self):
        return self.server_address[1]

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self._reject("too-many-clients", client_address, "all client slots are busy")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _reject(self, reason, peer, detail):
        self.rejections[reason] += 1
        log.warning("query rejected %s from %s: %s", reason, peer, detail)

    def serve_client(self, sock, peer):
        sock.settimeout(self.io_timeout)
        try:
            session, auth, recv_exact = wire.server_handshake(
                sock, wire.SERVICE_QUERY, lambda run_id: self.key, max_batch=self.max_batch)
            while True:
                request = wire.decode_tensor(wire.read_frame(recv_exact, session, self.max_payload), wire.QUERY)
                try:
                    features = self._answer(request)
                except wire.ProtocolError as err:
                    sock.sendall(wire.encode_error(session, err.reason))
                    raise
                layout = "NCHW" if features.ndim == 4 else "NC"
                sock.sendall(wire.encode_tensor(session, wire.RESULT, auth.run_id, request.seq, features, layout))
        except wire.ConnectionClosed:
            pass
        except wire.ProtocolError as err:
            self._reject(err.reason, peer, err.detail)
        except OSError as err:
            log.info("query client %s dropped: %s", peer, err)

    def _answer(self, request):
        shape = request.shape
        if request.dtype != "float32" or len(shape) != 4:
            raise wire.ProtocolError("bad-request", "want float32 [N,C,H,W], got {} {}".format(request.dtype, shape))
        if not 1 <= shape[0] <= self.max_batch:
            raise wire.ProtocolError("bad-request", "batch of {} (1..{})".format(shape[0], self.max_batch))
        if self.input_shape is not None and shape[1:] != self.input_shape[1:]:
            raise wire.ProtocolError("bad-request", "images {} for a model taking {}".format(shape[1:], self.input_shape[1:]))
        with self._run_lock:
            try:
                return run_each(self.runner, request.array())
            except Exception as err:  # the runtime's own error, reported to the client
                raise wire.ProtocolError("runtime-error", str(err)) from err


def run_each(runner, images):
    """``runner`` (a device part taking a batch of 1) on each of ``images`` [N,C,H,W]: features [N,...]."""
    return np.concatenate([np.asarray(runner.run(np.array(images[i:i + 1]))) for i in range(len(images))], axis=0)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.serve_client(self.request, self.client_address)


class QueryClient:
    """The attacker's handle on a query server: ``query(images[N,C,H,W]) -> features[N,...]``.

    ``connect``, when given, is called instead of opening a TCP connection to host:port and returns
    a connected socket-like object (``recv``, ``sendall``, ``settimeout``, ``close``): a paramiko
    channel to the server on a board's loopback, say.
    """

    def __init__(self, host, port, key, timeout=120.0, max_payload=wire.DEFAULT_MAX_PAYLOAD, connect=None):
        self._address = (host, port)
        self._open = connect or self._open_tcp
        self._key = wire.check_key(key)
        self._timeout = timeout
        self._max_payload = max_payload
        self._sock = None
        self._session = None
        self._recv_exact = None
        self._max_batch = 0
        self._client_id = uuid.uuid4().hex
        self._seq = 0

    def _open_tcp(self):
        sock = socket.create_connection(self._address, timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _connect(self):
        sock = self._open()
        try:
            sock.settimeout(self._timeout)
            self._session, welcome, self._recv_exact = wire.client_handshake(
                sock, self._key, wire.SERVICE_QUERY, self._client_id, self._max_payload)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._max_batch = max(1, welcome.max_batch)

    def query(self, images):
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4 or len(images) == 0:
            raise ValueError("query takes a non-empty float32 batch [N,C,H,W], got {}".format(images.shape))
        if self._sock is None:
            self._connect()
        outputs = []
        for start in range(0, len(images), self._max_batch):
            batch = images[start:start + self._max_batch]
            seq = self._seq
            self._seq += 1
            self._sock.sendall(wire.encode_tensor(self._session, wire.QUERY, self._client_id, seq, batch, "NCHW"))
            frame = wire.read_frame(self._recv_exact, self._session, self._max_payload)
            result = wire.decode_tensor(frame, wire.RESULT)
            if result.seq != seq or result.shape[:1] != (len(batch),):
                raise wire.ProtocolError("unexpected-frame", "answer {} {} for query {}".format(result.seq, result.shape, seq))
            outputs.append(result.array().copy())
        return np.concatenate(outputs, axis=0)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- the serve-queries subcommand


def register(subparsers):
    """Add ``serve-queries`` to the agent's command line."""
    parser = subparsers.add_parser(
        "serve-queries", help="answer authenticated black-box queries with the device part",
        description="Either --spec (a run spec: its artifact, threads and cloud.key_file) or "
                    "--artifact/--sha256/--format/--key-file. Prints one JSON line with the port.")
    parser.add_argument("--spec", help="run spec JSON whose artifact to serve")
    parser.add_argument("--artifact", help="model file (ignored with --spec)")
    parser.add_argument("--sha256", help="expected sha256 of --artifact")
    parser.add_argument("--format", choices=("onnx", "tflite"), help="format of --artifact")
    parser.add_argument("--key-file", help="run key as hex, mode 600 (default: the spec's cloud.key_file)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (default: spec's, or 1)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="largest batch per request")
    parser.add_argument("--max-clients", type=int, default=4, help="connections served at once")
    parser.set_defaults(handler=serve_queries_command)


def _resolve(args):
    """(artifact spec, key file, threads) from --spec or the explicit options."""
    if args.spec:
        from .spec import load_spec  # validates the spec and resolves its relative paths

        spec = load_spec(args.spec)
        key_file = args.key_file or (spec.cloud or {}).get("key_file")
        if not key_file:
            raise AgentError("serve-queries: the spec has no cloud.key_file; pass --key-file")
        return spec.artifact, key_file, args.threads or spec.threads
    missing = [name for name in ("artifact", "sha256", "format", "key_file") if not getattr(args, name)]
    if missing:
        raise AgentError("serve-queries needs --spec or all of --artifact --sha256 --format --key-file "
                         "(missing: {})".format(", ".join("--" + m.replace("_", "-") for m in missing)))
    artifact = {"path": os.path.abspath(args.artifact), "sha256": args.sha256, "format": args.format}
    return artifact, args.key_file, args.threads or 1


def serve_queries_command(args):
    """Serve until SIGTERM or SIGINT; exit status 0, or 1 with the error on stderr."""
    try:
        server = _build_server(args)
    except AgentError as error:
        sys.stderr.write("device agent: {}\n".format(error))
        return 1

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(json.dumps({"event": "listening", "host": args.host, "port": server.port}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


def _build_server(args):
    from .runtime import load_runner  # the runtime imports onnxruntime or LiteRT: only when serving

    artifact, key_file, threads = _resolve(args)
    try:
        key = wire.load_key_file(key_file)
    except (OSError, ValueError) as err:
        raise AgentError("key file: {}".format(err)) from None
    runner = load_runner(artifact, threads)
    input_shape = (artifact.get("input") or {}).get("shape")
    try:
        return QueryServer(runner, key, args.host, args.port, input_shape=input_shape,
                           max_batch=args.max_batch, max_clients=args.max_clients)
    except OSError as err:
        raise AgentError("cannot listen on {}:{}: {}".format(args.host, args.port, err)) from None
