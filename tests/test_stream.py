"""FeatureStreamer against a real collector: cut connections, a restarted and a late cloud,
refusals; every frame is stored exactly once and read back in order."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cloud_side.collector import CollectorThread, read_run
from device_agents import protocol as wire
from device_agents.errors import AgentError
from device_agents.fileio import sha256_file
from device_agents.stream import FeatureStreamer, _Item, _Outbox

from wire_support import (
    KEY, CuttingProxy, export_tiny_onnx, feature, log_records, meta, new_run_id, wait_for, write_key_file,
)
from sshd import free_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FRAME_BYTES = wire.PREFIX.size + 76 + 4 * 64 + wire.MAC_SIZE  # one DATA frame of a (4, 4, 4) feature


def _expect_intact(store, run_id, count):
    run = read_run(store, run_id)
    np.testing.assert_array_equal(run.features, np.stack([feature(i) for i in range(count)]))
    np.testing.assert_array_equal(run.start_ns, np.arange(count))
    np.testing.assert_array_equal(run.end_ns, np.arange(count) + 7)
    assert log_records(store, run_id) == count  # nothing written twice


def _put(streamer, indices):
    for i in indices:
        streamer.put(i, feature(i), i, i + 7)


def test_connection_cut_mid_frame_loses_and_duplicates_nothing(tmp_path):
    store, run_id, count = str(tmp_path / "store"), new_run_id(), 200
    with CollectorThread(store) as collector:
        collector.register_run(run_id, KEY, meta(count))
        auth_bytes = wire.PREFIX.size + 80
        proxy = CuttingProxy(collector.port, cut_after=auth_bytes + 45 * FRAME_BYTES + FRAME_BYTES // 2)
        streamer = FeatureStreamer("127.0.0.1", proxy.port, KEY, run_id, meta(count), str(tmp_path / "spill"),
                                   window=32)
        _put(streamer, range(count))
        stats = streamer.close(timeout=60)
        proxy.close()
        assert set(collector.rejections) <= {"truncated"}  # the cut, if the collector saw it as such
    assert proxy.connections >= 2 and stats["reconnects"] >= 1
    assert stats["sent"] == stats["acked"] == count
    assert stats["resent"] <= 32  # at most the unacknowledged window, never the whole run
    _expect_intact(store, run_id, count)


def test_collector_restart_mid_run(tmp_path):
    store, run_id, count = str(tmp_path / "store"), new_run_id(), 120
    collector = CollectorThread(store).start()
    port = collector.port
    collector.register_run(run_id, KEY, meta(count))
    streamer = FeatureStreamer("127.0.0.1", port, KEY, run_id, meta(count), str(tmp_path / "spill"),
                               backoff_max=0.2)
    _put(streamer, range(60))
    wait_for(lambda: log_records(store, run_id) == 60)
    collector.stop()
    _put(streamer, range(60, count))  # the cloud is down: queued, nothing lost
    with CollectorThread(store, port=port) as restarted:
        restarted.register_run(run_id, KEY, meta(count))
        stats = streamer.close(timeout=60)
        assert restarted.wait_sealed(run_id, 10)
    assert stats["reconnects"] >= 1 and stats["acked"] == count
    _expect_intact(store, run_id, count)


def test_unreachable_cloud_spills_to_disk_then_delivers(tmp_path):
    store, run_id, count = str(tmp_path / "store"), new_run_id(), 100
    spill_dir = str(tmp_path / "spill")
    port = free_port()
    streamer = FeatureStreamer("127.0.0.1", port, KEY, run_id, meta(count), spill_dir,
                               max_queue=8, backoff_max=0.2)
    _put(streamer, range(count))
    spill_files = [os.path.join(spill_dir, name) for name in os.listdir(spill_dir)]
    assert len(spill_files) == 1  # 8 frames in memory, the other 92 on disk
    assert os.path.getsize(spill_files[0]) == 92 * (28 + 4 * 64)
    with CollectorThread(store, port=port) as collector:
        collector.register_run(run_id, KEY, meta(count))
        stats = streamer.close(timeout=60)
    assert stats["spilled"] == 92 and stats["acked"] == count
    assert os.listdir(spill_dir) == []
    _expect_intact(store, run_id, count)


def test_refused_stream_fails_close_with_the_reason(tmp_path):
    run_id = new_run_id()
    with CollectorThread(str(tmp_path / "store")) as collector:
        collector.register_run(run_id, KEY, meta(3))
        streamer = FeatureStreamer("127.0.0.1", collector.port, b"w" * 32, run_id, meta(3),
                                   str(tmp_path / "spill"))
        _put(streamer, range(3))
        with pytest.raises(AgentError, match="bad-auth") as err:
            streamer.close(timeout=60)
    assert err.value.stats["acked"] == 0


def test_a_collector_that_does_not_know_the_run_yet_is_retried(tmp_path):
    store, run_id, count = str(tmp_path / "store"), new_run_id(), 5
    with CollectorThread(store) as collector:  # restarted, the run not registered again yet
        streamer = FeatureStreamer("127.0.0.1", collector.port, KEY, run_id, meta(count), str(tmp_path / "spill"),
                                   backoff_max=0.1)
        _put(streamer, range(count))
        wait_for(lambda: collector.rejections["unknown-run"] >= 2)
        collector.register_run(run_id, KEY, meta(count))
        stats = streamer.close(timeout=60)
    assert stats["acked"] == count
    _expect_intact(store, run_id, count)


def test_a_closed_outbox_gives_the_sender_nothing_more(tmp_path):
    outbox = _Outbox(1, str(tmp_path), "run", wake_at=1)
    for seq in range(3):  # one in memory, two spilled
        outbox.push(_Item(seq, 0, 0, b"x"))
    outbox.sync()
    outbox.close()  # abort(), while the sender may still be sending
    outbox.push(_Item(3, 0, 0, b"x"))
    assert outbox.pop() is None
    assert os.listdir(str(tmp_path)) == []


def test_close_times_out_when_the_cloud_never_appears(tmp_path):
    streamer = FeatureStreamer("127.0.0.1", free_port(), KEY, new_run_id(), meta(2), str(tmp_path / "spill"),
                               max_queue=1)
    _put(streamer, range(2))
    with pytest.raises(AgentError, match="not sealed"):
        streamer.close(timeout=0.3)
    assert os.listdir(str(tmp_path / "spill")) == []  # abandoned spill files are removed


def test_put_refuses_features_that_do_not_match_the_run(tmp_path):
    streamer = FeatureStreamer("127.0.0.1", free_port(), KEY, new_run_id(), meta(2), str(tmp_path / "spill"))
    with pytest.raises(ValueError):
        streamer.put(0, np.zeros((4, 4, 2), np.float32), 0, 0)
    with pytest.raises(ValueError):
        streamer.put(0, feature(0).astype(np.float64), 0, 0)
    with pytest.raises(ValueError):
        streamer.put(2, feature(2), 0, 0)
    streamer.abort()


def test_a_real_agent_process_streams_its_features(tmp_path):
    pytest.importorskip("torch")
    reference = export_tiny_onnx(str(tmp_path / "device.onnx"))
    images = np.random.default_rng(1).random((30, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "inputs.npy", images)
    write_key_file(tmp_path / "run.key")
    run_id, store = new_run_id(), str(tmp_path / "store")
    expect = {"dtype": "float32", "shape": [3, 6, 6], "layout": "NCHW", "count": len(images)}
    with CollectorThread(store) as collector:
        collector.register_run(run_id, KEY, expect)
        spec = {"run_id": run_id,
                "artifact": {"path": "device.onnx", "sha256": sha256_file(str(tmp_path / "device.onnx")),
                             "format": "onnx", "input": {"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"},
                             "output": {"name": "y", "shape": [1, 3, 6, 6], "dtype": "float32", "layout": "NCHW"}},
                "inputs": {"path": "inputs.npy"}, "warmup": 1,
                "power": {"probe": "none", "baseline_s": 0},
                "cloud": {"host": "127.0.0.1", "port": collector.port, "key_file": "run.key"},
                "output_dir": "out"}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        agent = subprocess.run([sys.executable, "-m", "device_agents", "run", str(tmp_path / "spec.json")],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
        assert agent.returncode == 0, agent.stderr
        assert collector.wait_sealed(run_id, 10)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["sink"]["acked"] == len(images)
    run = read_run(store, run_id)
    np.testing.assert_allclose(run.features, reference(images), atol=1e-5)
    assert np.all(run.end_ns > run.start_ns)


def test_spilled_frames_are_fsynced_in_batches_while_the_cloud_is_down(tmp_path, monkeypatch):
    synced_sizes = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced_sizes.append(os.fstat(fd).st_size) or fsync(fd))
    streamer = FeatureStreamer("127.0.0.1", free_port(), KEY, new_run_id(), meta(100), str(tmp_path / "spill"),
                               max_queue=8, backoff_max=0.2)
    _put(streamer, range(100))
    wait_for(lambda: 92 * (28 + 4 * 64) in synced_sizes)  # every spilled record is durable...
    assert len(synced_sizes) < 92  # ...without one fsync per frame
    streamer.abort()
