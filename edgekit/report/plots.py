"""The report's figures, each written as PNG and SVG.

- privacy against cost: SSIM and PSNR of every attack against latency (and against energy per
  inference where a probe measured it), one point per configuration and attack, coloured by attack,
  with the Pareto front of the worst case (the best attack per configuration);
- accuracy against SSIM for each defence;
- a reconstruction grid per split: the private images on top, each attack's reconstructions below.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from edgekit import results  # noqa: E402
from edgekit.report.recommend import DEFAULT_THRESHOLD  # noqa: E402

MARKERS = "osD^vP*Xh<>"
COST_AXES = {"latency_ms_p50": "device latency per inference, median (ms)",
             "energy_mj_per_inference": "energy per inference above idle (mJ)"}
LEAK_AXES = {"ssim_mean": "reconstruction SSIM, mean (0-1; higher leaks more)",
             "psnr_mean": "reconstruction PSNR, mean (dB; higher leaks more)"}

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
                     "figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3})


def save(figure, out_dir: Path, name: str) -> list[Path]:
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    for path in paths:
        figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return paths


def write_all(run_dir, out_dir, threshold: float = DEFAULT_THRESHOLD) -> tuple[list[Path], list[str]]:
    """Every figure of a run; (files written, notes on figures skipped and why)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = results.load_run(run_dir)
    ok = summary[(summary["status"] == "ok") & summary["ssim_mean"].notna()]
    written, notes = [], []
    if ok.empty:
        return written, ["no successfully attacked configuration: no privacy plots"]
    for cost in COST_AXES:
        for device, rows in ok.groupby("device"):
            if rows[cost].isna().all():
                notes.append(f"{device}: no {cost} measured (no power probe): plot skipped")
                continue
            suffix = "" if ok["device"].nunique() == 1 else f"-{device}"
            name = f"privacy_vs_{cost.split('_')[0]}{suffix}"
            written += save(privacy_vs_cost(rows, cost, threshold, device), out_dir, name)
    written += save(accuracy_vs_privacy(ok, threshold), out_dir, "accuracy_vs_ssim")
    written += reconstruction_grids(run_dir, ok, out_dir)
    return written, notes


def privacy_vs_cost(rows: pd.DataFrame, cost: str, threshold: float, device: str):
    """SSIM and PSNR against ``cost``: colour = attack, marker = split, Pareto front of the worst case."""
    attacks = list(dict.fromkeys(rows["attack"]))
    splits = list(dict.fromkeys(rows["split"]))
    colours = dict(zip(attacks, plt.get_cmap("tab10").colors))
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for axis, leak in zip(axes, LEAK_AXES):
        for (attack, split), group in rows.groupby(["attack", "split"], sort=False):
            axis.scatter(group[cost], group[leak], color=colours[attack], marker=MARKERS[splits.index(split) % len(MARKERS)],
                         s=55, alpha=0.8, edgecolor="black", linewidth=0.4)
        front = pareto_front(rows, cost, leak)
        axis.step(list(front[cost]) + [rows[cost].max()], list(front[leak]) + [front[leak].iloc[-1]],
                  where="post", color="black", linestyle="--", linewidth=1.2)
        if leak == "ssim_mean":
            axis.axhline(threshold, color="tab:red", linewidth=1, linestyle=":")
        axis.set_xlabel(COST_AXES[cost])
        axis.set_ylabel(LEAK_AXES[leak])
        if rows[cost].max() / max(rows[cost].min(), 1e-12) > 30:
            axis.set_xscale("log")
    handles = [plt.Line2D([], [], color=colours[a], marker="o", linestyle="", markersize=8, label=a) for a in attacks]
    handles += [plt.Line2D([], [], color="grey", marker=MARKERS[i % len(MARKERS)], linestyle="", markersize=8,
                           label=f"split {s}") for i, s in enumerate(splits)]
    handles.append(plt.Line2D([], [], color="black", linestyle="--", label="Pareto front (best attack)"))
    handles.append(plt.Line2D([], [], color="tab:red", linestyle=":", label=f"SSIM {threshold:g}: unrecognisable below"))
    figure.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.suptitle(f"Privacy leak against {'latency' if cost.startswith('latency') else 'energy'} on {device} "
                    f"(one point per configuration and attack)")
    figure.tight_layout()
    return figure


