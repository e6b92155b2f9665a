"""Helpers shared by the wire tests (protocol, stream, collector, queries): real sockets only."""

import os
import socket
import threading
import time
import uuid

import numpy as np

from device_agents import protocol as wire

KEY = bytes(range(32))
SHAPE = (4, 4, 4)


def new_run_id():
    return uuid.uuid4().hex


def meta(count, shape=SHAPE):
    return {"dtype": "float32", "shape": list(shape), "layout": "NCHW", "count": count}


def feature(index, shape=SHAPE):
    """A feature whose every value identifies its index, so misplaced or stale frames show."""
    return (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 1000.0 * index)


def wait_for(predicate, timeout=20.0):
    """Wait until ``predicate()`` is true (a bounded wait for another thread, not a timing check)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within {}s".format(timeout))
        time.sleep(0.01)


def log_records(store_dir, run_id, shape=SHAPE):
    """How many frame records a run's log holds (sealed or not): each frame must be written once."""
    for name in (run_id, run_id + ".partial"):
        path = os.path.join(store_dir, name, "frames.log")
        if os.path.exists(path):
            record = 36 + 4 * int(np.prod(shape))
            size = os.path.getsize(path)
            assert size % record == 0
            return size // record
    return 0


def connect(port, key=KEY, run_id=None, service=wire.SERVICE_STREAM):
    """A raw authenticated client: (socket, session, welcome, recv_exact)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    session, welcome, recv_exact = wire.client_handshake(sock, key, service, run_id or new_run_id())
    return sock, session, welcome, recv_exact


def data_frame(session, run_id, seq, array=None, layout="NCHW"):
    array = feature(seq) if array is None else array
    return wire.encode_tensor(session, wire.DATA, run_id, seq, array, layout, seq, seq + 1)


def closed_by_peer(sock):
    """True once the peer has closed ``sock`` (reads any frames it sent before closing)."""
    sock.settimeout(10)
    try:
        while sock.recv(4096):
            pass
    except ConnectionError:
        pass
    return True


class CuttingProxy:
    """Forwards TCP to ``target_port``; the first connection is cut after ``cut_after`` bytes
    from the client (mid-frame), later connections are forwarded intact."""

    def __init__(self, target_port, cut_after):
        self.target_port = target_port
        self.cut_after = cut_after
        self.connections = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut_after if self.connections == 1 else None
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            pair = (client, upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, limit, pair), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None, pair), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, limit, pair):
        forwarded = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and forwarded + len(data) >= limit:
                    dst.sendall(data[:limit - forwarded])
                    break
                dst.sendall(data)
                forwarded += len(data)
        except OSError:
            pass
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self._stop = True
        self._listener.close()


def export_tiny_onnx(path):
    """Export a conv + relu device part ([1,1,8,8] -> [1,3,6,6]) with torch; return its reference."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU()).eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), path, input_names=["x"], output_names=["y"],
                      dynamo=False)

    def reference(images):
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(images))).numpy()

    return reference


def write_key_file(path, key=KEY):
    with open(path, "w") as handle:
        handle.write(key.hex())
    os.chmod(path, 0o600)
    return str(path)
