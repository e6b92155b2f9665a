"""The summary as a terminal table: one line per configuration, one column per attack."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

CONFIGURATION = (("device", "device", str), ("split", "split", str), ("format", "format", str),
                 ("precision", "prec.", str), ("defence", "defence", str), ("latency_ms_p50", "p50 ms", "{:.3f}"),
                 ("energy_mj_per_inference", "mJ/inf", "{:.3g}"), ("accuracy", "acc.", "{:.1%}"))
# The online phase's medians (issue 9): shown when measured, after the device's p50.
END_TO_END = (("transfer_ms_p50", "xfer ms", "{:.3g}"), ("cloud_ms_p50", "cloud ms", "{:.3g}"),
              ("e2e_ms_p50", "e2e ms", "{:.3g}"))


def summary_table(summary: pd.DataFrame, threshold: float) -> Table:
    """Each attack's cell is ``SSIM / PSNR dB``; green when under ``threshold`` (unrecognisable).
    ``p50 ms`` is the device part alone; ``xfer``, ``cloud`` and ``e2e ms`` the online phase's medians
    (columns nothing measured are left out)."""
    attacks = list(dict.fromkeys(summary["attack"].dropna()))
    measured = [column for column in END_TO_END if summary[column[0]].notna().any()]
    at = [name for name, _, _ in CONFIGURATION].index("latency_ms_p50") + 1
    columns = CONFIGURATION[:at] + tuple(measured) + CONFIGURATION[at:]
    table = Table(title=f"edgekit summary: SSIM / PSNR dB per attack (green: SSIM < {threshold:g}, unrecognisable)",
                  header_style="bold")
    for _, header, fmt in columns:
        table.add_column(header, justify="left" if fmt is str else "right", no_wrap=True)
    for attack in attacks:
        table.add_column(attack, justify="right", no_wrap=True)
    table.add_column("status")
    for _, rows in summary.groupby("configuration", sort=False):
        first = rows.iloc[0]
        cells = [_cell(first[name], fmt) for name, _, fmt in columns]
        by_attack = rows.set_index("attack")
        for attack in attacks:
            cells.append(_scores(by_attack.loc[attack], threshold) if attack in by_attack.index else "-")
        cells.append("ok" if (rows["status"] == "ok").all() else f"[red]failed[/red]: {first['error']}")
        table.add_row(*cells)
    return table


def _scores(row, threshold: float) -> str:
    if _missing(row["ssim_mean"]):
        return "-"
    text = f"{row['ssim_mean']:.3f} / {row['psnr_mean']:.1f}"
    return f"[green]{text}[/green]" if row["ssim_mean"] < threshold else text


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell(value, fmt) -> str:
    if _missing(value):
        return "-"
    return str(value) if fmt is str else fmt.format(value)
