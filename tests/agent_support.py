"""Helpers for the device agent's tests: tiny exported models, run specs, the agent as a subprocess."""

import json
import os
import subprocess
import sys

import numpy as np

from device_agents.fileio import sha256_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = os.path.join(REPO, "tests", "fixtures", "boards")
VCGENCMD = os.path.join(BOARDS, "bin", "vcgencmd")
INPUT_SHAPE = (1, 8, 8)
OUTPUT_SHAPE = (4, 4, 4)
RUN_ID = "0123456789abcdef0123456789abcdef"


def board(name):
    return os.path.join(BOARDS, name)


def vcgencmd_for(name):
    """The stand-in vcgencmd command replaying board ``name``'s captured answers."""
    return "{} {}".format(VCGENCMD, os.path.join(BOARDS, name, "vcgencmd"))


def export_models(directory):
    """A conv-relu-pool device part exported to ONNX and TFLite: {"onnx": path, "tflite": path}."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2)).eval()
    sample = torch.rand((1,) + INPUT_SHAPE)
    paths = {"onnx": os.path.join(directory, "part.onnx"), "tflite": os.path.join(directory, "part.tflite")}
    torch.onnx.export(model, (sample,), paths["onnx"], input_names=["x"], output_names=["feature"],
                      dynamo=False)
    import litert_torch

    litert_torch.convert(model, (sample,)).export(paths["tflite"])
    return paths


def write_shard(path, count=12, seed=1, shape=INPUT_SHAPE, dtype=np.float32):
    np.save(path, np.random.default_rng(seed).random((count,) + tuple(shape)).astype(dtype))
    return path


def write_spec(directory, model_path, fmt, shard_path, **overrides):
    """spec.json in ``directory`` with paths relative to it; ``overrides`` replace top-level keys."""
    spec = {
        "run_id": RUN_ID,
        "artifact": {"path": os.path.relpath(model_path, directory), "sha256": sha256_file(model_path),
                     "format": fmt,
                     "input": {"name": "x" if fmt == "onnx" else None, "shape": [1] + list(INPUT_SHAPE),
                               "dtype": "float32"},
                     "output": {"name": "feature" if fmt == "onnx" else None,
                                "shape": [1] + list(OUTPUT_SHAPE), "dtype": "float32", "layout": "NCHW"}},
        "inputs": {"path": os.path.relpath(shard_path, directory), "sha256": sha256_file(shard_path)},
        "threads": 1, "warmup": 3, "repetitions": 2,
        "defence": {"kind": "none"},
        "power": {"probe": "none", "hz": 10, "window": 0, "baseline_s": 0.0},
        "cloud": None,
        "output_dir": "out",
    }
    spec.update(overrides)
    path = os.path.join(directory, "spec.json")
    with open(path, "w") as handle:
        json.dump(spec, handle)
    return path


def run_agent(*args, timeout=120):
    """``python -m device_agents ARGS`` from the repository root, as the deployment starts it."""
    return subprocess.run([sys.executable, "-m", "device_agents"] + list(args), cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)


def read_json(path):
    with open(path) as handle:
        return json.load(handle)
