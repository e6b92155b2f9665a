"""Time a first deploy and a repeat deploy with nothing changed, and count the bytes each sends.

    .venv/bin/python bench/deploy.py                  # a throwaway sshd on 127.0.0.1 (as in the tests)
    .venv/bin/python bench/deploy.py --device pi5     # a board from the inventory

A deploy is everything before the agent starts: probe, content-addressed upload, run directory,
spec and key. The repeat should send no artifact bytes (only the spec and key, written fresh).
Bytes are counted by a wrapper around ``paramiko.SFTPClient.put``.
"""

import argparse
import os
import secrets
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import paramiko
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from device_agents.fileio import sha256_file  # noqa: E402
from edgekit.devices import get_device, load_inventory  # noqa: E402
from edgekit.devices.deploy import remove_dir  # noqa: E402
from edgekit.devices.remote_run import Session  # noqa: E402

SENT = []


def counting_put(put):
    def wrapper(self, localpath, remotepath, *args, **kwargs):
        SENT.append(os.path.getsize(localpath))
        return put(self, localpath, remotepath, *args, **kwargs)
    return wrapper


def make_run(directory: Path, features: int):
    """A real ONNX device part (one Linear layer, about features^2 * 4 bytes) and 64 inputs."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(features, features)).eval()
    side = int(features ** 0.5)
    path = directory / "model.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and enough here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.rand(1, 1, side, side),), str(path), input_names=["x"],
                          output_names=["y"], dynamo=False)
    inputs = directory / "inputs.npy"
    np.save(inputs, np.random.default_rng(0).random((64, 1, side, side), dtype=np.float32))
    spec = {"run_id": secrets.token_hex(16),
            "artifact": {"path": "model.onnx", "sha256": sha256_file(path), "format": "onnx",
                         "input": {"name": "x", "shape": [1, 1, side, side], "dtype": "float32"},
                         "output": {"name": "y", "shape": [1, features], "dtype": "float32", "layout": "NC"}},
            "inputs": {"path": "inputs.npy", "sha256": sha256_file(inputs)},
            "threads": 1, "warmup": 1, "repetitions": 1, "defence": {"kind": "none"},
            "power": {"probe": "none"}, "cloud": {"host": "127.0.0.1", "port": 7000, "key_file": "run.key"},
            "output_dir": "out"}
    return spec, {"model.onnx": path, "inputs.npy": inputs}


def timed_deploy(device, spec, files):
    SENT.clear()
    started = time.perf_counter()
    session = Session(device.connect)
    try:
        run = device.deploy(session, spec, files, secrets.token_bytes(32))
        elapsed = time.perf_counter() - started
        remove_dir(session.conn, run.run_dir)
    finally:
        session.close()
    return elapsed, sum(SENT)


def loopback_device(scratch: Path):
    from sshd import SshServer

    os.environ.update(HOME=str(scratch / "home"), EDGEKIT_CONFIG=str(scratch / "config"))
    (scratch / "home" / ".ssh").mkdir(parents=True)
    server = SshServer(scratch / "sshd").start()
    (scratch / "home" / ".ssh" / "known_hosts").write_text(server.known_hosts_line)
    inventory = scratch / "devices.toml"
    inventory.write_text(server.device_toml("loopback", workdir=str(scratch / "device-work")))
    return server, get_device("loopback", load_inventory(inventory))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", help="an inventory device (default: a throwaway sshd on 127.0.0.1)")
    parser.add_argument("--inventory")
    parser.add_argument("--features", type=int, default=1024, help="Linear layer width (model ~ 4*F^2 bytes)")
    args = parser.parse_args()
    paramiko.SFTPClient.put = counting_put(paramiko.SFTPClient.put)
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as scratch:
        scratch = Path(scratch)
        server = None
        if args.device:
            device = get_device(args.device, load_inventory(args.inventory))
        else:
            server, device = loopback_device(scratch)
        try:
            spec, files = make_run(scratch, args.features)
            size = sum(p.stat().st_size for p in files.values())
            print(f"device {device.name}: artifact + inputs {size / 1e6:.1f} MB")
            for label in ("first deploy", "repeat deploy (nothing changed)"):
                elapsed, sent = timed_deploy(device, spec, files)
                print(f"{label:<34} {elapsed:7.3f} s   {sent / 1e6:8.3f} MB sent by SFTP put")
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
