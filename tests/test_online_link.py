"""The online phase over a real shaped link: a device in its own network namespace behind a veth pair
whose device-side egress is shaped with tc HTB to 8 Mbit/s. The measured upload goodput is within
15 % of the shaped rate, and the measured end-to-end median within 20 % of the sum of the measured
parts' medians (device part + transfer + cloud part); online answers equal the offline ones."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import netns
from agent_support import REPO
from cloud_side.collector import CollectorThread, read_features
from cloud_side.online import OnlineServerThread, top1
from device_agents.fileio import sha256_file
from device_agents.runtime import load_runner
from edgekit import results
from edgekit.cli import main
from online_support import export_cloud_part
from sshd import SshServer, require
from wire_support import write_key_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RATE_MBIT = 8
FEATURE = (8, 24, 24)  # 18,432 bytes, as LeNet's conv1
COUNT = 20
KEY = b"\x33" * 32
RUN_ID = "5" * 32


@pytest.fixture
def shaped_host():
    require(netns.available(), "root, iproute2 and tc (network namespaces, HTB shaping)")
    with netns.Namespace(rate=f"{RATE_MBIT}mbit") as host:
        yield host


def export_device_part(directory):
    import warnings

    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, FEATURE[0], 5), torch.nn.ReLU()).eval()
    path = os.path.join(str(directory), "device.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), path, input_names=["x"], output_names=["feature"],
                          dynamo=False)
    return path


def assert_parts_add_up(goodput_mbps, e2e_p50, device_p50, transfer_p50, cloud_p50):
    assert abs(goodput_mbps - RATE_MBIT) <= 0.15 * RATE_MBIT, goodput_mbps
    parts = device_p50 + transfer_p50 + cloud_p50
    assert abs(e2e_p50 - parts) <= 0.2 * parts, (e2e_p50, device_p50, transfer_p50, cloud_p50)


def test_agent_on_a_shaped_link_measures_the_shaped_rate_and_parts_that_add_up(shaped_host, tmp_path):
    model = export_device_part(tmp_path)
    cloud_part = export_cloud_part(tmp_path, FEATURE)
    np.save(tmp_path / "inputs.npy", np.random.default_rng(0).random((COUNT, 1, 28, 28), dtype=np.float32))
    expect = {"dtype": "float32", "shape": list(FEATURE), "layout": "NCHW", "count": COUNT}
    store = str(tmp_path / "store")
    with CollectorThread(store, host=shaped_host.gateway) as collector, \
            OnlineServerThread(host=shaped_host.gateway) as server:
        collector.register_run(RUN_ID, KEY, expect)
        server.register_run(RUN_ID, KEY, cloud_part, expect)
        spec = {"run_id": RUN_ID,
                "artifact": {"path": "device.onnx", "sha256": sha256_file(model), "format": "onnx",
                             "input": {"name": "x", "shape": [1, 1, 28, 28], "dtype": "float32"},
                             "output": {"name": "feature", "shape": [1] + list(FEATURE), "dtype": "float32",
                                        "layout": "NCHW"}},
                "inputs": {"path": "inputs.npy"}, "warmup": 5, "repetitions": 1, "power": {"probe": "none"},
                "cloud": {"host": shaped_host.gateway, "port": collector.port,
                          "key_file": write_key_file(tmp_path / "run.key", KEY)},
                "online": {"port": server.port, "repetitions": 2}, "output_dir": "out"}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        agent = shaped_host.popen([sys.executable, "-m", "device_agents", "run", str(tmp_path / "spec.json")],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, stderr = agent.communicate(timeout=240)
        assert agent.returncode == 0, stderr
        server.finish_run(RUN_ID)
        collected = read_features(store, RUN_ID)
    online = json.loads((tmp_path / "out" / "report.json").read_text())["online"]
    link = online["link"]
    assert_parts_add_up(link["goodput"]["mbps"], online["statistics"]["p50_ms"],
                        online["device_statistics"]["p50_ms"], link["transfer"]["p50_ms"],
                        online["cloud_statistics"]["p50_ms"])
    # 18 KB at 8 Mbit/s take about 18 ms: the link, not the loopback, carried them
    assert link["transfer"]["p50_ms"] > 15
    records = pd.read_csv(tmp_path / "out" / "online.csv")
    np.testing.assert_array_equal(records["prediction"], np.tile(top1(load_runner(cloud_part), collected), 2))


EXPERIMENT = """
name = "shaped"
model = "lenet"
dataset = "mnist-subset"
splits = ["conv1", "fc1"]
devices = ["pi"]
images = 20
attacked_images = 1
warmup = 5

[train]
epochs = 1
limit = 500

[[defences]]
kind = "none"

[[defences]]
kind = "gaussian"
sigma = 0.5

[collector]
listen = "{gateway}"
address = "{gateway}"
"""


def test_sweep_on_a_board_over_ssh_behind_a_shaped_link(shaped_host, edgekit_home, tmp_path, monkeypatch):
    """A board reached over SSH in its own namespace: the sweep's online columns on its shaped link."""
    server = SshServer(tmp_path / "sshd", host=shaped_host.address, port=22, netns=shaped_host.name).start()
    try:
        (edgekit_home / ".ssh" / "known_hosts").write_text(server.known_hosts_line)
        inventory = edgekit_home / "devices.toml"
        inventory.write_text(server.device_toml("pi", workdir=str(edgekit_home / "pi-work")))
        monkeypatch.setenv("EDGEKIT_DEVICES", str(inventory))
        experiment = tmp_path / "shaped.toml"
        experiment.write_text(EXPERIMENT.format(gateway=shaped_host.gateway))
        assert main(["run", str(experiment), "--output", str(tmp_path / "out")]) == 0
    finally:
        server.stop()
    (run,) = results.run_dirs(tmp_path / "out")
    summary = results.load(run).set_index("configuration")
    assert (summary["status"] == "ok").all()
    assert (summary["online_accuracy"] == summary["accuracy"]).all()  # the device-applied noise too
    conv1 = summary.loc["pi_conv1_onnx_fp32_none"]
    assert_parts_add_up(conv1["link_upload_mbps"], conv1["e2e_ms_p50"], conv1["latency_ms_p50"],
                        conv1["transfer_ms_p50"], conv1["cloud_ms_p50"])
    fc1 = summary.loc["pi_fc1_onnx_fp32_none"]
    assert fc1["e2e_ms_p50"] < conv1["e2e_ms_p50"] / 4  # 480 B beat 18 KB on a slow link
    online = results.load(run, table="online_inferences")
    assert len(online) == 4 * 20 and set(online["configuration"]) == set(summary.index)
