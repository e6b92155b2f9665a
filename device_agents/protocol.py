"""The binary wire protocol between the device agent and the cloud (features and black-box queries).

Every frame starts with a fixed prefix (magic, version, type, header length, payload length), then
a type-specific header, then the payload (raw little-endian tensor bytes, only for tensor frames).
Frames sent after the handshake end with HMAC-SHA256 over a per-direction frame counter and the
whole frame, under a session key derived from the run key and both peers' nonces, so a frame can
be neither forged, replayed into another connection, reordered nor reflected back to its sender.

Handshake (mutual, the run key never travels):
  server -> HELLO   service, server nonce
  client -> AUTH    run id, client nonce, HMAC(key, "client" || service || nonces || run id)
  server -> WELCOME HMAC(key, "server" || ...), next expected sequence number, max query batch
A server refuses with REJECT (a reason, not authenticated) and closes.

Nothing here unpickles; every length is checked against a bound before anything is allocated.
"""

import asyncio
import hashlib
import hmac
import os
import stat
import struct
from typing import NamedTuple, Tuple

import numpy as np

MAGIC = b"EKW\x01"
VERSION = 1
DEFAULT_MAX_PAYLOAD = 64 << 20
MAX_HEADER = 256
MAX_NDIM = 8
MAX_REASON = 200
NONCE_SIZE = 32
MAC_SIZE = 32
MIN_KEY_SIZE = 16

SERVICE_STREAM = 1
SERVICE_QUERY = 2
SERVICE_ONLINE = 3

HELLO, AUTH, WELCOME, REJECT = 1, 2, 3, 4
DATA, ACK, END, END_ACK = 16, 17, 18, 19
QUERY, RESULT, ERROR = 32, 33, 34
PING, PONG, INFER, ANSWER = 48, 49, 50, 51
SESSION_TYPES = frozenset((DATA, ACK, END, END_ACK, QUERY, RESULT, ERROR, PING, PONG, INFER, ANSWER))
TENSOR_TYPES = frozenset((DATA, QUERY, RESULT, INFER))
TEXT_TYPES = frozenset((REJECT, ERROR))

DTYPES = {"float32": 1, "float16": 2, "float64": 3, "uint8": 4, "int8": 5, "int32": 6, "int64": 7}
LAYOUTS = {"NCHW": 1, "NHWC": 2, "NC": 3}
_DTYPE_NAMES = {code: name for name, code in DTYPES.items()}
_LAYOUT_NAMES = {code: name for name, code in LAYOUTS.items()}

PREFIX = struct.Struct("<4sBBHI")  # magic, version, type, header length, payload length
_HELLO = struct.Struct("<B32s")  # service, server nonce
_AUTH = struct.Struct("<16s32s32s")  # run id, client nonce, client proof
_WELCOME = struct.Struct("<32sQI")  # server proof, next expected seq, max query batch
_TENSOR = struct.Struct("<16sQBBBx8Iqq")  # run id, seq, dtype, layout, ndim, shape[8], start/end ns
_ACK = struct.Struct("<16sQQ")  # run id, acknowledged seq, count of contiguous frames from 0
_END = struct.Struct("<16sQ")  # run id, total frame count
_END_ACK = struct.Struct("<16sQQB")  # run id, count, frames stored, sealed
_PING = struct.Struct("<16sQ")  # run id, seq (PONG echoes both)
_ANSWER = struct.Struct("<16sQqQQ")  # run id, seq, top-1 class, cloud part ns, server ns (frame read -> answer)
_COUNTER = struct.Struct("<Q")
_FIXED_HEADERS = {
    HELLO: _HELLO.size, AUTH: _AUTH.size, WELCOME: _WELCOME.size, DATA: _TENSOR.size,
    QUERY: _TENSOR.size, RESULT: _TENSOR.size, ACK: _ACK.size, END: _END.size,
    END_ACK: _END_ACK.size, PING: _PING.size, PONG: _PING.size, INFER: _TENSOR.size, ANSWER: _ANSWER.size,
}
_KNOWN_TYPES = frozenset(_FIXED_HEADERS) | TEXT_TYPES


