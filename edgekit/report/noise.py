"""How far apart two latencies must be to count as different: confidence intervals of the median.

The interval is distribution-free (order statistics, no normality assumed; latency distributions
are skewed and heavy-tailed): with the n per-inference times sorted, x(j) <= median <= x(n-j+1)
holds with probability 1 - 2 P(B <= j-1) for B ~ Binomial(n, 1/2), and j is the largest index
that keeps that at or above the confidence asked for. Under six records no pair reaches 95%; the
interval is then the whole range and its ``coverage`` says how sure it is.

Two configurations are within noise of each other when their intervals overlap. Overlapping 95%
intervals is a conservative test: it calls a tie more often than a 5% test of the difference would,
which is the side a recommendation should err on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A median and its confidence interval, from ``records`` values; ``coverage`` is what the
    order statistics achieve (NaN and a point when there were no records)."""

    median: float
    low: float
    high: float
    coverage: float
    records: int

    def overlaps(self, other: "Interval") -> bool:
        return self.low <= other.high and other.low <= self.high

    def shifted(self, offset: float) -> "Interval":
        """The same interval for ``value + offset`` (a constant added to every record)."""
        return Interval(self.median + offset, self.low + offset, self.high + offset, self.coverage, self.records)

    def plus(self, other: "Interval") -> "Interval":
        """An interval for a sum of two independently measured medians: the bounds added (wider than
        needed, never narrower), the lower coverage of the two kept."""
        return Interval(self.median + other.median, self.low + other.low, self.high + other.high,
                        min(self.coverage, other.coverage), min(self.records, other.records))


def point(value: float) -> Interval:
    """A value with no records behind it: an interval of width zero and unknown coverage."""
    return Interval(value, value, value, math.nan, 0)


def median_interval(values, confidence: float = CONFIDENCE, median: float | None = None) -> Interval:
    """The distribution-free ``confidence`` interval of the median of ``values`` (NaNs dropped).

    ``median``: the point estimate to report (e.g. the summary's p50); default the records' median.
    """
    data = np.sort(np.asarray(values, dtype=float))
    data = data[~np.isnan(data)]
    n = len(data)
    if n == 0:
        return point(math.nan if median is None else median)
    centre = float(np.median(data)) if median is None else float(median)
    tail = binom.cdf(np.arange(n // 2 + 1), n, 0.5)  # P(B <= k) for k = 0 .. n/2
    admissible = np.flatnonzero(tail <= (1 - confidence) / 2)
    j = int(admissible[-1]) + 1 if len(admissible) else 1  # the interval is [x(j), x(n-j+1)], 1-based
    coverage = 1 - 2 * float(tail[j - 1])
    return Interval(centre, float(data[j - 1]), float(data[n - j]), coverage, n)
