"""The results of a run: their schema, crash-safe appending per configuration, and loading.

A run directory ``results/<experiment>/<run-id>/`` holds one folder per finished configuration
under ``parts/`` (its tables as Parquet, its reconstructions, its device report). The part's
``summary.parquet`` is written last, so its presence is the ledger entry that says the
configuration is finished. ``combine`` joins the parts into the run's ``summary.parquet``,
``inferences.parquet``, ``attack_images.parquet`` and ``online_inferences.parquet``; ``load``
reads one run or many. The link predictions (``edgekit.predictions``) are derived from the summary
wherever it is read.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents.fileio import atomic_write, write_json
from edgekit.errors import EdgekitError
from edgekit.links import links_from_manifest
from edgekit.predictions import link_predictions

TABLES = ("summary", "inferences", "attack_images", "online_inferences")
PARTS = "parts"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype
    doc: str


# Identity of a configuration: shared by every table.
CONFIGURATION_COLUMNS = (
    Column("configuration", "string", "configuration key: device_split_format_precision_defence"),
    Column("device", "string", "device name in the inventory (`local`: this workstation)"),
    Column("split", "string", "split point: the device runs the model up to and including this layer"),
    Column("format", "string", "device part's format: onnx or tflite"),
    Column("precision", "string", "device part's precision: fp32 or int8"),
    Column("defence", "string", "defence label: none, gaussian-SIGMA, laplace-B, dropout-RATE"),
    Column("defence_applied", "string", "none; device (the agent applied it); simulated (the cloud side "
                                        "applied it to the undefended features)"),
)

SUMMARY = CONFIGURATION_COLUMNS + (
    Column("platform", "string", "the device's platform as its agent reports it (machine, OS)"),
    Column("model", "string", "model name (edgekit.models)"),
    Column("dataset", "string", "dataset name (edgekit.data)"),
    Column("n_images", "Int64", "private test images the device ran (accuracy and latency are over these)"),
    Column("n_attacked", "Int64", "of those, how many the attack reconstructed (the first ones)"),
    Column("feature_shape", "string", "shape of one feature leaving the device, without batch"),
    Column("feature_bytes", "Int64", "bytes of one feature leaving the device (float32)"),
    Column("device_mflops", "float64", "floating point operations of the device part per image, millions"),
    Column("latency_ms_mean", "float64", "mean wall time of one device-part inference, milliseconds"),
    Column("latency_ms_p50", "float64", "median inference latency, milliseconds"),
    Column("latency_ms_p95", "float64", "95th percentile inference latency, milliseconds"),
    Column("latency_ms_std", "float64", "standard deviation of the inference latency, milliseconds"),
    Column("defence_ms_p50", "float64", "median wall time of the device applying the defence to one feature "
                                        "(timed apart from the inference), milliseconds; NaN when no defence "
                                        "ran on the device"),
    Column("energy_mj_per_inference", "float64", "energy of one inference above the idle baseline, "
                                                 "millijoules; NaN without a power probe"),
    Column("power_w_mean", "float64", "mean power while running, watts; NaN without a power probe"),
    Column("power_probe", "string", "the power source measured (as the agent names it, e.g. rapl); "
                                    "none when the device has no readable probe"),
    Column("accuracy", "float64", "top-1 accuracy of the cloud part on the received (defended) features "
                                  "of the n_images private images, 0-1"),
    Column("online_accuracy", "float64", "top-1 accuracy of the cloud's answers in the online phase (every "
                                         "repetition), 0-1; equals accuracy for the same features"),
    Column("e2e_ms_p50", "float64", "online phase: median time from image in to the cloud's prediction back "
                                    "(device part, defence, upload, cloud part, answer), device clock, ms"),
    Column("e2e_ms_p95", "float64", "online phase: 95th percentile end-to-end time, ms"),
    Column("e2e_mj_per_inference", "float64", "online phase: energy per inference above the idle baseline "
                                              "(compute, radio and waiting for the answer), mJ; NaN without a probe"),
    Column("cloud_ms_p50", "float64", "median time of the cloud part (ONNX fp32 in onnxruntime on the "
                                      "workstation) per online inference, timed where it runs, ms"),
    Column("cloud_ms_p95", "float64", "95th percentile cloud part time, ms"),
    Column("transfer_ms_p50", "float64", "median time to deliver one feature frame to the cloud and get its "
                                         "ACK, device clock, ms"),
    Column("transfer_ms_p95", "float64", "95th percentile transfer time, ms"),
    Column("link_rtt_ms_p50", "float64", "median round trip of a minimal authenticated exchange (PING/PONG) "
                                         "between the agent and the cloud, ms"),
    Column("link_rtt_ms_p95", "float64", "95th percentile link round trip, ms"),
    Column("link_upload_mbps", "float64", "measured upload goodput: feature bytes delivered per second by a "
                                          "stream of feature-sized frames, Mbit/s (1e6 bits)"),
    Column("attack", "string", "attack label (whitebox, blackbox-QUERYSOURCE, queryfree-SHADOW or the "
                               "experiment's label); none when the experiment has no attacks"),
    Column("attack_kind", "string", "whitebox, blackbox or queryfree"),
    Column("psnr_mean", "float64", "mean PSNR of the reconstructions, dB (see the convention)"),
    Column("psnr_std", "float64", "standard deviation of PSNR over images, dB"),
    Column("ssim_mean", "float64", "mean SSIM of the reconstructions, 0-1 (below 0.3: unrecognisable)"),
    Column("ssim_std", "float64", "standard deviation of SSIM over images"),
    Column("attack_fit_seconds", "float64", "wall time fitting the attack (shared by configurations that "
                                            "reuse the fitted attack; counted where it was fitted, else 0)"),
    Column("attack_seconds", "float64", "wall time reconstructing the attacked images, seconds"),
    Column("status", "string", "ok, or failed (then error says why and the measurements are NaN)"),
    Column("error", "string", "why the configuration failed; empty when ok"),
)

INFERENCES = CONFIGURATION_COLUMNS + (
    Column("index", "Int64", "private image index (row of the input shard)"),
    Column("repetition", "Int64", "repetition of the pass over the images, from 0"),
    Column("latency_ms", "float64", "wall time of this inference, milliseconds"),
    Column("energy_mj", "float64", "energy of this inference's window above baseline, millijoules; NaN "
                                   "without a power probe"),
    Column("power_w", "float64", "mean power over this inference's window, watts; NaN without a probe"),
)

ONLINE_INFERENCES = CONFIGURATION_COLUMNS + (
    Column("index", "Int64", "private image index (row of the input shard)"),
    Column("repetition", "Int64", "online pass over the images, from 0"),
    Column("device_ms", "float64", "the device part's runtime call, device clock, ms"),
    Column("e2e_ms", "float64", "image in to the cloud's prediction back, device clock, ms"),
    Column("cloud_ms", "float64", "the cloud part's runtime call for this feature, workstation clock, ms"),
    Column("prediction", "Int64", "the cloud's top-1 class for this image (for a simulated defence: the "
                                  "cloud part's class for the feature defended on the cloud side)"),
)

ATTACK_IMAGES = CONFIGURATION_COLUMNS + (
    Column("attack", "string", "attack label, as in the summary"),
    Column("index", "Int64", "private image index"),
    Column("label", "Int64", "the image's true class"),
    Column("psnr", "float64", "PSNR of this image's reconstruction, dB"),
    Column("ssim", "float64", "SSIM of this image's reconstruction, 0-1"),
)

# Derived from the summary (edgekit.predictions), never stored apart from it: see load_run.
LINK_PREDICTIONS = CONFIGURATION_COLUMNS + (
    Column("link", "string", "link profile name (the run's [[links]]; shipped ones in docs/links.md)"),
    Column("profile_upload_mbps", "float64", "the profile's upload goodput, Mbit/s (an assumption, not a "
                                             "measurement)"),
    Column("profile_rtt_ms", "float64", "the profile's round-trip time, ms (assumed)"),
    Column("profile_radio_w", "float64", "the profile's radio power while transmitting, W (assumed); NaN when "
                                         "the profile gives none"),
    Column("feature_bytes", "Int64", "bytes of one feature leaving the device (the summary's)"),
    Column("device_ms_p50", "float64", "measured device time: latency_ms_p50, plus defence_ms_p50 where the "
                                       "device applied the defence, ms"),
    Column("cloud_ms_p50", "float64", "measured median latency of the cloud part (the summary's), ms; NaN "
                                      "when not measured"),
    Column("predicted_transfer_ms", "float64", "feature_bytes at the profile's upload goodput, ms"),
    Column("predicted_e2e_ms", "float64", "device_ms_p50 + profile_rtt_ms + predicted_transfer_ms + "
                                          "cloud_ms_p50, ms"),
    Column("predicted_radio_mj_per_inference", "float64", "profile_radio_w x predicted_transfer_ms: the radio "
                                                          "sending one feature, mJ; NaN without radio power"),
    Column("predicted_energy_mj_per_inference", "float64", "energy_mj_per_inference (measured compute above "
                                                           "idle) + predicted_radio_mj_per_inference, mJ; NaN "
                                                           "when either is"),
)

SCHEMAS = {"summary": SUMMARY, "inferences": INFERENCES, "attack_images": ATTACK_IMAGES,
           "online_inferences": ONLINE_INFERENCES, "link_predictions": LINK_PREDICTIONS}
RUN_COLUMN = Column("run", "string", "the run: <experiment>/<run-id> (added by edgekit.results.load)")


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the table's columns, in order and with their dtypes (missing ones NA)."""
    columns = SCHEMAS[table]
    unexpected = sorted(set(frame.columns) - {c.name for c in columns})
    if unexpected:
        raise ValueError(f"{table}: columns not in the schema: {unexpected}")
    frame = frame.reset_index(drop=True)
    return pd.DataFrame({c.name: (frame[c.name] if c.name in frame else pd.Series([None] * len(frame))).astype(c.dtype)
                         for c in columns}, index=range(len(frame)))


