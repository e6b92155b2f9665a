"""Helpers for the experiment tests: experiment files and synthetic run directories."""

import numpy as np
import pandas as pd

from edgekit import results

TINY = """
name = "tiny"
model = "lenet"
dataset = "mnist-subset"
splits = ["conv1", "ReLU2"]
formats = ["onnx"]
precisions = ["fp32"]
devices = ["local"]
images = 8
attacked_images = 3
warmup = 1

[train]
epochs = 1
limit = 500

[[attacks]]
kind = "whitebox"
iterations = 5

[[defences]]
kind = "none"

[[defences]]
kind = "dropout"
rate = 0.5
at = "simulated"
"""


def write_experiment(directory, text=TINY, name="tiny.toml"):
    path = directory / name
    path.write_text(text)
    return path


def synthetic_run(run_dir, experiment="synthetic", rows=None, images=3):
    """A run directory with a manifest, inputs and one part per configuration of ``rows``.

    ``rows``: dicts with configuration, split, defence, latency, energy, attack -> ssim.
    """
    from device_agents.fileio import write_json

    run_dir.mkdir(parents=True)
    write_json(run_dir / results.MANIFEST, {"experiment": {"name": experiment}, "status": "finished"})
    rng = np.random.default_rng(0)
    originals = rng.random((images, 1, 28, 28), dtype=np.float32)
    np.save(run_dir / "inputs.npy", originals)
    for spec in rows:
        identity = {"configuration": spec["configuration"], "device": spec.get("device", "local"),
                    "split": spec["split"], "format": "onnx", "precision": "fp32",
                    "defence": spec.get("defence", "none"), "defence_applied": spec.get("applied", "none")}
        summary = pd.DataFrame([{**identity, "platform": "test", "model": "lenet", "dataset": "mnist-subset",
                                 "n_images": images, "n_attacked": images, "latency_ms_p50": spec["latency"],
                                 "energy_mj_per_inference": spec.get("energy", np.nan),
                                 "power_probe": "none", "accuracy": spec.get("accuracy", 0.9), "attack": attack,
                                 "attack_kind": attack.split("-")[0], "ssim_mean": ssim, "psnr_mean": 10 + 10 * ssim,
                                 "status": spec.get("status", "ok"), "error": ""}
                                for attack, ssim in spec["ssim"].items()])
        recons = {attack: np.clip(originals + rng.normal(0, 0.2, originals.shape), 0, 1).astype(np.float32)
                  for attack in spec["ssim"]}
        results.write_part(run_dir, spec["configuration"], summary, reconstructions=recons)
    return run_dir
