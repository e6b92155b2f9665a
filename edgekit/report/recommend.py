"""The recommendation: per device, the fastest and the most energy-frugal configuration whose
reconstructions stay unrecognisable (the best attack's mean SSIM under a threshold, 0.3 in [A]),
and the fastest one on each what-if link profile.

"Fastest" is by what a user waits for: the measured end-to-end time where the online phase
measured it (else the device part's time, said so), and the predicted end-to-end time per link
profile. A difference smaller than the measured spread is not a difference: every configuration
whose median's 95% interval (``edgekit.report.noise``) overlaps the fastest one's is tied with it,
and the tie goes to the lowest worst-case SSIM (then the lower median). Each pick carries the
interval it relied on and the configurations it was tied with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from edgekit.links import format_rate
from edgekit.report.noise import CONFIDENCE, Interval, median_interval, point

DEFAULT_THRESHOLD = 0.3

# What each ranking reads: the summary's (or the predictions') column, and its energy on the same footing.
MEASURED_E2E, DEVICE_ONLY, PREDICTED_E2E = "e2e_ms_p50", "latency_ms_p50", "predicted_e2e_ms"
BASIS_WORDS = {MEASURED_E2E: "measured end to end", DEVICE_ONLY: "device part only",
               PREDICTED_E2E: "predicted end to end"}


@dataclass(frozen=True)
class Choice:
    configuration: str
    split: str
    format: str
    precision: str
    defence: str
    latency_ms_p50: float
    e2e_ms_p50: float
    energy_mj_per_inference: float
    e2e_mj_per_inference: float
    accuracy: float
    worst_ssim: float
    worst_attack: str


@dataclass(frozen=True)
class Tied:
    """A configuration within noise of the fastest one."""

    configuration: str
    split: str
    median_ms: float
    interval_ms: tuple[float, float]
    worst_ssim: float


@dataclass(frozen=True)
class Pick:
    """The fastest private configuration by the latency ``ranked_by`` (on link ``link`` for the
    predicted one), ties within noise going to the lower worst SSIM."""

    ranked_by: str
    link: str | None
    choice: Choice
    median_ms: float
    interval_ms: tuple[float, float]  # the confidence interval of the median the tie rule relied on
    confidence: float                 # what that interval achieves (NaN: no per-inference records)
    records: int                      # per-inference records behind it
    fastest: str                      # the configuration with the lowest median
    tied: tuple[Tied, ...]            # every configuration within noise of the fastest, the choice included
    energy_from: str                  # the energy column on the same footing
    energy_mj_per_inference: float


@dataclass(frozen=True)
class Recommendation:
    device: str
    threshold: float
    fastest: Pick | None
    most_frugal: Choice | None
    energy_from: str | None  # e2e_mj_per_inference (online phase) or energy_mj_per_inference (compute)
    closest: Choice | None   # the least leaky configuration, shown when none qualifies
    by_link: tuple[Pick, ...]
    note: str


def worst_case(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per successful configuration: its measurements and its most successful attack."""
    ok = summary[(summary["status"] == "ok") & summary["ssim_mean"].notna()]
    if ok.empty:
        return ok.assign(worst_attack=pd.Series(dtype="string"), worst_ssim=pd.Series(dtype=float))
    worst = ok.loc[ok.groupby("configuration")["ssim_mean"].idxmax()]
    return worst.assign(worst_attack=worst["attack"], worst_ssim=worst["ssim_mean"]).reset_index(drop=True)


def recommend(summary: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, inferences: pd.DataFrame | None = None,
              online_inferences: pd.DataFrame | None = None,
              predictions: pd.DataFrame | None = None) -> list[Recommendation]:
    """Per device. ``inferences`` / ``online_inferences``: the per-inference tables the intervals come
    from (without them, latencies are points and only equal ones tie); ``predictions``: the
    ``link_predictions`` table (without it, no per-link picks)."""
    worst = worst_case(summary)
    records = _Records(inferences, online_inferences)
    out = []
    for device in sorted(summary["device"].dropna().unique()):
        rows = worst[worst["device"] == device]
        if rows.empty:
            out.append(Recommendation(device, threshold, None, None, None, None, (),
                                      "no configuration was attacked successfully (no attacks, or every one failed)"))
            continue
        private = rows[rows["worst_ssim"] < threshold]
        closest = _choice(rows.loc[rows["worst_ssim"].idxmin()])
        if private.empty:
            out.append(Recommendation(device, threshold, None, None, None, closest, (),
                                      f"no configuration keeps every attack under SSIM {threshold:g}"))
            continue
        notes = []
        fastest = _fastest_measured(private, records, notes)
        energy_from = "e2e_mj_per_inference" if private["e2e_mj_per_inference"].notna().any() \
            else "energy_mj_per_inference"
        measured = private[private[energy_from].notna()]
        frugal = _choice(measured.loc[measured[energy_from].idxmin()]) if len(measured) else None
        if not frugal:
            notes.append("energy not measured on this device (no power probe)")
        by_link = _fastest_per_link(private, predictions, records)
        out.append(Recommendation(device, threshold, fastest, frugal, energy_from if frugal else None, closest,
                                  by_link, "; ".join(notes)))
    return out


