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


def synthetic_run(run_dir, experiment="synthetic", rows=None, images=3, links=None):
    """A run directory with a manifest, inputs and one part per configuration of ``rows``.

    ``rows``: dicts with configuration, split, defence, latency (device p50, ms), energy, attack -> ssim,
    and optionally feature_bytes, cloud (cloud p50, ms), e2e (measured e2e p50, ms), and per-inference
    records: ``records`` (device ms: the inferences table, whose median becomes latency) and
    ``e2e_records`` (the online_inferences table, whose median becomes e2e; ``cloud_records`` beside).
    ``links``: the experiment's resolved links for the manifest (default: none recorded).
    """
    from device_agents.fileio import write_json

    run_dir.mkdir(parents=True)
    experiment_record = {"name": experiment} if links is None else {"name": experiment, "links": links}
    write_json(run_dir / results.MANIFEST, {"experiment": experiment_record, "status": "finished"})
    rng = np.random.default_rng(0)
    originals = rng.random((images, 1, 28, 28), dtype=np.float32)
    np.save(run_dir / "inputs.npy", originals)
    for spec in rows:
        identity = {"configuration": spec["configuration"], "device": spec.get("device", "local"),
                    "split": spec["split"], "format": "onnx", "precision": "fp32",
                    "defence": spec.get("defence", "none"), "defence_applied": spec.get("applied", "none")}
        inferences = online = None
        latency, e2e, e2e_p95 = spec.get("latency"), spec.get("e2e", np.nan), spec.get("e2e", np.nan)
        if "records" in spec:
            latency = float(np.median(spec["records"]))
            inferences = pd.DataFrame({**identity, "index": np.arange(len(spec["records"])), "repetition": 0,
                                       "latency_ms": spec["records"]})
        if "e2e_records" in spec:
            e2e, e2e_p95 = float(np.median(spec["e2e_records"])), float(np.percentile(spec["e2e_records"], 95))
            count = len(spec["e2e_records"])
            online = pd.DataFrame({**identity, "index": np.arange(count), "repetition": 0,
                                   "e2e_ms": spec["e2e_records"],
                                   "cloud_ms": spec.get("cloud_records", [spec.get("cloud", np.nan)] * count)})
        cloud = float(np.median(spec["cloud_records"])) if "cloud_records" in spec else spec.get("cloud", np.nan)
        summary = pd.DataFrame([{**identity, "platform": "test", "model": "lenet", "dataset": "mnist-subset",
                                 "n_images": images, "n_attacked": images, "latency_ms_p50": latency,
                                 "feature_bytes": spec.get("feature_bytes", 4096),
                                 "defence_ms_p50": 0.01 if identity["defence_applied"] == "device" else np.nan,
                                 "energy_mj_per_inference": spec.get("energy", np.nan),
                                 "cloud_ms_p50": cloud, "e2e_ms_p50": e2e, "e2e_ms_p95": e2e_p95,
                                 "power_probe": "none", "accuracy": spec.get("accuracy", 0.9), "attack": attack,
                                 "attack_kind": attack.split("-")[0], "ssim_mean": ssim, "psnr_mean": 10 + 10 * ssim,
                                 "status": spec.get("status", "ok"), "error": ""}
                                for attack, ssim in spec["ssim"].items()])
        recons = {attack: np.clip(originals + rng.normal(0, 0.2, originals.shape), 0, 1).astype(np.float32)
                  for attack in spec["ssim"]}
        results.write_part(run_dir, spec["configuration"], summary, inferences=inferences, reconstructions=recons,
                           online_inferences=online)
    return run_dir
