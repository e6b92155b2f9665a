"""The recommendation: per device, the fastest and the most energy-frugal configuration whose
reconstructions stay unrecognisable (the best attack's mean SSIM under a threshold, 0.3 in [A])."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

DEFAULT_THRESHOLD = 0.3


@dataclass(frozen=True)
class Choice:
    configuration: str
    split: str
    format: str
    precision: str
    defence: str
    latency_ms_p50: float
    energy_mj_per_inference: float
    accuracy: float
    worst_ssim: float
    worst_attack: str


@dataclass(frozen=True)
class Recommendation:
    device: str
    threshold: float
    fastest: Choice | None
    most_frugal: Choice | None
    closest: Choice | None  # the least leaky configuration, shown when none qualifies
    note: str


def worst_case(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per successful configuration: its measurements and its most successful attack."""
    ok = summary[(summary["status"] == "ok") & summary["ssim_mean"].notna()]
    if ok.empty:
        return ok.assign(worst_attack=pd.Series(dtype="string"), worst_ssim=pd.Series(dtype=float))
    worst = ok.loc[ok.groupby("configuration")["ssim_mean"].idxmax()]
    return worst.assign(worst_attack=worst["attack"], worst_ssim=worst["ssim_mean"]).reset_index(drop=True)


def recommend(summary: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> list[Recommendation]:
    worst = worst_case(summary)
    out = []
    for device in sorted(summary["device"].dropna().unique()):
        rows = worst[worst["device"] == device]
        if rows.empty:
            out.append(Recommendation(device, threshold, None, None, None,
                                      "no configuration was attacked successfully (no attacks, or every one failed)"))
            continue
        private = rows[rows["worst_ssim"] < threshold]
        closest = _choice(rows.loc[rows["worst_ssim"].idxmin()])
        if private.empty:
            out.append(Recommendation(device, threshold, None, None, closest,
                                      f"no configuration keeps every attack under SSIM {threshold:g}"))
            continue
        fastest = _choice(private.loc[private["latency_ms_p50"].idxmin()])
        measured = private[private["energy_mj_per_inference"].notna()]
        frugal = _choice(measured.loc[measured["energy_mj_per_inference"].idxmin()]) if len(measured) else None
        note = "" if frugal else "energy not measured on this device (no power probe)"
        out.append(Recommendation(device, threshold, fastest, frugal, closest, note))
    return out


def _choice(row) -> Choice:
    return Choice(row["configuration"], row["split"], row["format"], row["precision"], row["defence"],
                  float(row["latency_ms_p50"]), float(row["energy_mj_per_inference"]), float(row["accuracy"]),
                  float(row["worst_ssim"]), str(row["worst_attack"]))


def describe(recommendations: list[Recommendation]) -> str:
    """The recommendation in words, one paragraph per device."""
    lines = []
    for rec in recommendations:
        lines.append(f"{rec.device} (private means every attack's mean SSIM < {rec.threshold:g}):")
        if rec.fastest:
            lines.append(f"  fastest private configuration:   {_words(rec.fastest)}")
        if rec.most_frugal:
            lines.append(f"  most frugal private configuration: {_words(rec.most_frugal)}")
        if not rec.fastest:
            lines.append(f"  NONE QUALIFIES: {rec.note}.")
            if rec.closest:
                lines.append(f"  least leaky: {_words(rec.closest)}")
        elif rec.note:
            lines.append(f"  ({rec.note})")
    return "\n".join(lines)


def _words(choice: Choice) -> str:
    energy = "" if math.isnan(choice.energy_mj_per_inference) else f", {choice.energy_mj_per_inference:.3g} mJ"
    return (f"split {choice.split}, {choice.format} {choice.precision}, defence {choice.defence}: "
            f"{choice.latency_ms_p50:.3g} ms p50{energy}, accuracy {choice.accuracy:.1%}, "
            f"worst SSIM {choice.worst_ssim:.3f} ({choice.worst_attack})")


def as_json(recommendations: list[Recommendation]) -> list[dict]:
    def clean(value):
        return None if isinstance(value, float) and math.isnan(value) else value
    return [{k: ({kk: clean(vv) for kk, vv in v.items()} if isinstance(v, dict) else clean(v))
             for k, v in asdict(rec).items()} for rec in recommendations]
