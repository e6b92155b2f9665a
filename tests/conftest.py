"""Shared fixtures: a real sshd, an isolated home/config/cache, and a tiny agent run."""

import warnings

import numpy as np
import pytest

from device_agents.fileio import sha256_file
from sshd import SshServer


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 for the whole session (see tests/sshd.py)."""
    server = SshServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def edgekit_home(tmp_path, monkeypatch):
    """HOME, the edgekit config dir and cache in a temp dir: tests never touch the user's ~/.ssh."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EDGEKIT_CONFIG", str(home / "edgekit-config"))
    monkeypatch.setenv("EDGEKIT_CACHE", str(home / "edgekit-cache"))
    monkeypatch.delenv("EDGEKIT_DEVICES", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


class TinyRun:
    """A two-filter conv exported to ONNX with torch, a few inputs, and a run spec for them."""

    def __init__(self, directory):
        import torch

        model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU()).eval()
        self.model = directory / "model.onnx"
        with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and enough here
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (torch.rand(1, 1, 8, 8),), str(self.model), input_names=["x"],
                              output_names=["y"], dynamo=False)
        self.inputs = directory / "inputs.npy"
        np.save(self.inputs, np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32))
        self.files = {"model.onnx": self.model, "inputs.npy": self.inputs}

    def manifest_entry(self) -> dict:
        """The model as ``edgekit.export`` lists a device part in its manifest."""
        return {"file": self.model.name, "sha256": sha256_file(self.model), "format": "onnx", "batch": 1,
                "inputs": [{"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32", "layout": "NCHW"}],
                "outputs": [{"name": "y", "shape": [1, 2, 8, 8], "dtype": "float32", "layout": "NCHW"}]}

    def spec(self, run_id="0" * 32, repetitions=1, cloud=None) -> dict:
        return {
            "run_id": run_id,
            "artifact": {"path": "model.onnx", "sha256": sha256_file(self.model), "format": "onnx",
                         "input": {"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"},
                         "output": {"name": "y", "shape": [1, 2, 8, 8], "dtype": "float32", "layout": "NCHW"}},
            "inputs": {"path": "inputs.npy", "sha256": sha256_file(self.inputs)},
            "threads": 1, "warmup": 1, "repetitions": repetitions,
            "defence": {"kind": "none"},
            "power": {"probe": "none", "hz": 10, "window": 0, "baseline_s": 0.0},
            "cloud": cloud,
            "output_dir": "out",
        }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return TinyRun(tmp_path_factory.mktemp("tiny-run"))
