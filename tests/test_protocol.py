"""The wire protocol: framing bounds, tensor codec, MACs and the mutual handshake (over real sockets)."""

import os
import socket
import struct
import threading

import numpy as np
import pytest

from device_agents import protocol as wire

from wire_support import KEY, feature, new_run_id


def session_pair(run_id=None, key=KEY):
    """Client and server sessions of one connection, derived as the handshake derives them."""
    run_id = run_id or new_run_id()
    sn, cn = wire.make_nonce(), wire.make_nonce()
    client = wire.Session.derive(key, wire.SERVICE_STREAM, sn, cn, run_id, is_server=False)
    server = wire.Session.derive(key, wire.SERVICE_STREAM, sn, cn, run_id, is_server=True)
    return client, server


def receive(raw, session, max_payload=wire.DEFAULT_MAX_PAYLOAD):
    """Decode complete frame bytes the way a reader does."""
    prefix = wire.parse_prefix(raw[:wire.PREFIX.size], max_payload)
    body = raw[wire.PREFIX.size:]
    assert len(body) == wire.body_length(prefix)
    return wire.decode_frame(raw[:wire.PREFIX.size], prefix, body, session)


def test_tensor_frame_round_trip_keeps_values_shape_dtype_and_timestamps():
    client, server = session_pair()
    run_id = new_run_id()
    for array in (feature(3), np.arange(6, dtype=np.int64).reshape(2, 3), np.float16([1.5, -2])):
        raw = wire.encode_tensor(client, wire.DATA, run_id, 7, array, "NCHW", 123, 456)
        tensor = wire.decode_tensor(receive(raw, server), wire.DATA)
        assert (tensor.run_id, tensor.seq, tensor.start_ns, tensor.end_ns) == (run_id, 7, 123, 456)
        assert tensor.dtype == array.dtype.name and tensor.shape == array.shape
        np.testing.assert_array_equal(tensor.array(), array)


def test_payload_is_little_endian_raw_bytes():
    client, server = session_pair()
    big_endian = np.array([1.0, 2.0], dtype=">f4")
    raw = wire.encode_tensor(client, wire.DATA, new_run_id(), 0, big_endian, "NC")
    tensor = wire.decode_tensor(receive(raw, server))
    assert tensor.payload == np.array([1.0, 2.0], dtype="<f4").tobytes()


def test_tampered_payload_fails_the_mac():
    client, server = session_pair()
    raw = bytearray(wire.encode_tensor(client, wire.DATA, new_run_id(), 0, feature(0), "NCHW"))
    raw[wire.PREFIX.size + 80] ^= 1
    with pytest.raises(wire.ProtocolError) as err:
        receive(bytes(raw), server)
    assert err.value.reason == "bad-mac"


def test_frame_replayed_in_the_same_session_or_another_fails_the_mac():
    run_id = new_run_id()
    client, server = session_pair(run_id)
    raw = wire.encode_tensor(client, wire.DATA, run_id, 0, feature(0), "NCHW")
    receive(raw, server)
    with pytest.raises(wire.ProtocolError, match="bad-mac"):
        receive(raw, server)  # same bytes again: the frame counter moved on
    _, other_server = session_pair(run_id)
    with pytest.raises(wire.ProtocolError, match="bad-mac"):
        receive(raw, other_server)  # another connection: other nonces, other session key


def test_a_frame_reflected_back_to_its_sender_fails_the_mac():
    client, _ = session_pair()
    raw = wire.encode_ack(client, new_run_id(), 0, 1)
    with pytest.raises(wire.ProtocolError, match="bad-mac"):
        receive(raw, client)


def test_session_frames_are_refused_before_the_handshake():
    client, _ = session_pair()
    raw = wire.encode_end(client, new_run_id(), 3)
    with pytest.raises(wire.ProtocolError) as err:
        receive(raw, None)
    assert err.value.reason == "unexpected-frame"


def _prefix(magic=wire.MAGIC, version=wire.VERSION, ftype=wire.DATA, header_len=76, payload_len=0):
    return wire.PREFIX.pack(magic, version, ftype, header_len, payload_len)


@pytest.mark.parametrize("raw, reason", [
    (_prefix(magic=b"GET "), "malformed"),
    (_prefix(version=9), "malformed"),
    (_prefix(ftype=99), "malformed"),
    (_prefix(header_len=60000), "oversize"),
    (_prefix(header_len=75), "malformed"),
    (_prefix(payload_len=(64 << 20) + 1), "oversize"),
    (_prefix(ftype=wire.ACK, header_len=32, payload_len=4), "malformed"),
])
def test_bad_prefixes_are_refused_before_reading_the_rest(raw, reason):
    with pytest.raises(wire.ProtocolError) as err:
        wire.parse_prefix(raw)
    assert err.value.reason == reason


def test_payload_bound_is_configurable():
    assert wire.parse_prefix(_prefix(payload_len=1024), max_payload=1024).payload_len == 1024
    with pytest.raises(wire.ProtocolError, match="oversize"):
        wire.parse_prefix(_prefix(payload_len=1025), max_payload=1024)


