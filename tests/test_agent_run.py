"""The agent as the deployment runs it: ``python -m device_agents run spec.json`` in a subprocess,
on real ONNX and TFLite files, checked against the runtimes called directly."""

import csv
import glob
import os

import numpy as np
import pytest

from agent_support import (RUN_ID, board, export_models, read_json, run_agent, vcgencmd_for,
                           write_shard, write_spec)
from device_agents.defences import Defence, apply_defence
from sshd import free_port

pytestmark = pytest.mark.slow

# Constant readings of the Orin Nano fixture: VDD_IN = 5072 mV * 1184 mA = 6.005248 W.
ORIN_VDD_IN_W = 6.005248


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return export_models(str(tmp_path_factory.mktemp("models")))


def direct_outputs(model_path, fmt, images):
    """Features from the runtime called directly, one image at a time."""
    if fmt == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        return np.stack([session.run(None, {"x": image[None]})[0][0] for image in images])
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=model_path)
    interpreter.allocate_tensors()
    source, sink = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    outputs = []
    for image in images:
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(sink)[0])
    return np.stack(outputs)


def leftovers(directory):
    return glob.glob(os.path.join(directory, ".tmp-*")) + glob.glob(os.path.join(directory, "spill", "*"))


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_run_reports_latency_energy_records_and_features(models, tmp_path, fmt):
    shard = write_shard(str(tmp_path / "inputs.npy"), count=12)
    root = board("jetson-orin-nano")
    spec = write_spec(str(tmp_path), models[fmt], fmt, shard, defence={"kind": "none"},
                      power={"probe": "auto", "hz": 50, "window": 4, "baseline_s": 0.3,
                             "sysfs_root": root, "vcgencmd": "false"})
    done = run_agent("run", spec)
    assert done.returncode == 0, done.stderr
    out = str(tmp_path / "out")
    report = read_json(os.path.join(out, "report.json"))
    assert report["status"] == "ok" and report["error"] is None

    stats = report["statistics"]
    assert stats["count"] == 24 and stats["warmup_count"] == 3 and stats["first_ms"] > 0
    assert stats["min_ms"] <= stats["p5_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert report["versions"]["runtime"] == ("onnxruntime" if fmt == "onnx" else "ai-edge-litert")
    assert report["defence_statistics"] is None  # no defence: nothing is timed between runtime calls

    with open(os.path.join(out, "records.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["index"]) for r in rows] == list(range(24))
    assert [int(r["repetition"]) for r in rows] == [0] * 12 + [1] * 12
    assert [int(r["image"]) for r in rows] == list(range(12)) * 2
    assert [int(r["window"]) for r in rows] == [k // 4 for k in range(24)]  # spec power.window = 4
    for row in rows:
        assert float(row["latency_ms"]) == pytest.approx((int(row["end_ns"]) - int(row["start_ns"])) / 1e6, abs=1e-6)
    latencies = sorted(float(r["latency_ms"]) for r in rows)
    assert stats["min_ms"] == pytest.approx(latencies[0], abs=1e-6)

    images = np.load(shard)
    features = np.load(os.path.join(out, "features.npy"), allow_pickle=False)
    np.testing.assert_array_equal(features, direct_outputs(models[fmt], fmt, images))
    assert report["sink"]["count"] == 12

    # The fixture's sensors are constant, so every window's gross energy is VDD_IN power times
    # its duration and its net energy (baseline of the same constant power subtracted) is zero.
    energy = report["energy"]
    assert report["probe"]["probe"] == "jetson-ina3221-hwmon" and energy["primary_rail"] == "VDD_IN"
    assert report["boundary"].startswith("Jetson module input (VDD_IN)")
    assert energy["window_inferences"] == 4 and energy["window_choice"].startswith("spec")
    assert energy["baseline_w"]["VDD_IN"] == pytest.approx(ORIN_VDD_IN_W)
    assert len(energy["windows"]) == 6
    for window in energy["windows"]:
        seconds = (window["end_ns"] - window["start_ns"]) / 1e9
        assert window["gross_j"] == pytest.approx(ORIN_VDD_IN_W * seconds, rel=1e-9)
        assert window["net_j"] == pytest.approx(0.0, abs=1e-9)
    assert "few" in " ".join(report["warnings"])  # sub-millisecond windows hold no 50 Hz sample
    assert any("schedutil" in w for w in report["warnings"])
    assert report["device_state"]["platform"]["model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert report["device_state"]["before"]["thermal"][0] == {"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 48.5}

    state = read_json(os.path.join(out, "state.json"))
    assert state["state"] == "done" and state["done"] == state["total"] == 24
    rss = report["rss_mb"]
    assert 0 <= rss["beyond_model"] < 60
    assert report["spec"]["run_id"] == RUN_ID
    assert leftovers(out) == []


def test_defence_on_device_matches_the_cloud_simulation(models, tmp_path):
    shard = write_shard(str(tmp_path / "inputs.npy"), count=6)
    defence = {"kind": "dropout", "rate": 0.5, "seed": 7}
    spec = write_spec(str(tmp_path), models["onnx"], "onnx", shard, defence=defence, repetitions=2)
    done = run_agent("run", spec)
    assert done.returncode == 0, done.stderr
    features = np.load(str(tmp_path / "out" / "features.npy"))
    clean = direct_outputs(models["onnx"], "onnx", np.load(shard))
    expected = np.stack([apply_defence(Defence.from_dict(defence), clean[i], i) for i in range(6)])
    np.testing.assert_array_equal(features, expected)
    assert not np.array_equal(features, clean)
    report = read_json(str(tmp_path / "out" / "report.json"))
    assert report["defence"] == defence
    # the defence runs once per image of the first repetition (the features sent), timed apart
    stats = report["defence_statistics"]
    assert stats["count"] == 6 and report["statistics"]["count"] == 12
    assert stats["first_ms"] is None and stats["warmup_count"] == 0
    assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["max_ms"]


def write_key(path, mode):
    with open(path, "w") as handle:
        handle.write("11" * 32)
    os.chmod(path, mode)
    return os.path.basename(path)


@pytest.mark.parametrize("case, message", [
    ("wrong sha256", "sha256 mismatch"),
    ("shard shape", "input shard"),
    ("shard dtype", "dtype float64"),
    ("probe name", "unknown power probe 'bogus'"),
    ("cloud unreachable", "unreachable"),
    ("key permissions", "group or others"),
])
def test_failures_report_failed_and_leave_no_partial_files(models, tmp_path, case, message):
    directory = str(tmp_path)
    shard_shape, shard_dtype = (1, 8, 8), np.float32
    if case == "shard shape":
        shard_shape = (1, 9, 9)
    if case == "shard dtype":
        shard_dtype = np.float64
    shard = write_shard(os.path.join(directory, "inputs.npy"), count=4, shape=shard_shape, dtype=shard_dtype)
    overrides = {}
    if case == "probe name":
        overrides["power"] = {"probe": "bogus"}
    if case == "cloud unreachable":
        overrides["cloud"] = {"host": "127.0.0.1", "port": free_port(),
                              "key_file": write_key(os.path.join(directory, "run.key"), 0o600)}
    if case == "key permissions":
        overrides["cloud"] = {"host": "127.0.0.1", "port": free_port(),
                              "key_file": write_key(os.path.join(directory, "run.key"), 0o644)}
    spec = write_spec(directory, models["onnx"], "onnx", shard, **overrides)
    if case == "wrong sha256":
        raw = read_json(spec)
        raw["artifact"]["sha256"] = "0" * 64
        write_spec(directory, models["onnx"], "onnx", shard, artifact=raw["artifact"])

    done = run_agent("run", spec)
    assert done.returncode != 0
    out = os.path.join(directory, "out")
    report = read_json(os.path.join(out, "report.json"))
    assert report["status"] == "failed" and message in report["error"], report["error"]
    state = read_json(os.path.join(out, "state.json"))
    assert state["state"] == "failed" and message in state["error"]
    assert sorted(os.listdir(out)) == ["report.json", "state.json"]
    assert message in done.stderr


def test_features_stream_to_the_collector(models, tmp_path):
    from cloud_side.collector import CollectorThread, read_features

    shard = write_shard(str(tmp_path / "inputs.npy"), count=10)
    key_file = write_key(str(tmp_path / "run.key"), 0o600)
    store = str(tmp_path / "store")
    with CollectorThread(store) as collector:
        collector.register_run(RUN_ID, b"\x11" * 32, {"dtype": "float32", "shape": [4, 4, 4],
                                                      "layout": "NCHW", "count": 10})
        spec = write_spec(str(tmp_path), models["onnx"], "onnx", shard,
                          cloud={"host": "127.0.0.1", "port": collector.port, "key_file": key_file},
                          defence={"kind": "gaussian", "sigma": 0.25, "seed": 3})
        done = run_agent("run", spec)
        assert done.returncode == 0, done.stderr
        assert collector.wait_sealed(RUN_ID, 10)
    report = read_json(str(tmp_path / "out" / "report.json"))
    assert report["status"] == "ok" and report["sink"]["acked"] == 10
    assert not os.path.exists(str(tmp_path / "out" / "features.npy"))
    clean = direct_outputs(models["onnx"], "onnx", np.load(shard))
    defence = Defence.from_dict({"kind": "gaussian", "sigma": 0.25, "seed": 3})
    expected = np.stack([apply_defence(defence, clean[i], i) for i in range(10)])
    np.testing.assert_array_equal(read_features(store, RUN_ID), expected)
