"""The report's end-to-end figures, each written as PNG and SVG (beside ``plots``' figures):

- privacy against measured end-to-end latency: the worst-case SSIM (the best attack) of each
  configuration at its measured e2e median, a whisker to its p95, and a hollow marker at the device
  part's median alone (what the time would look like without the link and the cloud);
- privacy against predicted end-to-end latency, one panel per link profile, the recommended
  configuration of each link ringed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from edgekit.links import format_rate
from edgekit.report.plots import MARKERS, save
from edgekit.report.recommend import worst_case

WORST_SSIM = "worst-case SSIM over attacks (0-1; higher leaks more)"


LABELLED_AT_MOST = 12  # configurations per figure that get a text label
LOG_SPAN = 30  # a latency axis spanning more than this ratio is drawn in log scale


def write_link_figures(summary: pd.DataFrame, predictions: pd.DataFrame, out_dir: Path, threshold: float,
                       recommendations=()) -> tuple[list[Path], list[str]]:
    """(files written, notes on figures skipped and why). ``recommendations`` (``recommend``'s) rings
    each link's pick."""
    picks = {(rec.device, pick.link): pick.choice.configuration for rec in recommendations for pick in rec.by_link}
    worst = worst_case(summary)
    written, notes = [], []
    if worst.empty:
        return written, notes
    several = worst["device"].nunique() > 1
    for device, rows in worst.groupby("device"):
        suffix = f"-{device}" if several else ""
        if rows["e2e_ms_p50"].notna().any():
            written += save(privacy_vs_e2e(rows, threshold, device), out_dir, f"privacy_vs_e2e{suffix}")
        else:
            notes.append(f"{device}: end-to-end latency not measured: privacy_vs_e2e skipped")
        predicted = predictions[predictions["device"] == device].merge(
            rows[["configuration", "worst_ssim"]], on="configuration")
        predicted = predicted[predicted["predicted_e2e_ms"].notna()]
        if len(predicted):
            chosen = {link: key for (where, link), key in picks.items() if where == device}
            written += save(privacy_vs_link(predicted, threshold, device, chosen), out_dir,
                            f"privacy_vs_link{suffix}")
        else:
            notes.append(f"{device}: no predicted end-to-end latency (cloud part not timed, or no link profiles): "
                         "privacy_vs_link skipped")
    return written, notes


def _label(row) -> str:
    defence = "" if row["defence"] == "none" else f" {row['defence']}"
    return f"{row['split']} {row['format']} {row['precision']}{defence}"


def _latency_scale(axis, values) -> None:
    values = values[values > 0]
    if len(values) and values.max() / values.min() > LOG_SPAN:
        axis.set_xscale("log")


def _split_styles(splits) -> dict:
    colours = plt.get_cmap("tab10").colors
    return {split: (colours[i % len(colours)], MARKERS[i % len(MARKERS)]) for i, split in enumerate(splits)}


def privacy_vs_e2e(rows: pd.DataFrame, threshold: float, device: str):
    """Worst-case SSIM against measured e2e p50 (whisker to p95), device-only p50 hollow."""
    styles = _split_styles(dict.fromkeys(rows["split"]))
    figure, axis = plt.subplots(figsize=(9, 5.5))
    for _, row in rows.iterrows():
        colour, marker = styles[row["split"]]
        y = row["worst_ssim"]
        axis.plot([row["latency_ms_p50"], row["e2e_ms_p50"]], [y, y], color=colour, alpha=0.3, linewidth=1)
        axis.plot([row["e2e_ms_p50"], row["e2e_ms_p95"]], [y, y], color=colour, linewidth=2)
        axis.scatter(row["latency_ms_p50"], y, facecolor="none", edgecolor=colour, marker=marker, s=45)
        axis.scatter(row["e2e_ms_p50"], y, color=colour, marker=marker, s=60, edgecolor="black", linewidth=0.4)
        if len(rows) <= LABELLED_AT_MOST:
            axis.annotate(_label(row), (row["e2e_ms_p50"], y), textcoords="offset points", xytext=(4, 5), fontsize=7)
    axis.axhline(threshold, color="tab:red", linewidth=1, linestyle=":")
    _latency_scale(axis, pd.concat([rows["latency_ms_p50"], rows["e2e_ms_p95"].fillna(rows["e2e_ms_p50"])]).dropna())
    axis.set_xlabel("latency per inference (ms)")
    axis.set_ylabel(WORST_SSIM)
    axis.set_title(f"Privacy against measured end-to-end latency on {device}")
    handles = [plt.Line2D([], [], color=c, marker=m, linestyle="", markersize=8, label=f"split {s}")
               for s, (c, m) in styles.items()]
    handles += [plt.Line2D([], [], color="grey", marker="o", linewidth=2, label="end to end: median, bar to p95"),
                plt.Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="",
                           label="device part alone: median"),
                plt.Line2D([], [], color="tab:red", linestyle=":", label=f"SSIM {threshold:g}: unrecognisable below")]
    axis.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    return figure


def privacy_vs_link(predicted: pd.DataFrame, threshold: float, device: str, chosen: dict | None = None):
    """Worst-case SSIM against predicted e2e latency, one panel per link profile; ``chosen`` (link ->
    configuration) is ringed."""
    chosen = chosen or {}
    links = list(dict.fromkeys(predicted["link"]))
    styles = _split_styles(dict.fromkeys(predicted["split"]))
    columns = min(len(links), 3)
    rows_count = -(-len(links) // columns)
    figure, axes = plt.subplots(rows_count, columns, figsize=(4.6 * columns, 3.9 * rows_count), sharey=True,
                                squeeze=False)
    for axis, link in zip(axes.flat, links):
        group = predicted[predicted["link"] == link]
        for split, points in group.groupby("split", sort=False):
            colour, marker = styles[split]
            axis.scatter(points["predicted_e2e_ms"], points["worst_ssim"], color=colour, marker=marker, s=50,
                         alpha=0.85, edgecolor="black", linewidth=0.4)
        pick = group[group["configuration"] == chosen.get(link)]
        axis.scatter(pick["predicted_e2e_ms"], pick["worst_ssim"], facecolor="none", edgecolor="black", s=200,
                     linewidth=1.2)
        axis.axhline(threshold, color="tab:red", linewidth=1, linestyle=":")
        _latency_scale(axis, group["predicted_e2e_ms"])
        first = group.iloc[0]
        axis.set_title(f"{link}: {format_rate(first['profile_upload_mbps'])} up, RTT {first['profile_rtt_ms']:g} ms",
                       fontsize=10)
        axis.set_xlabel("predicted end-to-end latency (ms)")
    for axis in axes.flat[len(links):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel(WORST_SSIM if len(links) <= columns else "worst-case SSIM")
    handles = [plt.Line2D([], [], color=c, marker=m, linestyle="", markersize=8, label=f"split {s}")
               for s, (c, m) in styles.items()]
    handles.append(plt.Line2D([], [], color="tab:red", linestyle=":", label=f"SSIM {threshold:g}"))
    if chosen:
        handles.append(plt.Line2D([], [], color="black", marker="o", markerfacecolor="none", markersize=12,
                                  linestyle="", label="recommended on this link"))
    figure.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.suptitle(f"Privacy against predicted end-to-end latency per link profile on {device} "
                    "(device p50 + RTT + feature at the link's rate + cloud p50)")
    figure.tight_layout()
    return figure
