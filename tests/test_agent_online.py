"""The agent's online phase as the deployment runs it (``python -m device_agents run``), against the
real online server and collector on loopback, and against a fake cloud whose answers are forged,
tampered with, replayed or stale: each of those is refused and the run fails saying why."""

import csv
import os

import numpy as np
import pytest

from agent_support import OUTPUT_SHAPE, RUN_ID, board, export_models, read_json, run_agent, write_shard, write_spec
from cloud_side.collector import CollectorThread, read_features
from cloud_side.online import OnlineServerThread, top1
from device_agents.defences import Defence, apply_defence
from device_agents.runtime import load_runner
from online_support import FakeCloud, export_cloud_part, forged, honest, replayed, stale, tampered
from wire_support import write_key_file

pytestmark = pytest.mark.slow

KEY = b"\x11" * 32
COUNT = 10
DEFENCE = {"kind": "gaussian", "sigma": 0.25, "seed": 3}
ORIN_VDD_IN_W = 6.005248  # the Orin Nano fixture's constant VDD_IN reading (5072 mV x 1184 mA)
EXPECT = {"dtype": "float32", "shape": list(OUTPUT_SHAPE), "layout": "NCHW", "count": COUNT}


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    directory = tmp_path_factory.mktemp("parts")
    return export_models(str(directory)), export_cloud_part(directory, OUTPUT_SHAPE)


def online_spec(tmp_path, models, collector_port, online, **overrides):
    shard = write_shard(str(tmp_path / "inputs.npy"), count=COUNT)
    key_file = write_key_file(tmp_path / "run.key", KEY)
    return shard, write_spec(str(tmp_path), models["onnx"], "onnx", shard,
                             cloud={"host": "127.0.0.1", "port": collector_port, "key_file": key_file},
                             online=online, **overrides)