def _tensor_frame(dtype_code=1, layout_code=1, ndim=1, dims=(4,), payload=b"\0" * 16):
    dims = list(dims) + [0] * (8 - len(dims))
    header = struct.pack("<16sQBBBx8Iqq", bytes(16), 0, dtype_code, layout_code, ndim, *dims, 0, 0)
    return wire.Frame(wire.DATA, header, payload)


@pytest.mark.parametrize("frame", [
    _tensor_frame(dtype_code=99),
    _tensor_frame(layout_code=99),
    _tensor_frame(ndim=9),
    _tensor_frame(payload=b"\0" * 15),
    _tensor_frame(ndim=2, dims=(1 << 31, 1 << 31)),
])
def test_inconsistent_tensor_headers_are_malformed(frame):
    with pytest.raises(wire.ProtocolError) as err:
        wire.decode_tensor(frame)
    assert err.value.reason == "malformed"


def test_too_many_dimensions_cannot_be_encoded():
    with pytest.raises(ValueError):
        wire.tensor_payload(np.zeros((1,) * 9, np.float32))


@pytest.mark.parametrize("bad", ["", "x" * 32, "../" * 11 + "ab", "ab" * 15])
def test_run_ids_must_be_32_hex_characters(bad):
    with pytest.raises(ValueError):
        wire.run_id_bytes(bad)


def test_key_file_must_be_private_hex_and_long_enough(tmp_path):
    path = tmp_path / "run.key"
    path.write_text(KEY.hex() + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        wire.load_key_file(str(path))
    os.chmod(path, 0o600)
    assert wire.load_key_file(str(path)) == KEY
    path.write_text("not hex")
    with pytest.raises(ValueError):
        wire.load_key_file(str(path))
    path.write_text("00" * 8)
    with pytest.raises(ValueError):
        wire.load_key_file(str(path))


def _handshake(client_key, server_key, run_id):
    """Both sides of a handshake over a socket pair; returns (client result, server result)."""
    client_sock, server_sock = socket.socketpair()
    results = {}

    def serve():
        try:
            results["server"] = wire.server_handshake(server_sock, wire.SERVICE_STREAM, lambda rid: server_key)
        except wire.ProtocolError as err:
            results["server"] = err

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        results["client"] = wire.client_handshake(client_sock, client_key, wire.SERVICE_STREAM, run_id)
    except wire.ProtocolError as err:
        results["client"] = err
    thread.join()
    client_sock.close()
    server_sock.close()
    return results["client"], results["server"]


def test_handshake_gives_both_sides_matching_sessions():
    run_id = new_run_id()
    (c_session, welcome, _), (s_session, auth, _) = _handshake(KEY, KEY, run_id)
    assert auth.run_id == run_id and welcome.next_seq == 0
    raw = wire.encode_ack(s_session, run_id, 4, 5)
    assert wire.decode_ack(receive(raw, c_session)) == wire.Ack(run_id, 4, 5)


def test_handshake_with_the_wrong_key_is_refused_on_both_sides():
    client, server = _handshake(b"w" * 32, KEY, new_run_id())
    assert server.reason == "bad-auth"
    assert client.reason == "refused" and "bad-auth" in str(client)


def test_client_refuses_a_server_that_cannot_prove_the_key():
    client_sock, fake_server = socket.socketpair()

    def impostor():
        fake_server.sendall(wire.encode_hello(wire.SERVICE_STREAM, wire.make_nonce()))
        fake_server.recv(4096)  # the client's AUTH, whose proof it cannot check
        fake_server.sendall(wire.encode_welcome(os.urandom(32), 0, 0))

    thread = threading.Thread(target=impostor)
    thread.start()
    with pytest.raises(wire.ProtocolError) as err:
        wire.client_handshake(client_sock, KEY, wire.SERVICE_STREAM, new_run_id())
    thread.join()
    assert err.value.reason == "bad-auth"
    client_sock.close()
    fake_server.close()


def test_client_refuses_a_server_of_another_service():
    client_sock, server_sock = socket.socketpair()
    server_sock.sendall(wire.encode_hello(wire.SERVICE_QUERY, wire.make_nonce()))
    with pytest.raises(wire.ProtocolError, match="wrong-service"):
        wire.client_handshake(client_sock, KEY, wire.SERVICE_STREAM, new_run_id())
    client_sock.close()
    server_sock.close()


def test_truncated_frame_is_reported_as_truncated():
    client_sock, server_sock = socket.socketpair()
    client, server = session_pair()
    raw = wire.encode_tensor(client, wire.DATA, new_run_id(), 0, feature(0), "NCHW")
    client_sock.sendall(raw[:len(raw) // 2])
    client_sock.close()
    with pytest.raises(wire.ProtocolError) as err:
        wire.read_frame(wire.socket_reader(server_sock), server)
    assert err.value.reason == "truncated"
    server_sock.close()