class _Records:
    """The per-inference latencies of each configuration, as intervals of their median."""

    def __init__(self, inferences: pd.DataFrame | None, online: pd.DataFrame | None):
        self._tables = {"latency_ms": inferences, "e2e_ms": online, "cloud_ms": online}

    def interval(self, configuration: str, column: str, median: float) -> Interval:
        table = self._tables[column]
        if table is None or table.empty:
            return point(median)
        values = table.loc[table["configuration"] == configuration, column]
        return median_interval(values, CONFIDENCE, median) if values.notna().any() else point(median)


def _fastest_measured(private: pd.DataFrame, records: _Records, notes: list[str]) -> Pick:
    """By the measured end-to-end time where the online phase measured it, else by device time."""
    timed = private[private[MEASURED_E2E].notna()]
    if timed.empty:
        notes.append("end-to-end time not measured: ranked by the device part's time alone, which leaves out "
                     "the link and the cloud part")
        intervals = {row["configuration"]: records.interval(row["configuration"], "latency_ms", row[DEVICE_ONLY])
                     for _, row in private.iterrows()}
        return _pick(private, DEVICE_ONLY, None, intervals, "energy_mj_per_inference")
    left_out = sorted(set(private["configuration"]) - set(timed["configuration"]))
    if left_out:
        notes.append(f"end-to-end time not measured for {', '.join(left_out)}: left out of that ranking")
    intervals = {row["configuration"]: records.interval(row["configuration"], "e2e_ms", row[MEASURED_E2E])
                 for _, row in timed.iterrows()}
    return _pick(timed, MEASURED_E2E, None, intervals, "e2e_mj_per_inference")


def _fastest_per_link(private: pd.DataFrame, predictions: pd.DataFrame | None, records: _Records) -> tuple[Pick, ...]:
    """The predicted interval: the device part's interval and the cloud part's (from their records)
    shifted by what the profile adds (RTT, transfer), which has no spread of its own."""
    if predictions is None or predictions.empty:
        return ()
    picks = []
    for link, rows in predictions.groupby("link", sort=False):
        rows = rows.set_index("configuration")
        candidates = private[private["configuration"].isin(rows.index)].copy()
        candidates[PREDICTED_E2E] = candidates["configuration"].map(rows[PREDICTED_E2E])
        candidates["predicted_energy_mj_per_inference"] = \
            candidates["configuration"].map(rows["predicted_energy_mj_per_inference"])
        candidates = candidates[candidates[PREDICTED_E2E].notna()]
        if candidates.empty:
            continue
        intervals = {}
        for key, row in candidates.set_index("configuration").iterrows():
            predicted = rows.loc[key]
            device = records.interval(key, "latency_ms", row[DEVICE_ONLY])
            cloud = records.interval(key, "cloud_ms", predicted["cloud_ms_p50"])
            # what the prediction adds to the timed inference: a device defence, the RTT, the transfer
            fixed = predicted["device_ms_p50"] - row[DEVICE_ONLY] + predicted["profile_rtt_ms"] \
                + predicted["predicted_transfer_ms"]
            intervals[key] = device.shifted(fixed).plus(cloud)
        picks.append(_pick(candidates, PREDICTED_E2E, str(link), intervals, "predicted_energy_mj_per_inference"))
    return tuple(picks)


def _pick(candidates: pd.DataFrame, ranked_by: str, link: str | None, intervals: dict[str, Interval],
          energy_from: str) -> Pick:
    """The fastest of ``candidates`` by ``ranked_by``; those within noise of it tie, the lower worst SSIM wins."""
    fastest = candidates.loc[candidates[ranked_by].idxmin()]
    reference = intervals[fastest["configuration"]]
    tied = candidates[[intervals[key].overlaps(reference) for key in candidates["configuration"]]]
    chosen = tied.sort_values(["worst_ssim", ranked_by, "configuration"]).iloc[0]
    interval = intervals[chosen["configuration"]]
    ties = tuple(Tied(row["configuration"], row["split"], float(row[ranked_by]),
                      (intervals[row["configuration"]].low, intervals[row["configuration"]].high),
                      float(row["worst_ssim"])) for _, row in tied.sort_values(ranked_by).iterrows())
    return Pick(ranked_by, link, _choice(chosen), float(chosen[ranked_by]), (interval.low, interval.high),
                interval.coverage, interval.records, str(fastest["configuration"]), ties, energy_from,
                _float(chosen[energy_from]))


