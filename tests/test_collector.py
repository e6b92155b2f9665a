"""The collector on a real loopback port: hostile clients are refused one by one, with a logged and
counted reason, while a good device's run completes intact; duplicates are acknowledged, not rewritten."""

import logging
import socket
import threading

import numpy as np
import pytest

from cloud_side.collector import CollectorThread, UnsealedRunError, read_features, read_run
from cloud_side.feature_store import RunStore
from device_agents import protocol as wire
from device_agents.stream import FeatureStreamer

from wire_support import (
    KEY, closed_by_peer, connect, data_frame, feature, log_records, meta, new_run_id, wait_for,
)

GOOD_COUNT = 60


class GoodDevice:
    """A real streamer that sends half its run, waits for the hostile client, then finishes."""

    def __init__(self, collector, store_dir):
        self.run_id = new_run_id()
        collector.register_run(self.run_id, KEY, meta(GOOD_COUNT))
        self.streamer = FeatureStreamer("127.0.0.1", collector.port, KEY, self.run_id, meta(GOOD_COUNT),
                                        str(store_dir / "spill"))
        for i in range(GOOD_COUNT // 2):
            self.streamer.put(i, feature(i), i, i + 1)

    def finish(self, collector, store_dir):
        for i in range(GOOD_COUNT // 2, GOOD_COUNT):
            self.streamer.put(i, feature(i)[None], i, i + 1)  # with a batch of 1: accepted too
        stats = self.streamer.close(timeout=60)
        assert collector.wait_sealed(self.run_id, 10)
        assert stats["sent"] == stats["acked"] == GOOD_COUNT and stats["resent"] == 0
        run = read_run(str(store_dir / "store"), self.run_id)
        np.testing.assert_array_equal(run.features, np.stack([feature(i) for i in range(GOOD_COUNT)]))
        np.testing.assert_array_equal(run.start_ns, np.arange(GOOD_COUNT))


@pytest.fixture
def collector(tmp_path):
    with CollectorThread(str(tmp_path / "store"), handshake_timeout=5.0) as running:
        yield running


def _hostile_run(collector):
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(10))
    return run_id


def wrong_key(collector):
    with pytest.raises(wire.ProtocolError, match="refused"):
        connect(collector.port, key=b"x" * 32, run_id=_hostile_run(collector))


def unknown_run(collector):
    with pytest.raises(wire.ProtocolError, match="refused"):
        connect(collector.port, run_id=new_run_id())


def garbage_bytes(collector):
    sock = socket.create_connection(("127.0.0.1", collector.port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
    assert closed_by_peer(sock)


def truncated_frame(collector):
    run_id = _hostile_run(collector)
    sock, session, _, _ = connect(collector.port, run_id=run_id)
    raw = data_frame(session, run_id, 0)
    sock.sendall(raw[:len(raw) - 10])
    sock.shutdown(socket.SHUT_WR)
    assert closed_by_peer(sock)


def oversize_header(collector):
    sock = socket.create_connection(("127.0.0.1", collector.port))
    sock.sendall(wire.PREFIX.pack(wire.MAGIC, wire.VERSION, wire.AUTH, 60000, 0))
    assert closed_by_peer(sock)


def oversize_payload(collector):
    run_id = _hostile_run(collector)
    sock, _, _, _ = connect(collector.port, run_id=run_id)
    # announces 1 GiB: refused from the prefix alone, nothing that size is read or allocated
    sock.sendall(wire.PREFIX.pack(wire.MAGIC, wire.VERSION, wire.DATA, 76, 1 << 30))
    assert closed_by_peer(sock)


def replayed_handshake(collector):
    run_id = _hostile_run(collector)
    sock = socket.create_connection(("127.0.0.1", collector.port))
    wire.read_frame(wire.socket_reader(sock), None)  # this connection's HELLO
    sock.sendall(_capture_auth(collector.port, run_id))  # an AUTH answered to another one's nonce
    assert closed_by_peer(sock)


def _capture_auth(port, run_id):
    """The AUTH bytes a legitimate client sends on one connection (what an eavesdropper records)."""
    sock = socket.create_connection(("127.0.0.1", port))
    hello = wire.decode_hello(wire.read_frame(wire.socket_reader(sock), None))
    nonce = wire.make_nonce()
    raw = wire.encode_auth(run_id, nonce, wire.client_proof(KEY, wire.SERVICE_STREAM, hello.nonce, nonce, run_id))
    sock.sendall(raw)
    sock.close()
    return raw


def replayed_frame(collector):
    run_id = _hostile_run(collector)
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    captured = data_frame(session, run_id, 0)
    sock.sendall(captured)
    assert wire.decode_ack(wire.read_frame(recv_exact, session)).seq == 0
    sock.close()
    sock, _, _, _ = connect(collector.port, run_id=run_id)  # a new, genuine session
    sock.sendall(captured)  # the frame recorded from the earlier one
    assert closed_by_peer(sock)


def frame_before_handshake(collector):
    run_id = _hostile_run(collector)
    _, session, _, _ = connect(collector.port, run_id=run_id)
    sock = socket.create_connection(("127.0.0.1", collector.port))
    sock.sendall(data_frame(session, run_id, 0))
    assert closed_by_peer(sock)


def _mismatch(collector, array, layout="NCHW"):
    run_id = _hostile_run(collector)
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    sock.sendall(data_frame(session, run_id, 0, array, layout))
    with pytest.raises(wire.ProtocolError, match="refused"):
        wire.decode_ack(wire.read_frame(recv_exact, session))  # the collector says why, then closes
    assert closed_by_peer(sock)


def shape_mismatch(collector):
    _mismatch(collector, np.zeros((4, 4, 2), np.float32))


def dtype_mismatch(collector):
    _mismatch(collector, feature(0).astype(np.int32))  # same size, other dtype


def layout_mismatch(collector):
    _mismatch(collector, feature(0), layout="NHWC")


def frame_of_another_run(collector):
    run_id = _hostile_run(collector)
    sock, session, _, _ = connect(collector.port, run_id=run_id)
    sock.sendall(wire.encode_tensor(session, wire.DATA, new_run_id(), 0, feature(0), "NCHW"))
    assert closed_by_peer(sock)


HOSTILE = {
    wrong_key: "bad-auth", unknown_run: "unknown-run", garbage_bytes: "malformed",
    truncated_frame: "truncated", oversize_header: "oversize", oversize_payload: "oversize",
    replayed_handshake: "bad-auth", replayed_frame: "bad-mac", frame_before_handshake: "unexpected-frame",
    shape_mismatch: "shape-mismatch", dtype_mismatch: "dtype-mismatch", layout_mismatch: "layout-mismatch",
    frame_of_another_run: "run-mismatch",
}


@pytest.mark.parametrize("attack", list(HOSTILE), ids=[f.__name__ for f in HOSTILE])
def test_hostile_client_is_refused_while_a_good_run_completes(attack, collector, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cloud_side.collector")
    reason = HOSTILE[attack]
    good = GoodDevice(collector, tmp_path)
    attack(collector)
    wait_for(lambda: collector.rejections[reason] >= 1)
    assert "rejected {}".format(reason) in caplog.text
    good.finish(collector, tmp_path)
    assert set(collector.rejections) == {reason}


def test_silent_client_is_dropped_after_the_handshake_timeout(tmp_path):
    with CollectorThread(str(tmp_path / "store"), handshake_timeout=0.2) as collector:
        sock = socket.create_connection(("127.0.0.1", collector.port))
        assert closed_by_peer(sock)
        wait_for(lambda: collector.rejections["timeout"] == 1)


def test_duplicates_are_acknowledged_again_and_stored_once(collector, tmp_path):
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(2))
    for _ in range(2):  # the second connection resends what the first already delivered
        sock, session, welcome, recv_exact = connect(collector.port, run_id=run_id)
        for seq in (0, 0):
            sock.sendall(data_frame(session, run_id, seq))
            assert wire.decode_ack(wire.read_frame(recv_exact, session)) == wire.Ack(run_id, 0, 1)
        sock.close()
    assert welcome.next_seq == 1
    assert collector.collector.duplicates == 3
    assert log_records(str(tmp_path / "store"), run_id) == 1


def test_run_is_sealed_only_when_every_frame_and_the_end_arrived(collector, tmp_path):
    store = str(tmp_path / "store")
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(3))
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    for seq, contiguous in ((2, 0), (0, 1)):
        sock.sendall(data_frame(session, run_id, seq))
        assert wire.decode_ack(wire.read_frame(recv_exact, session)) == wire.Ack(run_id, seq, contiguous)
    sock.sendall(wire.encode_end(session, run_id, 3))
    assert wire.decode_end_ack(wire.read_frame(recv_exact, session)) == wire.EndAck(run_id, 3, 2, False)
    with pytest.raises(UnsealedRunError):
        read_features(store, run_id)
    sock.sendall(data_frame(session, run_id, 1))
    assert wire.decode_ack(wire.read_frame(recv_exact, session)).contiguous == 3
    sock.sendall(wire.encode_end(session, run_id, 3))
    assert wire.decode_end_ack(wire.read_frame(recv_exact, session)).sealed
    assert collector.wait_sealed(run_id, 10)
    np.testing.assert_array_equal(read_features(store, run_id), np.stack([feature(i) for i in range(3)]))
    sock.close()


def test_end_with_the_wrong_count_is_refused(collector):
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(3))
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    sock.sendall(wire.encode_end(session, run_id, 4))
    with pytest.raises(wire.ProtocolError, match="count-mismatch"):
        wire.decode_end_ack(wire.read_frame(recv_exact, session))
    wait_for(lambda: collector.rejections["count-mismatch"] == 1)
    sock.close()


def test_a_restarted_collector_resumes_a_run_from_disk_and_cuts_a_torn_tail(tmp_path):
    store = str(tmp_path / "store")
    run_id = new_run_id()
    with CollectorThread(store) as collector:
        collector.register_run(run_id, KEY, meta(3))
        sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
        sock.sendall(data_frame(session, run_id, 0))
        wire.read_frame(recv_exact, session)
        sock.close()
    with open(tmp_path / "store" / (run_id + ".partial") / "frames.log", "ab") as log:
        log.write(b"\x01" * 50)  # a crash in the middle of writing the next record
    with CollectorThread(store) as collector:
        collector.register_run(run_id, KEY, meta(3))
        sock, session, welcome, recv_exact = connect(collector.port, run_id=run_id)
        assert welcome.next_seq == 1
        for seq in (1, 2):
            sock.sendall(data_frame(session, run_id, seq))
            wire.read_frame(recv_exact, session)
        sock.sendall(wire.encode_end(session, run_id, 3))
        assert wire.decode_end_ack(wire.read_frame(recv_exact, session)).sealed
        sock.close()
    np.testing.assert_array_equal(read_features(store, run_id), np.stack([feature(i) for i in range(3)]))
    with CollectorThread(store) as collector:
        with pytest.raises(ValueError, match="already stored"):
            collector.register_run(run_id, KEY, meta(4))


def test_many_devices_at_once(collector, tmp_path):
    runs = [new_run_id() for _ in range(6)]
    results = {}

    def device(run_id):
        streamer = FeatureStreamer("127.0.0.1", collector.port, KEY, run_id, meta(20), str(tmp_path / run_id))
        for i in range(20):
            streamer.put(i, feature(i), 0, 0)
        results[run_id] = streamer.close(timeout=60)

    for run_id in runs:
        collector.register_run(run_id, KEY, meta(20))
    threads = [threading.Thread(target=device, args=(run_id,)) for run_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = np.stack([feature(i) for i in range(20)])
    for run_id in runs:
        assert results[run_id]["acked"] == 20
        np.testing.assert_array_equal(read_features(str(tmp_path / "store"), run_id), expected)


def test_unsealed_and_missing_runs_are_refused_when_read(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_features(str(tmp_path), new_run_id())
    with pytest.raises(ValueError):
        read_features(str(tmp_path), "../../etc/passwd")


def test_frames_that_arrive_together_share_one_fsync_and_one_ack(collector, monkeypatch):
    groups = []
    append = RunStore.append
    monkeypatch.setattr(RunStore, "append", lambda store, frames: groups.append(len(frames)) or append(store, frames))
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(20))
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    sock.sendall(b"".join(data_frame(session, run_id, seq) for seq in range(20)))
    acks = []
    while not acks or acks[-1].contiguous < 20:
        acks.append(wire.decode_ack(wire.read_frame(recv_exact, session)))
    assert sum(groups) == 20 and len(groups) < 20
    assert len(acks) == len(groups)  # in order, each group is acknowledged by one ACK
    sock.close()


def test_a_run_cannot_be_registered_again_while_a_device_streams_it(collector):
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(3))
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    sock.sendall(data_frame(session, run_id, 0))
    wire.read_frame(recv_exact, session)
    with pytest.raises(RuntimeError, match="streaming"):
        collector.register_run(run_id, KEY, meta(3))
    sock.sendall(data_frame(session, run_id, 1))  # the run's store is still open
    assert wire.decode_ack(wire.read_frame(recv_exact, session)).contiguous == 2
    sock.close()

    def registered():
        try:
            collector.register_run(run_id, KEY, meta(3))
        except RuntimeError:
            return False
        return True

    wait_for(registered)  # once the device is gone, registering again resumes the run
    assert connect(collector.port, run_id=run_id)[2].next_seq == 2


def test_a_forgotten_run_is_disconnected_and_unknown_and_its_files_stay(collector, tmp_path):
    run_id = new_run_id()
    collector.register_run(run_id, KEY, meta(3))
    sock, session, _, recv_exact = connect(collector.port, run_id=run_id)
    sock.sendall(data_frame(session, run_id, 0))
    wire.read_frame(recv_exact, session)
    collector.forget_run(run_id)
    assert closed_by_peer(sock)
    with pytest.raises(wire.ProtocolError, match="refused"):
        connect(collector.port, run_id=run_id)
    wait_for(lambda: collector.rejections["unknown-run"] == 1)
    assert log_records(str(tmp_path / "store"), run_id) == 1
    collector.forget_run(run_id)  # forgetting it again does nothing