def write_parquet(path, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


# --- parts -------------------------------------------------------------------------------------

def part_dir(run_dir, key: str) -> Path:
    return Path(run_dir) / PARTS / key


PART_FILES = ("inferences.parquet", "attack_images.parquet", "online_inferences.parquet", "reconstructions.npz",
              "device_report.json")


def write_part(run_dir, key: str, summary: pd.DataFrame, inferences: pd.DataFrame | None = None,
               attack_images: pd.DataFrame | None = None, reconstructions: dict | None = None,
               device_report: dict | None = None, online_inferences: pd.DataFrame | None = None) -> None:
    """Record one finished (or failed) configuration; ``summary.parquet`` last, as its ledger entry."""
    folder = part_dir(run_dir, key)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.parquet").unlink(missing_ok=True)  # first: the part is not done until rewritten
    for leftover in PART_FILES:  # an earlier attempt's files must not pass for this attempt's
        (folder / leftover).unlink(missing_ok=True)
    for table, frame in (("inferences", inferences), ("attack_images", attack_images),
                         ("online_inferences", online_inferences)):
        if frame is not None:
            write_parquet(folder / f"{table}.parquet", conform(table, frame))
    if reconstructions:
        with atomic_write(folder / "reconstructions.npz") as handle:
            np.savez_compressed(handle, **reconstructions)
    if device_report is not None:
        write_json(folder / "device_report.json", device_report)
    write_parquet(folder / "summary.parquet", conform("summary", summary))


def finished_keys(run_dir) -> set[str]:
    """Configurations whose part is complete and succeeded (a resume skips these)."""
    done = set()
    for summary in sorted((Path(run_dir) / PARTS).glob("*/summary.parquet")):
        statuses = pd.read_parquet(summary, columns=["status"])["status"]
        if len(statuses) and (statuses == "ok").all():
            done.add(summary.parent.name)
    return done


def _part_tables(run_dir: Path, table: str) -> pd.DataFrame:
    """The parts' rows, configurations in the order the manifest plans them (``configurations``)."""
    planned = {key: i for i, key in enumerate(read_manifest(run_dir).get("configurations", []))}
    frames = []
    summaries = sorted((run_dir / PARTS).glob("*/summary.parquet"),
                       key=lambda p: (planned.get(p.parent.name, len(planned)), p.parent.name))
    for summary in summaries:
        path = summary.parent / f"{table}.parquet"
        if path.exists():
            frames.append(pd.read_parquet(path))
    if not frames:
        return conform(table, pd.DataFrame())
    return conform(table, pd.concat(frames, ignore_index=True))


def combine(run_dir) -> pd.DataFrame:
    """Join the parts into the run's tables (``TABLES``) and derive its link predictions from the
    joined summary (each written atomically); returns the summary."""
    run_dir = Path(run_dir)
    for table in TABLES:
        write_parquet(run_dir / f"{table}.parquet", _part_tables(run_dir, table))
    summary = pd.read_parquet(run_dir / "summary.parquet")
    write_parquet(run_dir / "link_predictions.parquet", _predictions(run_dir, summary))
    return summary


def _predictions(run_dir: Path, summary: pd.DataFrame) -> pd.DataFrame:
    return conform("link_predictions", link_predictions(summary, links_from_manifest(read_manifest(run_dir))))


def read_reconstructions(run_dir, key: str) -> dict[str, np.ndarray]:
    path = part_dir(run_dir, key) / "reconstructions.npz"
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


# --- loading -----------------------------------------------------------------------------------

def run_dirs(path) -> list[Path]:
    """The run directories at or under ``path`` (a directory holding ``manifest.json`` is a run)."""
    path = Path(path)
    if (path / MANIFEST).exists():
        return [path]
    return sorted(p.parent for p in path.rglob(MANIFEST))


def load_run(run_dir, table: str = "summary") -> pd.DataFrame:
    """One run's table: from its parts (current even mid-run), else from the combined file. The link
    predictions are derived from the summary loaded the same way, so the two always agree."""
    run_dir = Path(run_dir)
    if table == "link_predictions":
        return _predictions(run_dir, load_run(run_dir, "summary"))
    if (run_dir / PARTS).is_dir():
        frame = _part_tables(run_dir, table)
    elif (run_dir / f"{table}.parquet").exists():
        frame = conform(table, pd.read_parquet(run_dir / f"{table}.parquet"))
    else:
        frame = conform(table, pd.DataFrame())
    return frame


def load(path, table: str = "summary") -> pd.DataFrame:
    """A tidy DataFrame of one run directory or of every run under a directory, with a ``run`` column.

    ``table`` is ``summary`` (one row per configuration x attack), ``inferences`` (one row per
    timed inference), ``attack_images`` (one row per attacked image), ``online_inferences`` (one
    row per inference of the online phase) or ``link_predictions`` (one row per configuration x link
    profile).
    """
    if table not in SCHEMAS:
        raise EdgekitError(f"unknown results table {table!r}; accepted: {', '.join(SCHEMAS)}")
    runs = run_dirs(path)
    if not runs:
        raise EdgekitError(f"{str(path)!r} holds no edgekit run (no {MANIFEST} in it or under it)")
    frames = []
    for run_dir in runs:
        frame = load_run(run_dir, table)
        frame.insert(0, "run", pd.Series([run_name(run_dir)] * len(frame), dtype="string"))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def run_name(run_dir) -> str:
    manifest = read_manifest(run_dir)
    return f"{manifest.get('experiment', {}).get('name', Path(run_dir).parent.name)}/{Path(run_dir).name}"


def read_manifest(run_dir) -> dict:
    try:
        return json.loads((Path(run_dir) / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