def _choice(row) -> Choice:
    return Choice(row["configuration"], row["split"], row["format"], row["precision"], row["defence"],
                  _float(row["latency_ms_p50"]), _float(row["e2e_ms_p50"]), _float(row["energy_mj_per_inference"]),
                  _float(row["e2e_mj_per_inference"]), _float(row["accuracy"]), _float(row["worst_ssim"]),
                  str(row["worst_attack"]))


def _float(value) -> float:
    """A measurement as a float; NaN for a missing one (pandas NA included)."""
    return math.nan if pd.isna(value) else float(value)


# --- words and JSON ------------------------------------------------------------------------------

def describe(recommendations: list[Recommendation], predictions: pd.DataFrame | None = None) -> str:
    """The recommendation in words, one paragraph per device (``predictions`` names the links' figures)."""
    lines = []
    for rec in recommendations:
        lines.append(f"{rec.device} (private means every attack's mean SSIM < {rec.threshold:g}; latencies within "
                     f"noise, i.e. overlapping {CONFIDENCE:.0%} intervals of the median, are a tie that goes to the "
                     f"lower worst SSIM):")
        if rec.fastest:
            lines.append(f"  fastest private configuration (within noise), {BASIS_WORDS[rec.fastest.ranked_by]}: "
                         f"{_words(rec.fastest.choice)}")
            lines += _pick_lines(rec.fastest, "    ")
        if rec.most_frugal:
            energy = getattr(rec.most_frugal, rec.energy_from)
            what = "online phase, compute + radio + waiting" if rec.energy_from == "e2e_mj_per_inference" \
                else "compute above idle"
            lines.append(f"  most frugal private configuration: {_words(rec.most_frugal)}: {energy:.3g} mJ per "
                         f"inference ({what})")
        if not rec.fastest:
            lines.append(f"  NONE QUALIFIES: {rec.note}.")
            if rec.closest:
                lines.append(f"  least leaky: {_words(rec.closest)}")
            continue
        if rec.note:
            lines.append(f"  ({rec.note})")
        if rec.by_link:
            lines.append("  per link profile, predicted end to end = device p50 + RTT + feature bytes at the "
                         "link's rate + cloud p50:")
            for pick in rec.by_link:
                lines.append(f"    {_link_words(pick.link, predictions)}: {_words(pick.choice)}")
                lines += _pick_lines(pick, "      ")
    return "\n".join(lines)


def _pick_lines(pick: Pick, indent: str) -> list[str]:
    if pick.records:
        spread = (f"{_ms(pick.median_ms, pick.interval_ms)} ({pick.confidence:.1%} confidence interval of the "
                  f"median {_span(pick.interval_ms)}, {pick.records} inferences)")
    else:
        spread = f"{pick.median_ms:.4g} ms (no per-inference records: no interval, only equal latencies tie)"
    energy = "" if math.isnan(pick.energy_mj_per_inference) else \
        f"; {pick.energy_mj_per_inference:.3g} mJ per inference ({pick.energy_from})"
    lines = [f"{indent}{pick.ranked_by} {spread}{energy}"]
    others = [t for t in pick.tied if t.configuration != pick.choice.configuration]
    if others:
        listed = ", ".join(f"{t.configuration} ({_ms(t.median_ms, t.interval_ms)}, {_span(t.interval_ms)}, "
                           f"worst SSIM {t.worst_ssim:.3f})" for t in others)
        if pick.fastest == pick.choice.configuration:
            verdict = "the fastest also leaks least of them"
        else:
            verdict = f"chosen over the fastest ({pick.fastest}) for its lower worst SSIM"
        lines.append(f"{indent}tied within noise with {listed}; {verdict}")
    return lines


def _digits(interval: tuple[float, float]) -> int:
    """Significant figures that tell an interval's bounds apart (4 to 8)."""
    low, high = interval
    for digits in range(4, 9):
        if f"{low:.{digits}g}" != f"{high:.{digits}g}":
            return digits
    return 4


def _ms(value: float, interval: tuple[float, float]) -> str:
    return f"{value:.{_digits(interval)}g} ms"


def _span(interval: tuple[float, float]) -> str:
    digits = _digits(interval)
    return f"[{interval[0]:.{digits}g}, {interval[1]:.{digits}g}] ms"


def _link_words(link: str, predictions: pd.DataFrame | None) -> str:
    if predictions is None or predictions.empty:
        return link
    row = predictions[predictions["link"] == link].iloc[0]
    return f"{link} ({format_rate(row['profile_upload_mbps'])} up, RTT {row['profile_rtt_ms']:g} ms)"


def _words(choice: Choice) -> str:
    return (f"split {choice.split}, {choice.format} {choice.precision}, defence {choice.defence}, "
            f"accuracy {choice.accuracy:.1%}, worst SSIM {choice.worst_ssim:.3f} ({choice.worst_attack})")


def as_json(recommendations: list[Recommendation]) -> list[dict]:
    """Strict JSON: no NaN or infinity (null instead), tuples as lists."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value
    return [clean(asdict(rec)) for rec in recommendations]
