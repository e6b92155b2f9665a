"""Predicted end-to-end time (and energy) of each configuration on each what-if link profile.

Derived from a run's summary only, so it can never disagree with it: ``edgekit.results`` builds
the ``link_predictions`` table with ``link_predictions(summary, links)`` whenever it is loaded, and
``combine`` writes it next to the summary it came from.

    predicted_e2e_ms = device_ms_p50 + profile RTT + feature_bytes at the profile's upload goodput
                       + cloud_ms_p50
    device_ms_p50    = latency_ms_p50 (+ defence_ms_p50 where the device applied the defence)
    predicted_energy_mj_per_inference = energy_mj_per_inference (measured compute above idle)
                                        + radio power x predicted transfer time

The energy estimate leaves out what a profile cannot know: the radio while it waits for the
answer (the RTT), its idle listening, the cellular radios' tail energy after a transfer, and the
board's own idle power.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from edgekit.links import LinkProfile


def link_predictions(summary: pd.DataFrame, links: list[LinkProfile]) -> pd.DataFrame:
    """One row per configuration of ``summary`` x link profile (columns: ``results.LINK_PREDICTIONS``)."""
    identity = ["configuration", "device", "split", "format", "precision", "defence", "defence_applied"]
    if summary.empty or not links:
        return pd.DataFrame()
    configurations = summary.drop_duplicates("configuration").reset_index(drop=True)
    device_defence = configurations["defence_ms_p50"].where(configurations["defence_applied"] == "device", 0.0)
    measured = configurations[identity].assign(
        feature_bytes=configurations["feature_bytes"],
        device_ms_p50=configurations["latency_ms_p50"].astype(float) + device_defence.astype(float),
        cloud_ms_p50=configurations["cloud_ms_p50"].astype(float),
        _compute_mj=configurations["energy_mj_per_inference"].astype(float))
    frames = []
    for link in links:
        radio_w = np.nan if link.radio_w is None else link.radio_w
        transfer = link.transfer_ms(measured["feature_bytes"].astype(float))
        radio_mj = radio_w * transfer
        frames.append(measured.assign(
            link=link.name, profile_upload_mbps=link.upload_mbps, profile_rtt_ms=link.rtt_ms,
            profile_radio_w=radio_w, predicted_transfer_ms=transfer,
            predicted_e2e_ms=measured["device_ms_p50"] + link.rtt_ms + transfer + measured["cloud_ms_p50"],
            predicted_radio_mj_per_inference=radio_mj,
            predicted_energy_mj_per_inference=measured["_compute_mj"] + radio_mj))
    order = {key: i for i, key in enumerate(measured["configuration"])}
    table = pd.concat(frames, ignore_index=True).drop(columns="_compute_mj")
    return table.sort_values("configuration", key=lambda keys: keys.map(order), kind="stable") \
        .reset_index(drop=True)