def pareto_front(rows: pd.DataFrame, cost: str, leak: str) -> pd.DataFrame:
    """Configurations no other beats on both cost and leak (leak = the best attack's value)."""
    per_config = rows.groupby("configuration").agg({cost: "first", leak: "max"}).dropna()
    per_config = per_config.sort_values([cost, leak])
    front, best = [], np.inf
    for _, row in per_config.iterrows():
        if row[leak] < best:
            front.append(row)
            best = row[leak]
    return pd.DataFrame(front)


def accuracy_vs_privacy(rows: pd.DataFrame, threshold: float):
    """Accuracy against SSIM: colour = defence, marker = attack."""
    defences = list(dict.fromkeys(rows["defence"] + " (" + rows["defence_applied"] + ")"))
    attacks = list(dict.fromkeys(rows["attack"]))
    colours = dict(zip(defences, plt.get_cmap("tab10").colors))
    figure, axis = plt.subplots(figsize=(9, 5.5))
    labelled = rows.assign(defence_label=rows["defence"] + " (" + rows["defence_applied"] + ")")
    for (defence, attack), group in labelled.groupby(["defence_label", "attack"], sort=False):
        axis.scatter(group["ssim_mean"], 100 * group["accuracy"], color=colours[defence],
                     marker=MARKERS[attacks.index(attack) % len(MARKERS)], s=60, alpha=0.8,
                     edgecolor="black", linewidth=0.4)
    axis.axvline(threshold, color="tab:red", linewidth=1, linestyle=":")
    axis.set_xlabel(LEAK_AXES["ssim_mean"])
    axis.set_ylabel("cloud top-1 accuracy on received features (%)")
    axis.set_title("Utility against privacy for each defence (one point per configuration and attack)")
    handles = [plt.Line2D([], [], color=colours[d], marker="o", linestyle="", markersize=8,
                          label=d.replace(" (none)", "")) for d in defences]
    handles += [plt.Line2D([], [], color="grey", marker=MARKERS[i % len(MARKERS)], linestyle="", markersize=8,
                           label=a) for i, a in enumerate(attacks)]
    handles.append(plt.Line2D([], [], color="tab:red", linestyle=":", label=f"SSIM {threshold:g}"))
    axis.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    return figure


def grid_configuration(rows: pd.DataFrame) -> str:
    """The configuration a split's grid shows: undefended, fp32, first format, first device if possible."""
    ranked = rows.assign(_defended=rows["defence_applied"] != "none", _int8=rows["precision"] != "fp32")
    return ranked.sort_values(["_defended", "_int8", "device", "format"]).iloc[0]["configuration"]


def reconstruction_grids(run_dir: Path, rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One grid per split: originals on top, one row per attack (scores in the row label)."""
    originals = np.load(run_dir / "inputs.npy", allow_pickle=False)
    written = []
    for split, split_rows in rows.groupby("split", sort=False):
        key = grid_configuration(split_rows)
        recons = results.read_reconstructions(run_dir, key)
        if not recons:
            continue
        config_rows = split_rows[split_rows["configuration"] == key].set_index("attack")
        count = len(next(iter(recons.values())))
        figure = image_grid(originals[:count], recons, config_rows)
        figure.suptitle(f"Split {split}: private images (top) and reconstructions\n{key}", fontsize=11)
        figure.subplots_adjust(top=1 - 0.7 / figure.get_figheight())
        written += save(figure, out_dir, f"reconstructions_{split}")
    return written


def image_grid(originals: np.ndarray, recons: dict, config_rows: pd.DataFrame):
    rows = [("private images", originals)] + list(recons.items())
    count = len(originals)
    figure, axes = plt.subplots(len(rows), count, figsize=(1.15 * count + 2.2, 1.25 * len(rows) + 0.6),
                                squeeze=False)
    for r, (label, images) in enumerate(rows):
        if label in config_rows.index:
            row = config_rows.loc[label]
            label = f"{label}\nSSIM {row['ssim_mean']:.2f}\nPSNR {row['psnr_mean']:.1f} dB"
        for c in range(count):
            axis = axes[r][c]
            image = np.clip(images[c], 0, 1)
            axis.imshow(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.grid(False)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    figure.subplots_adjust(wspace=0.05, hspace=0.08)
    return figure