class ProtocolError(Exception):
    """A peer sent something this protocol refuses; ``reason`` is a short fixed code for counting."""

    def __init__(self, reason, detail=""):
        super().__init__("{}: {}".format(reason, detail) if detail else reason)
        self.reason = reason
        self.detail = detail


class ConnectionClosed(ConnectionError):
    """The peer closed the connection cleanly between two frames."""


class Prefix(NamedTuple):
    ftype: int
    header_len: int
    payload_len: int


class Frame(NamedTuple):
    ftype: int
    header: bytes
    payload: bytes


class Hello(NamedTuple):
    service: int
    nonce: bytes


class Auth(NamedTuple):
    run_id: str
    nonce: bytes
    proof: bytes


class Welcome(NamedTuple):
    proof: bytes
    next_seq: int
    max_batch: int


class Ack(NamedTuple):
    run_id: str
    seq: int
    contiguous: int


class End(NamedTuple):
    run_id: str
    count: int


class EndAck(NamedTuple):
    run_id: str
    count: int
    stored: int
    sealed: bool


class Ping(NamedTuple):
    run_id: str
    seq: int


class Answer(NamedTuple):
    run_id: str
    seq: int
    prediction: int
    cloud_ns: int
    server_ns: int


class TensorFrame(NamedTuple):
    run_id: str
    seq: int
    dtype: str
    layout: str
    shape: Tuple[int, ...]
    start_ns: int
    end_ns: int
    payload: bytes

    def array(self):
        """The tensor as a read-only numpy array (no copy)."""
        return np.frombuffer(self.payload, dtype=np.dtype(self.dtype).newbyteorder("<")).reshape(self.shape)


# ---------------------------------------------------------------- run ids and keys


def run_id_bytes(run_id):
    """The 16 bytes of a run id written as 32 hex characters; ValueError otherwise."""
    if not isinstance(run_id, str) or len(run_id) != 32:
        raise ValueError("run id must be 32 hex characters, got {!r}".format(run_id))
    try:
        return bytes.fromhex(run_id)
    except ValueError:
        raise ValueError("run id must be 32 hex characters, got {!r}".format(run_id)) from None


def check_key(key):
    """Return ``key`` as bytes if it is long enough to authenticate with."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_SIZE:
        raise ValueError("a run key must be at least {} bytes".format(MIN_KEY_SIZE))
    return bytes(key)


def load_key_file(path):
    """Read a run key stored as hex; refuse a file that group or others may read."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError("key file {} must not be accessible by group or others (chmod 600)".format(path))
    with open(path, "r") as handle:
        text = handle.read(4096).strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError("key file {} must hold the key as hex".format(path)) from None
    return check_key(key)


def make_nonce():
    return os.urandom(NONCE_SIZE)


# ---------------------------------------------------------------- key derivation and sessions


