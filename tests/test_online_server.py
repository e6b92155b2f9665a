"""The cloud's online inference server on a real loopback port: a good device is answered with the
cloud part's class while hostile clients are refused one by one (reason logged and counted); the
cloud part runs in the pool, never on the event loop; idle unauthenticated connections lose their slot."""

import logging
import socket
import threading
import time

import numpy as np
import pytest

from cloud_side.online import OnlineServerThread, top1
from device_agents import protocol as wire
from device_agents.cloud_link import CloudLink
from device_agents.linkprobe import measure_goodput, measure_rtt, measure_transfer
from device_agents.runtime import load_runner
from online_support import export_cloud_part
from wire_support import KEY, SHAPE, closed_by_peer, connect, feature, meta, new_run_id, wait_for

COUNT = 6


@pytest.fixture(scope="module")
def cloud_part(tmp_path_factory):
    return export_cloud_part(tmp_path_factory.mktemp("cloud"), SHAPE)


@pytest.fixture
def server():
    with OnlineServerThread(handshake_timeout=5.0) as running:
        yield running


def register(server, cloud_part, keep_features=False):
    run_id = new_run_id()
    server.register_run(run_id, KEY, cloud_part, meta(COUNT), keep_features=keep_features)
    return run_id


def test_a_device_is_answered_with_the_cloud_parts_class(server, cloud_part):
    run_id = register(server, cloud_part, keep_features=True)
    features = np.random.default_rng(0).normal(size=(COUNT,) + SHAPE).astype(np.float32)
    with CloudLink("127.0.0.1", server.port, KEY, run_id, meta(COUNT)) as link:
        assert len(measure_rtt(link, 3)) == 3
        assert len(measure_transfer(link, bytes(4 * 64), 3)) == 3
        assert measure_goodput(link, bytes(4 * 64), 0.2, 0.001)["mbps"] > 0
        answers = [link.infer(i, features[i]) for i in range(COUNT)]
    expected = top1(load_runner(cloud_part), features)
    assert [a.prediction for a in answers] == list(expected) and len(set(expected)) > 1
    assert all(0 < a.cloud_ns <= a.server_ns for a in answers) and [a.seq for a in answers] == list(range(COUNT))
    log = server.finish_run(run_id)
    assert log.answers == COUNT and log.received.all()
    np.testing.assert_array_equal(log.features, features)
    assert server.rejections == {}


def _good_link(server, cloud_part):
    return CloudLink("127.0.0.1", server.port, KEY, register(server, cloud_part), meta(COUNT))


def wrong_key(server, run_id):
    with pytest.raises(wire.ProtocolError, match="refused"):
        connect(server.port, key=b"x" * 32, run_id=run_id, service=wire.SERVICE_ONLINE)


def unknown_run(server, run_id):
    with pytest.raises(wire.ProtocolError, match="refused"):
        connect(server.port, run_id=new_run_id(), service=wire.SERVICE_ONLINE)


def garbage_bytes(server, run_id):
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
    assert closed_by_peer(sock)


def _refused(server, run_id, raw):
    sock, session, _, recv_exact = connect(server.port, run_id=run_id, service=wire.SERVICE_ONLINE)
    sock.sendall(raw(session))
    assert closed_by_peer(sock)


def oversize_infer(server, run_id):
    # announces a payload larger than the run's feature: refused from the prefix, nothing read
    _refused(server, run_id, lambda session: wire.PREFIX.pack(wire.MAGIC, wire.VERSION, wire.INFER, 76, 4 * 65))


def shape_mismatch(server, run_id):
    _refused(server, run_id, lambda s: wire.encode_tensor(s, wire.INFER, run_id, 0, np.zeros((4, 4, 2), np.float32),
                                                          "NCHW"))


def image_out_of_range(server, run_id):
    _refused(server, run_id, lambda s: wire.encode_tensor(s, wire.INFER, run_id, COUNT, feature(0), "NCHW"))


def frame_of_another_run(server, run_id):
    _refused(server, run_id, lambda s: wire.encode_tensor(s, wire.INFER, new_run_id(), 0, feature(0), "NCHW"))


def unexpected_frame(server, run_id):
    _refused(server, run_id, lambda s: wire.encode_end(s, run_id, COUNT))


def replayed_frame(server, run_id):
    sock, session, _, recv_exact = connect(server.port, run_id=run_id, service=wire.SERVICE_ONLINE)
    captured = wire.encode_tensor(session, wire.INFER, run_id, 0, feature(0), "NCHW")
    sock.sendall(captured)
    assert wire.decode_answer(wire.read_frame(recv_exact, session)).seq == 0
    sock.sendall(captured)  # the same frame again on the same session
    assert closed_by_peer(sock)


HOSTILE = {
    wrong_key: "bad-auth", unknown_run: "unknown-run", garbage_bytes: "malformed", oversize_infer: "oversize",
    shape_mismatch: "shape-mismatch", image_out_of_range: "seq-out-of-range", frame_of_another_run: "run-mismatch",
    unexpected_frame: "unexpected-frame", replayed_frame: "bad-mac",
}


@pytest.mark.parametrize("attack", list(HOSTILE), ids=[f.__name__ for f in HOSTILE])
def test_hostile_client_is_refused_while_a_device_is_answered(attack, server, cloud_part, caplog):
    caplog.set_level(logging.WARNING, logger="cloud_side.online")
    reason = HOSTILE[attack]
    with _good_link(server, cloud_part) as good:
        good.infer(0, feature(0))
        attack(server, register(server, cloud_part))
        wait_for(lambda: server.rejections[reason] >= 1)
        assert good.infer(1, feature(1)).seq == 1  # the good device's connection is untouched
    assert f"rejected {reason}" in caplog.text
    assert set(server.rejections) == {reason}


def test_idle_unauthenticated_connections_lose_their_slot(cloud_part):
    with OnlineServerThread(handshake_timeout=0.3, max_connections=2) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        wait_for(lambda: len(server.server._connections) == 2)
        third = socket.create_connection(("127.0.0.1", server.port))
        assert closed_by_peer(third)
        wait_for(lambda: server.rejections["too-many-connections"] == 1)
        for sock in idle:
            assert closed_by_peer(sock)
        assert server.rejections["timeout"] == 2
        with _good_link(server, cloud_part) as link:
            assert link.infer(0, feature(0)).seq == 0


class SlowCloudPart:
    """A cloud part that takes ``seconds`` per call (a big model on a loaded workstation)."""

    def __init__(self, runner, seconds):
        self.runner, self.seconds = runner, seconds

    def run(self, x):
        time.sleep(self.seconds)
        return self.runner.run(x)


def test_a_slow_cloud_part_never_holds_up_other_devices(server, cloud_part):
    """Cloud parts run in the pool: while one device waits for a slow answer, another is served."""
    slow_run = new_run_id()

    async def register_slow():
        server.server.register_run(slow_run, KEY, SlowCloudPart(load_runner(cloud_part), 3.0), meta(COUNT))
    server.call(register_slow())
    slow = CloudLink("127.0.0.1", server.port, KEY, slow_run, meta(COUNT))
    waiting = threading.Thread(target=slow.infer, args=(0, feature(0)))
    waiting.start()
    try:
        wait_for(lambda: server.server._runs[slow_run].writers)
        time.sleep(0.2)  # the slow answer is being computed now
        started = time.monotonic()
        with _good_link(server, cloud_part) as fast:
            fast.ping()
            fast.infer(0, feature(0))
        assert time.monotonic() - started < 2.0
        assert waiting.is_alive()
    finally:
        waiting.join()
        slow.close()
