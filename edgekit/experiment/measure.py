"""One agent run: its run spec, and what its report and records say in results columns.

Energy and power come only from the agent's power probe: without one they are NaN and
``power_probe`` is ``none``, never an estimate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

NAN = math.nan


def agent_spec(run_id: str, artifact: dict, artifact_file: str, inputs_sha256: str, experiment,
               defence_spec: dict, cloud: dict | None, online: dict | None = None) -> dict:
    """The run spec (docs/interfaces.md) for the device part ``artifact`` (a manifest entry);
    ``online``: the online phase's settings, None for no online phase."""
    return {
        "run_id": run_id,
        "artifact": artifact_spec(artifact, artifact_file),
        "inputs": {"path": "inputs.npy", "sha256": inputs_sha256},
        "threads": experiment.threads, "warmup": experiment.warmup, "repetitions": experiment.repetitions,
        "defence": defence_spec,
        "power": {"probe": "auto"},
        "cloud": cloud,
        "online": online,
        "output_dir": "out",
    }


def artifact_spec(artifact: dict, path: str) -> dict:
    """The run spec's artifact (also ``device_agents.runtime.load_runner``'s) for the manifest entry
    ``artifact`` whose file is at ``path``."""
    output = artifact["outputs"][0]
    return {"path": path, "sha256": artifact["sha256"], "format": artifact["format"],
            "input": _tensor(artifact["inputs"][0]),
            "output": {**_tensor(output), "layout": output.get("layout", "NCHW")}}


def _tensor(entry: dict) -> dict:
    return {"name": entry["name"], "shape": list(entry["shape"]), "dtype": entry["dtype"]}


def summary_measurements(report: dict) -> dict:
    """Latency, defence, energy and power columns of the summary from an agent's report.json."""
    stats = report.get("statistics") or {}
    defence_stats = report.get("defence_statistics") or {}
    energy = report.get("energy")
    probe = (report.get("probe") or {}).get("probe") or "none"
    return {
        "platform": platform_of(report),
        "latency_ms_mean": stats.get("mean_ms", NAN), "latency_ms_p50": stats.get("p50_ms", NAN),
        "latency_ms_p95": stats.get("p95_ms", NAN), "latency_ms_std": stats.get("std_ms", NAN),
        "defence_ms_p50": defence_stats.get("p50_ms", NAN),
        "energy_mj_per_inference": _per_inference_mj(energy), "power_w_mean": _mean_power_w(energy),
        "power_probe": probe if energy else "none",
    }


def online_measurements(report: dict) -> dict:
    """The online phase's measured columns of the summary (all but ``online_accuracy``) from an agent's
    report.json; NaN where the run had no online phase (or the energy no probe)."""
    online = report.get("online") or {}
    link = online.get("link") or {}

    def percentile(stats, q):
        value = (stats or {}).get(f"p{q}_ms")
        return NAN if value is None else value

    columns = {"e2e_mj_per_inference": _per_inference_mj(online.get("energy")),
               "link_upload_mbps": NAN if (link.get("goodput") or {}).get("mbps") is None else link["goodput"]["mbps"]}
    for column, stats in (("e2e", online.get("statistics")), ("cloud", online.get("cloud_statistics")),
                          ("transfer", link.get("transfer")), ("link_rtt", link.get("rtt"))):
        for q in (50, 95):
            columns[f"{column}_ms_p{q}"] = percentile(stats, q)
    return columns


def online_rows(online_path: Path) -> pd.DataFrame:
    """One row per online inference (the agent's online.csv): image, repetition, times, prediction."""
    records = pd.read_csv(online_path)
    return pd.DataFrame({"index": records["image"], "repetition": records["repetition"],
                         "device_ms": records["device_ms"], "e2e_ms": records["e2e_ms"],
                         "cloud_ms": records["cloud_ms"], "prediction": records["prediction"]})


def platform_of(report: dict) -> str:
    platform = ((report.get("device_state") or {}).get("platform")) or {}
    model = platform.get("model")
    generic = " ".join(str(platform[k]) for k in ("system", "machine") if platform.get(k))
    return (model.strip("\x00 ") if model else generic) or "unknown"


def _per_inference_mj(energy) -> float:
    if not energy:
        return NAN
    joules = energy["per_inference_j"]["net"].get(energy["primary_rail"])
    return NAN if joules is None else 1e3 * joules


def _mean_power_w(energy) -> float:
    if not energy or not energy.get("windows"):
        return NAN
    joules = sum(w["gross_j"] for w in energy["windows"])
    seconds = sum((w["end_ns"] - w["start_ns"]) / 1e9 for w in energy["windows"])
    return joules / seconds if seconds > 0 else NAN


def inference_rows(records_path: Path, report: dict) -> pd.DataFrame:
    """One row per timed inference; a window's net energy is shared equally by its inferences."""
    records = pd.read_csv(records_path)
    rows = pd.DataFrame({"index": records["image"], "repetition": records["repetition"],
                         "latency_ms": records["latency_ms"], "energy_mj": NAN, "power_w": NAN})
    energy = report.get("energy")
    if energy and energy.get("windows"):
        windows = pd.DataFrame(energy["windows"]).set_index("window")
        seconds = (windows["end_ns"] - windows["start_ns"]) / 1e9
        per_inference_mj = 1e3 * windows["net_j"] / windows["inferences"]
        power_w = (windows["gross_j"] / seconds).where(seconds > 0)
        rows["energy_mj"] = records["window"].map(per_inference_mj).to_numpy(dtype=float)
        rows["power_w"] = records["window"].map(power_w).to_numpy(dtype=float)
    return rows


def feature_bytes(artifact: dict) -> int:
    """Bytes of one feature as sent (batch of one)."""
    output = artifact["outputs"][0]
    return int(np.prod(output["shape"][1:])) * np.dtype(output["dtype"]).itemsize
