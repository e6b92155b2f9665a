"""Black-box queries in the sweep: the attacker's query callable runs the configuration's exported
device part, here in its runtime (``via = "local"``) or through the device agent's query mode
(``via = "agent"``), and the decoder fitted on it is reused only where the answers are the same."""

from types import SimpleNamespace

import numpy as np
import pytest

from device_agents.queries import run_each
from device_agents.runtime import load_runner
from edgekit.devices import load_inventory
from edgekit.experiment.attackers import AttackerPool, reuse_key
from edgekit.experiment.config import NO_DEFENCE, parse_experiment
from edgekit.experiment.plan import Configuration

pytestmark = pytest.mark.timeout(300)

IMAGES = np.random.default_rng(2).random((5, 1, 8, 8), dtype=np.float32)


def experiment(devices=("local",), **blackbox):
    return parse_experiment({"name": "q", "model": "lenet", "dataset": "mnist-subset", "splits": ["conv1"],
                             "devices": list(devices), "formats": ["onnx", "tflite"], "precisions": ["fp32", "int8"],
                             "attacks": [{"kind": "whitebox"}, {"kind": "blackbox", "query_source": "noise",
                                                                **blackbox}]})


def query_of(pool, configuration):
    """The black-box adversary's answers to IMAGES for ``configuration``."""
    with pool.knowledge(pool.experiment.attacks[1], configuration) as knowledge:
        return np.asarray(knowledge.query(IMAGES))


def pool_for(tiny_run, devices=("local",), inventory=None, **blackbox):
    data = SimpleNamespace(x_test=np.zeros((4, 1, 8, 8), np.float32), info=SimpleNamespace(shape=(1, 8, 8)))
    pool = AttackerPool(experiment(devices, **blackbox), data, np.arange(2), tiny_run.model.parent, inventory)
    pool.use_split("conv1", None, {("onnx", "fp32"): tiny_run.manifest_entry()})
    return pool


def onnx_fp32(device="local"):
    return Configuration(device, "conv1", "onnx", "fp32", NO_DEFENCE)


def the_artifact_here(tiny_run):
    return run_each(load_runner(dict(tiny_run.manifest_entry(), path=str(tiny_run.model))), IMAGES)


def test_local_queries_run_the_exported_artifact_in_its_runtime(tiny_run):
    features = query_of(pool_for(tiny_run), onnx_fp32())
    np.testing.assert_array_equal(features, the_artifact_here(tiny_run))


def test_agent_queries_on_the_local_device_equal_the_artifact_here(edgekit_home, tiny_run):
    features = query_of(pool_for(tiny_run, via="agent"), onnx_fp32())
    np.testing.assert_array_equal(features, the_artifact_here(tiny_run))


def test_agent_queries_on_a_board_equal_the_artifact_here(edgekit_home, sshd, tiny_run):
    (edgekit_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line)
    inventory = edgekit_home / "devices.toml"
    inventory.write_text(sshd.device_toml("board", workdir=str(edgekit_home / "board-work")))
    assert "board" in load_inventory(inventory)
    features = query_of(pool_for(tiny_run, devices=("board",), inventory=inventory, via="agent"), onnx_fp32("board"))
    np.testing.assert_array_equal(features, the_artifact_here(tiny_run))
    assert list((edgekit_home / "board-work" / "runs").iterdir()) == []


@pytest.mark.parametrize("via", ["local", "agent"])
def test_blackbox_is_refitted_per_queried_artifact_the_others_per_split(via):
    whitebox, blackbox = experiment(("local", "pi5"), via=via).attacks
    configurations = [Configuration(device, "conv1", fmt, precision, NO_DEFENCE)
                      for device in ("local", "pi5") for fmt in ("onnx", "tflite") for precision in ("fp32", "int8")]
    assert {reuse_key(0, whitebox, c) for c in configurations} == {("conv1", 0)}
    blackbox_keys = {reuse_key(1, blackbox, c) for c in configurations}
    # local: the same file runs here whatever the device; agent: each device answers for itself
    assert len(blackbox_keys) == (4 if via == "local" else 8)
    assert all(key[:2] == ("conv1", 1) for key in blackbox_keys)
