"""Helpers for the online-phase tests: a cloud part exported with torch, and a fake cloud that holds
the run key but answers as a test tells it to (honestly, forged, tampered, replayed or stale)."""

import os
import socket
import threading
import warnings

import numpy as np

from device_agents import protocol as wire
from device_agents.fileio import sha256_file


def export_cloud_part(directory, feature_shape, classes=10, seed=0):
    """A flatten + linear cloud part ONNX file taking ``[1, *feature_shape]``; its runtime artifact dict."""
    import torch

    torch.manual_seed(seed)
    size = int(np.prod(feature_shape))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size, classes)).eval()
    path = os.path.join(str(directory), "cloud.onnx")
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and enough here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros((1,) + tuple(feature_shape)),), path, input_names=["feature"],
                          output_names=["logits"], dynamo=False)
    return {"path": path, "sha256": sha256_file(path), "format": "onnx", "input": {"name": "feature"},
            "output": {"name": "logits"}}


def honest(session, run_id, tensor, answered):
    return wire.encode_answer(session, run_id, tensor.seq, 1, 1000, 2000)


def forged(session, run_id, tensor, answered):
    """Sealed by someone without the session keys."""
    intruder = wire.Session(os.urandom(32), os.urandom(32))
    return intruder.seal(wire.ANSWER, wire._ANSWER.pack(bytes.fromhex(run_id), tensor.seq, 1, 1000, 2000))


def tampered(session, run_id, tensor, answered):
    """An honest answer whose predicted class is changed on the way."""
    raw = bytearray(honest(session, run_id, tensor, answered))
    raw[wire.PREFIX.size + 16 + 8] ^= 0x01
    return bytes(raw)


def replayed(session, run_id, tensor, answered):
    """The first answer of the connection, sent again for every later inference."""
    return answered[0] if answered else honest(session, run_id, tensor, answered)


def stale(session, run_id, tensor, answered):
    """Authentic, but answering the previous image instead of this one."""
    return wire.encode_answer(session, run_id, max(tensor.seq, 1) - 1, 1, 1000, 2000) if answered \
        else honest(session, run_id, tensor, answered)


class FakeCloud:
    """An online service on 127.0.0.1 that knows ``key`` and answers INFER with ``answer(...)``.

    PING and DATA get their honest PONG and ACK, so the agent gets as far as its online inferences.
    """

    def __init__(self, key, answer=honest):
        self.key = key
        self.answer = answer
        self.answers_sent = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                try:
                    self._session(conn)
                except (OSError, wire.ProtocolError):
                    pass

    def _session(self, conn):
        conn.settimeout(30)
        session, auth, recv_exact = wire.server_handshake(conn, wire.SERVICE_ONLINE, lambda run_id: self.key)
        answered = []
        received = 0
        while True:
            frame = wire.read_frame(recv_exact, session)
            if frame.ftype == wire.PING:
                conn.sendall(wire.encode_ping(session, wire.PONG, auth.run_id, wire.decode_ping(frame).seq))
            elif frame.ftype == wire.DATA:
                received += 1
                conn.sendall(wire.encode_ack(session, auth.run_id, wire.decode_tensor(frame).seq, received))
            else:
                reply = self.answer(session, auth.run_id, wire.decode_tensor(frame, wire.INFER), answered)
                answered.append(reply)
                self.answers_sent += 1
                conn.sendall(reply)

    def close(self):
        self._listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