def read_online(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_online_answers_match_the_cloud_part_on_the_collected_features(parts, tmp_path):
    models, cloud_part = parts
    store = str(tmp_path / "store")
    with CollectorThread(store) as collector, OnlineServerThread() as server:
        collector.register_run(RUN_ID, KEY, EXPECT)
        server.register_run(RUN_ID, KEY, cloud_part, EXPECT)
        shard, spec = online_spec(tmp_path, models, collector.port,
                                  {"port": server.port, "repetitions": 2, "warmup": 2, "rtt_samples": 5,
                                   "transfer_samples": 5, "goodput_seconds": 0.3},
                                  defence=DEFENCE,
                                  power={"probe": "auto", "hz": 50, "window": 4, "baseline_s": 0.2,
                                         "sysfs_root": board("jetson-orin-nano"), "vcgencmd": "false"})
        done = run_agent("run", spec)
        assert done.returncode == 0, done.stderr
        log = server.finish_run(RUN_ID)
        collected = read_features(store, RUN_ID)
        assert server.rejections == {}
    out = str(tmp_path / "out")
    report = read_json(os.path.join(out, "report.json"))
    online = report["online"]
    rows = read_online(os.path.join(out, "online.csv"))
    assert [(int(r["image"]), int(r["repetition"])) for r in rows] == [(i, k) for k in range(2) for i in range(COUNT)]
    assert log.answers == 2 + 2 * COUNT  # warm-up included

    # the device sent what the timed loop sent (same defence, seed, index); the cloud answered for it
    expected = top1(load_runner(cloud_part), collected)
    assert [int(r["prediction"]) for r in rows] == list(expected) * 2
    defence = Defence.from_dict(DEFENCE)
    device = load_runner({"path": models["onnx"], "sha256": report["spec"]["artifact"]["sha256"], "format": "onnx"})
    images = np.load(shard)
    sent = np.stack([apply_defence(defence, device.run(images[i:i + 1])[0], i) for i in range(COUNT)])
    np.testing.assert_array_equal(collected, sent)

    for row in rows:
        assert float(row["e2e_ms"]) > float(row["device_ms"]) + float(row["cloud_ms"]) > 0
        assert float(row["server_ms"]) >= float(row["cloud_ms"])
    assert online["statistics"]["count"] == 2 * COUNT and online["statistics"]["warmup_count"] == 2
    link = online["link"]
    assert link["rtt"]["count"] == 5 and link["transfer"]["count"] == 5 and link["goodput"]["mbps"] > 0
    assert link["feature_bytes"] == 4 * int(np.prod(OUTPUT_SHAPE))
    # the board has a probe: the online phase's energy is measured in windows, as the timed loop's
    energy = online["energy"]
    assert sum(w["inferences"] for w in energy["windows"]) == 2 * COUNT
    seconds = sum(w["end_ns"] - w["start_ns"] for w in energy["windows"]) / 1e9
    assert energy["total_j"]["gross"]["VDD_IN"] == pytest.approx(ORIN_VDD_IN_W * seconds, rel=1e-6)
    assert energy["windows"][0]["start_ns"] == int(rows[0]["start_ns"])
    assert energy["windows"][-1]["end_ns"] == int(rows[-1]["end_ns"])


@pytest.mark.parametrize("answer", [forged, tampered, replayed, stale], ids=lambda f: f.__name__)
def test_agent_refuses_answers_that_are_not_the_clouds_own(parts, tmp_path, answer):
    models, _ = parts
    with CollectorThread(str(tmp_path / "store")) as collector, FakeCloud(KEY, answer) as cloud:
        collector.register_run(RUN_ID, KEY, EXPECT)
        _, spec = online_spec(tmp_path, models, collector.port,
                              {"port": cloud.port, "warmup": 0, "rtt_samples": 2, "transfer_samples": 2,
                               "goodput_seconds": 0.1})
        done = run_agent("run", spec)
    assert done.returncode == 1
    report = read_json(str(tmp_path / "out" / "report.json"))
    reason = "unexpected-frame" if answer is stale else "bad-mac"
    assert report["status"] == "failed" and "answer was refused" in report["error"] and reason in report["error"]
    assert not os.path.exists(str(tmp_path / "out" / "online.csv"))
    assert cloud.answers_sent <= 2  # refused at the first bad answer (a replay needs one honest answer first)


def test_an_honest_fake_cloud_is_accepted(parts, tmp_path):
    """The fake cloud itself speaks the protocol: the refusals above come from the answers alone."""
    models, _ = parts
    with CollectorThread(str(tmp_path / "store")) as collector, FakeCloud(KEY, honest) as cloud:
        collector.register_run(RUN_ID, KEY, EXPECT)
        _, spec = online_spec(tmp_path, models, collector.port,
                              {"port": cloud.port, "warmup": 0, "rtt_samples": 2, "transfer_samples": 2,
                               "goodput_seconds": 0.1})
        done = run_agent("run", spec)
    assert done.returncode == 0, done.stderr
    assert cloud.answers_sent == COUNT * 2  # write_spec's two repetitions


@pytest.mark.parametrize("online, cloud, message", [
    ({"port": 9}, None, "online needs cloud"),
    ({"port": 0}, "cloud", "online.port must be an integer 1-65535"),
    ({"port": 9, "goodput_seconds": 0}, "cloud", "online.goodput_seconds must be a number > 0"),
    ({"port": 9, "rtt_samples": 0}, "cloud", "online.rtt_samples must be an integer >= 1"),
    ({"port": 9, "latency": 1}, "cloud", "online has unknown keys ['latency']"),
])
def test_bad_online_settings_fail_the_run_with_one_line(parts, tmp_path, online, cloud, message):
    models, _ = parts
    shard = write_shard(str(tmp_path / "inputs.npy"), count=2)
    cloud = {"host": "127.0.0.1", "port": 9, "key_file": write_key_file(tmp_path / "run.key", KEY)} if cloud else None
    done = run_agent("run", write_spec(str(tmp_path), models["onnx"], "onnx", shard, cloud=cloud, online=online))
    assert done.returncode == 1
    assert message in read_json(str(tmp_path / "out" / "report.json"))["error"]
