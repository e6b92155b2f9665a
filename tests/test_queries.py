"""Black-box queries through a real `python -m device_agents serve-queries` process and a real ONNX
model; authentication, batching and request bounds of the query server."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from device_agents import protocol as wire
from device_agents.fileio import sha256_file
from device_agents.queries import QueryClient, QueryServer

from wire_support import KEY, connect, export_tiny_onnx, new_run_id, wait_for, write_key_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    pytest.importorskip("torch")
    path = str(tmp_path_factory.mktemp("model") / "device.onnx")
    return path, export_tiny_onnx(path)


@pytest.fixture
def key_file(tmp_path):
    return write_key_file(tmp_path / "run.key")


@pytest.fixture
def server_process(onnx_model, key_file):
    path, _ = onnx_model
    process = subprocess.Popen(
        [sys.executable, "-m", "device_agents", "serve-queries", "--artifact", path, "--sha256", sha256_file(path),
         "--format", "onnx", "--key-file", key_file, "--max-batch", "16"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        yield json.loads(line)["port"]
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_queries_go_through_the_served_model(server_process, onnx_model):
    _, reference = onnx_model
    images = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    with QueryClient("127.0.0.1", server_process, KEY) as client:
        features = client.query(images)  # 3 requests: batches of 16, 16 and 8
        again = client.query(images[:1])
    np.testing.assert_allclose(features, reference(images), atol=1e-5)
    np.testing.assert_array_equal(again, features[:1])


def test_wrong_key_is_refused_and_the_server_keeps_serving(server_process, onnx_model):
    images = np.zeros((1, 1, 8, 8), np.float32)
    with QueryClient("127.0.0.1", server_process, b"w" * 32) as intruder:
        with pytest.raises(wire.ProtocolError, match="bad-auth"):
            intruder.query(images)
    with QueryClient("127.0.0.1", server_process, KEY) as client:
        np.testing.assert_allclose(client.query(images), onnx_model[1](images), atol=1e-5)


def test_serve_queries_refuses_a_wrong_sha256(onnx_model, key_file):
    path, _ = onnx_model
    result = subprocess.run(
        [sys.executable, "-m", "device_agents", "serve-queries", "--artifact", path, "--sha256", "0" * 64,
         "--format", "onnx", "--key-file", key_file], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "sha256" in result.stderr


class Doubler:
    """A runner standing in for the runtime in the request-bound checks."""

    def run(self, x):
        assert x.shape[0] == 1
        return x[:, :, :2, :2] * 2


@pytest.fixture
def local_server():
    server = QueryServer(Doubler(), KEY, input_shape=[1, 1, 4, 4], max_batch=4)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _raw_query(server, batch):
    sock, session, welcome, recv_exact = connect(server.port, service=wire.SERVICE_QUERY)
    assert welcome.max_batch == 4
    sock.sendall(wire.encode_tensor(session, wire.QUERY, new_run_id(), 0, batch, "NCHW"))
    try:
        return wire.decode_tensor(wire.read_frame(recv_exact, session), wire.RESULT).array()
    finally:
        sock.close()


def test_a_query_returns_one_feature_per_image(local_server):
    batch = np.arange(48, dtype=np.float32).reshape(3, 1, 4, 4)
    np.testing.assert_array_equal(_raw_query(local_server, batch), batch[:, :, :2, :2] * 2)


@pytest.mark.parametrize("batch", [
    np.zeros((5, 1, 4, 4), np.float32),  # over the max batch: refused from the prefix, never read
    np.zeros((2, 1, 4, 5), np.float32),
    np.zeros((2, 1, 4, 4), np.float64),
    np.zeros((2, 16), np.float32),
])
def test_bad_requests_are_refused(local_server, batch):
    with pytest.raises((wire.ProtocolError, ConnectionError)):
        _raw_query(local_server, batch)
    wait_for(lambda: sum(local_server.rejections.values()) == 1)


def test_stream_key_handshake_cannot_open_a_query_session(local_server):
    with pytest.raises(wire.ProtocolError, match="wrong-service"):
        connect(local_server.port, service=wire.SERVICE_STREAM)