def _hkdf(key, salt, info):
    """RFC 5869 HKDF-SHA256 with a 32-byte output (one expand block)."""
    prk = hmac.new(salt, key, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _transcript(service, server_nonce, client_nonce, run_id):
    return bytes((VERSION, service)) + server_nonce + client_nonce + run_id_bytes(run_id)


def client_proof(key, service, server_nonce, client_nonce, run_id):
    msg = b"edgekit client proof\x00" + _transcript(service, server_nonce, client_nonce, run_id)
    return hmac.new(key, msg, hashlib.sha256).digest()


def server_proof(key, service, server_nonce, client_nonce, run_id):
    msg = b"edgekit server proof\x00" + _transcript(service, server_nonce, client_nonce, run_id)
    return hmac.new(key, msg, hashlib.sha256).digest()


class Session:
    """Seals outgoing and opens incoming frames of one connection, with one key per direction."""

    def __init__(self, send_key, recv_key):
        # keyed once; each frame's MAC starts from a copy (no per-frame key schedule)
        self._send_mac = hmac.new(send_key, digestmod=hashlib.sha256)
        self._recv_mac = hmac.new(recv_key, digestmod=hashlib.sha256)
        self._sent = 0
        self._received = 0

    @classmethod
    def derive(cls, key, service, server_nonce, client_nonce, run_id, is_server):
        transcript = _transcript(service, server_nonce, client_nonce, run_id)
        c2s = _hkdf(key, server_nonce + client_nonce, b"edgekit client->server\x00" + transcript)
        s2c = _hkdf(key, server_nonce + client_nonce, b"edgekit server->client\x00" + transcript)
        return cls(s2c, c2s) if is_server else cls(c2s, s2c)

    @staticmethod
    def _mac(keyed, counter, *parts):
        mac = keyed.copy()
        mac.update(_COUNTER.pack(counter))
        for part in parts:
            mac.update(part)
        return mac.digest()

    def seal(self, ftype, header, payload=b""):
        """The complete bytes of an authenticated frame (the payload is copied once)."""
        prefix = _prefix(ftype, header, payload)
        mac = self._mac(self._send_mac, self._sent, prefix, header, payload)
        self._sent += 1
        return b"".join((prefix, header, payload, mac))

    def open(self, raw_prefix, body, header_len, payload_len):
        """Check the MAC of a received frame; return (header, payload)."""
        end = header_len + payload_len
        view = memoryview(body)
        expected = self._mac(self._recv_mac, self._received, raw_prefix, view[:end])
        if not hmac.compare_digest(expected, view[end:]):
            raise ProtocolError("bad-mac", "frame authentication failed")
        self._received += 1
        return bytes(view[:header_len]), bytes(view[header_len:end])


# ---------------------------------------------------------------- framing


def _prefix(ftype, header, payload):
    return PREFIX.pack(MAGIC, VERSION, ftype, len(header), len(payload))


def _frame(ftype, header, payload=b""):
    return _prefix(ftype, header, payload) + header + payload


def parse_prefix(raw, max_payload=DEFAULT_MAX_PAYLOAD):
    """Validate a frame prefix before reading (or allocating for) the rest of the frame."""
    magic, version, ftype, header_len, payload_len = PREFIX.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError("malformed", "bad magic {!r}".format(magic))
    if version != VERSION:
        raise ProtocolError("malformed", "unsupported protocol version {}".format(version))
    if ftype not in _KNOWN_TYPES:
        raise ProtocolError("malformed", "unknown frame type {}".format(ftype))
    if header_len > MAX_HEADER:
        raise ProtocolError("oversize", "header of {} bytes (max {})".format(header_len, MAX_HEADER))
    fixed = _FIXED_HEADERS.get(ftype)
    if fixed is not None and header_len != fixed:
        raise ProtocolError("malformed", "type {} header is {} bytes, not {}".format(ftype, header_len, fixed))
    if payload_len > max_payload:
        raise ProtocolError("oversize", "payload of {} bytes (max {})".format(payload_len, max_payload))
    if payload_len and ftype not in TENSOR_TYPES:
        raise ProtocolError("malformed", "type {} carries no payload".format(ftype))
    return Prefix(ftype, header_len, payload_len)


def body_length(prefix):
    """Bytes that follow the prefix: header, payload and, for session frames, the MAC."""
    return prefix.header_len + prefix.payload_len + (MAC_SIZE if prefix.ftype in SESSION_TYPES else 0)


def decode_frame(raw_prefix, prefix, body, session):
    """Turn a received frame into a Frame; session frames need ``session`` and a valid MAC."""
    if prefix.ftype in SESSION_TYPES:
        if session is None:
            raise ProtocolError("unexpected-frame", "frame type {} before the handshake".format(prefix.ftype))
        header, payload = session.open(raw_prefix, body, prefix.header_len, prefix.payload_len)
        return Frame(prefix.ftype, header, payload)
    if session is not None:
        raise ProtocolError("unexpected-frame", "handshake frame type {} inside a session".format(prefix.ftype))
    return Frame(prefix.ftype, bytes(body[:prefix.header_len]), b"")


def read_frame(recv_exact, session, max_payload=DEFAULT_MAX_PAYLOAD):
    """Read one frame with a blocking ``recv_exact(n) -> bytes``."""
    raw = recv_exact(PREFIX.size, True)
    prefix = parse_prefix(raw, max_payload)
    return decode_frame(raw, prefix, recv_exact(body_length(prefix), False), session)


async def read_frame_async(reader, session, max_payload=DEFAULT_MAX_PAYLOAD):
    """Read one frame from an ``asyncio.StreamReader``."""
    try:
        raw = await reader.readexactly(PREFIX.size)
    except asyncio.IncompleteReadError as err:
        if not err.partial:
            raise ConnectionClosed("peer closed the connection") from None
        raise ProtocolError("truncated", "connection closed inside a frame prefix") from None
    prefix = parse_prefix(raw, max_payload)
    try:
        body = await reader.readexactly(body_length(prefix))
    except asyncio.IncompleteReadError:
        raise ProtocolError("truncated", "connection closed inside a frame") from None
    return decode_frame(raw, prefix, body, session)


def socket_reader(sock):
    """A ``recv_exact(n, at_frame_start)`` for a blocking socket, or a socket-like object with only
    ``recv`` (a paramiko channel), for ``read_frame``."""
    recv_into = getattr(sock, "recv_into", None) or _copying_recv_into(sock)

    def recv_exact(size, at_frame_start):
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        while got < size:
            n = recv_into(view[got:])
            if n == 0:
                if got == 0 and at_frame_start:
                    raise ConnectionClosed("peer closed the connection")
                raise ProtocolError("truncated", "connection closed inside a frame")
            got += n
        return bytes(buf)

    return recv_exact


def _copying_recv_into(sock):
    def recv_into(view):
        data = sock.recv(len(view))
        view[:len(data)] = data
        return len(data)

    return recv_into


def expect(frame, *ftypes):
    """Return ``frame`` if its type is one of ``ftypes``; a REJECT/ERROR becomes a ProtocolError."""
    if frame.ftype in ftypes:
        return frame
    if frame.ftype in TEXT_TYPES:
        raise ProtocolError("refused", decode_text(frame))
    raise ProtocolError("unexpected-frame", "got frame type {}, wanted {}".format(frame.ftype, ftypes))


# ---------------------------------------------------------------- encoders and decoders


def encode_hello(service, nonce):
    return _frame(HELLO, _HELLO.pack(service, nonce))


def decode_hello(frame):
    return Hello(*_HELLO.unpack(expect(frame, HELLO).header))


def encode_auth(run_id, nonce, proof):
    return _frame(AUTH, _AUTH.pack(run_id_bytes(run_id), nonce, proof))


def decode_auth(frame):
    raw_run, nonce, proof = _AUTH.unpack(expect(frame, AUTH).header)
    return Auth(raw_run.hex(), nonce, proof)


def encode_welcome(proof, next_seq, max_batch):
    return _frame(WELCOME, _WELCOME.pack(proof, next_seq, max_batch))


def decode_welcome(frame):
    return Welcome(*_WELCOME.unpack(expect(frame, WELCOME).header))


def _encode_text(text):
    return text.encode("utf-8", "replace")[:MAX_REASON]


def encode_reject(reason):
    """An unauthenticated refusal sent before closing a connection that failed the handshake."""
    return _frame(REJECT, _encode_text(reason))


def encode_error(session, reason):
    return session.seal(ERROR, _encode_text(reason))


def decode_text(frame):
    return frame.header.decode("utf-8", "replace")


def encode_ack(session, run_id, seq, contiguous):
    return session.seal(ACK, _ACK.pack(run_id_bytes(run_id), seq, contiguous))


def decode_ack(frame):
    raw_run, seq, contiguous = _ACK.unpack(expect(frame, ACK).header)
    return Ack(raw_run.hex(), seq, contiguous)


def encode_end(session, run_id, count):
    return session.seal(END, _END.pack(run_id_bytes(run_id), count))


def decode_end(frame):
    raw_run, count = _END.unpack(expect(frame, END).header)
    return End(raw_run.hex(), count)


def encode_end_ack(session, run_id, count, stored, sealed):
    return session.seal(END_ACK, _END_ACK.pack(run_id_bytes(run_id), count, stored, int(bool(sealed))))


def decode_end_ack(frame):
    raw_run, count, stored, sealed = _END_ACK.unpack(expect(frame, END_ACK).header)
    return EndAck(raw_run.hex(), count, stored, bool(sealed))


def encode_ping(session, ftype, run_id, seq):
    """PING (client) or PONG (server, echoing the PING's run id and seq)."""
    return session.seal(ftype, _PING.pack(run_id_bytes(run_id), seq))


def decode_ping(frame, *ftypes):
    raw_run, seq = _PING.unpack(expect(frame, *(ftypes or (PING, PONG))).header)
    return Ping(raw_run.hex(), seq)


def encode_answer(session, run_id, seq, prediction, cloud_ns, server_ns):
    return session.seal(ANSWER, _ANSWER.pack(run_id_bytes(run_id), seq, prediction, cloud_ns, server_ns))


def decode_answer(frame):
    raw_run, seq, prediction, cloud_ns, server_ns = _ANSWER.unpack(expect(frame, ANSWER).header)
    return Answer(raw_run.hex(), seq, prediction, cloud_ns, server_ns)


def tensor_payload(array):
    """Contiguous little-endian bytes of ``array`` (whose dtype must be a protocol dtype)."""
    array = np.asarray(array)
    if array.dtype.name not in DTYPES:
        raise ValueError("dtype {} cannot travel (accepted: {})".format(array.dtype, ", ".join(DTYPES)))
    if array.ndim > MAX_NDIM:
        raise ValueError("{} dimensions (max {})".format(array.ndim, MAX_NDIM))
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def encode_tensor_header(run_id, seq, dtype, layout, shape, start_ns=0, end_ns=0):
    """The fixed tensor header; ``dtype``/``layout`` are names from DTYPES/LAYOUTS."""
    if len(shape) > MAX_NDIM:
        raise ValueError("{} dimensions (max {})".format(len(shape), MAX_NDIM))
    dims = list(shape) + [0] * (MAX_NDIM - len(shape))
    return _TENSOR.pack(run_id_bytes(run_id), seq, DTYPES[dtype], LAYOUTS[layout], len(shape),
                        *dims, start_ns, end_ns)


def encode_tensor(session, ftype, run_id, seq, array, layout, start_ns=0, end_ns=0):
    array = np.asarray(array)
    header = encode_tensor_header(run_id, seq, array.dtype.name, layout, array.shape, start_ns, end_ns)
    return session.seal(ftype, header, tensor_payload(array))


def decode_tensor(frame, *ftypes):
    """A validated TensorFrame: known dtype and layout, ndim bound, payload length = shape size."""
    expect(frame, *(ftypes or TENSOR_TYPES))
    fields = _TENSOR.unpack(frame.header)
    raw_run, seq, dtype_code, layout_code, ndim = fields[:5]
    start_ns, end_ns = fields[-2:]
    if dtype_code not in _DTYPE_NAMES:
        raise ProtocolError("malformed", "unknown dtype code {}".format(dtype_code))
    if layout_code not in _LAYOUT_NAMES:
        raise ProtocolError("malformed", "unknown layout code {}".format(layout_code))
    if ndim > MAX_NDIM:
        raise ProtocolError("malformed", "{} dimensions (max {})".format(ndim, MAX_NDIM))
    shape = tuple(fields[5:5 + ndim])
    dtype = _DTYPE_NAMES[dtype_code]
    size = np.dtype(dtype).itemsize
    for dim in shape:
        size *= dim
    if size != len(frame.payload):
        raise ProtocolError("malformed", "payload of {} bytes for {} {}".format(len(frame.payload), dtype, shape))
    return TensorFrame(raw_run.hex(), seq, dtype, _LAYOUT_NAMES[layout_code], shape, start_ns, end_ns,
                       frame.payload)


# ---------------------------------------------------------------- handshakes


class ServerHello(NamedTuple):
    """What a server remembers between sending HELLO and checking AUTH."""
    service: int
    nonce: bytes

    @classmethod
    def new(cls, service):
        return cls(service, make_nonce())

    def frame(self):
        return encode_hello(self.service, self.nonce)

    def accept(self, auth, key, next_seq=0, max_batch=0):
        """Check the client's proof; return (session, WELCOME bytes) or raise ProtocolError."""
        expected = client_proof(key, self.service, self.nonce, auth.nonce, auth.run_id)
        if not hmac.compare_digest(expected, auth.proof):
            raise ProtocolError("bad-auth", "client proof failed for run {}".format(auth.run_id))
        proof = server_proof(key, self.service, self.nonce, auth.nonce, auth.run_id)
        session = Session.derive(key, self.service, self.nonce, auth.nonce, auth.run_id, is_server=True)
        return session, encode_welcome(proof, next_seq, max_batch)


def client_handshake(sock, key, service, run_id, max_payload=DEFAULT_MAX_PAYLOAD):
    """Run the client side on a connected blocking socket; return (session, Welcome, recv_exact)."""
    recv_exact = socket_reader(sock)
    hello = decode_hello(read_frame(recv_exact, None, max_payload))
    if hello.service != service:
        raise ProtocolError("wrong-service", "server offers service {}, wanted {}".format(hello.service, service))
    nonce = make_nonce()
    sock.sendall(encode_auth(run_id, nonce, client_proof(key, service, hello.nonce, nonce, run_id)))
    welcome = decode_welcome(read_frame(recv_exact, None, max_payload))
    expected = server_proof(key, service, hello.nonce, nonce, run_id)
    if not hmac.compare_digest(expected, welcome.proof):
        raise ProtocolError("bad-auth", "the server could not prove it holds the run key")
    session = Session.derive(key, service, hello.nonce, nonce, run_id, is_server=False)
    return session, welcome, recv_exact


def server_handshake(sock, service, key_for_run, next_seq=0, max_batch=0):
    """Run the server side on a blocking socket; ``key_for_run(run_id)`` returns the key or None.

    Returns (session, Auth, recv_exact); on failure sends REJECT and raises ProtocolError.
    """
    recv_exact = socket_reader(sock)
    hello = ServerHello.new(service)
    sock.sendall(hello.frame())
    try:
        auth = decode_auth(read_frame(recv_exact, None, MAX_HEADER))
        key = key_for_run(auth.run_id)
        if key is None:
            raise ProtocolError("unknown-run", "run {} is not registered".format(auth.run_id))
        session, welcome = hello.accept(auth, key, next_seq, max_batch)
    except ProtocolError as err:
        sock.sendall(encode_reject(err.reason))
        raise
    sock.sendall(welcome)
    return session, auth, recv_exact


async def server_handshake_async(reader, writer, service, lookup, max_batch=0):
    """The server side on asyncio streams: HELLO, check AUTH, WELCOME (or REJECT and ProtocolError).

    ``lookup(run_id)`` returns None for an unknown run, else ``(key, next_seq, context)``; returns
    (Auth, session, context). The caller bounds the whole exchange with its handshake deadline.
    """
    hello = ServerHello.new(service)
    writer.write(hello.frame())
    try:
        auth = decode_auth(await read_frame_async(reader, None, MAX_HEADER))
        found = lookup(auth.run_id)
        if found is None:
            raise ProtocolError("unknown-run", "run {} is not registered".format(auth.run_id))
        key, next_seq, context = found
        session, welcome = hello.accept(auth, key, next_seq, max_batch)
    except ProtocolError as err:
        writer.write(encode_reject(err.reason))
        raise
    writer.write(welcome)
    await writer.drain()
    return auth, session, context
