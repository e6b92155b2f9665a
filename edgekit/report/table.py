"""The summary as a terminal table: one line per configuration, one column per attack."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

CONFIGURATION = (("device", "device", str), ("split", "split", str), ("format", "format", str),
                 ("precision", "prec.", str), ("defence", "defence", str), ("latency_ms_p50", "p50 ms", "{:.3f}"),
                 ("energy_mj_per_inference", "mJ/inf", "{:.3g}"), ("accuracy", "acc.", "{:.1%}"))


def summary_table(summary: pd.DataFrame, threshold: float) -> Table:
    """Each attack's cell is ``SSIM / PSNR dB``; green when under ``threshold`` (unrecognisable)."""
    attacks = list(dict.fromkeys(summary["attack"].dropna()))
    table = Table(title=f"edgekit summary: SSIM / PSNR dB per attack (green: SSIM < {threshold:g}, unrecognisable)",
                  header_style="bold")
    for _, header, fmt in CONFIGURATION:
        table.add_column(header, justify="left" if fmt is str else "right", no_wrap=True)
    for attack in attacks:
        table.add_column(attack, justify="right", no_wrap=True)
    table.add_column("status")
    for _, rows in summary.groupby("configuration", sort=False):
        first = rows.iloc[0]
        cells = [_cell(first[name], fmt) for name, _, fmt in CONFIGURATION]
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
