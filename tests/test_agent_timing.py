"""Latency statistics as TFLite benchmark_model / onnxruntime_perf_test report them."""

import pytest

from device_agents.timing import latency_stats


def test_statistics_by_hand():
    stats = latency_stats([4.0, 1.0, 3.0, 2.0, 5.0], first_ms=9.0, warmup_ms=[6.0, 8.0])
    # mean 3, population std sqrt((4+1+0+1+4)/5) = sqrt(2); median 3;
    # p90 by linear interpolation over sorted 1..5: position 0.9*4 = 3.6 -> 4 + 0.6 = 4.6; p5: 1 + 0.2 = 1.2.
    assert stats == pytest.approx({
        "count": 5, "first_ms": 9.0, "warmup_count": 2, "warmup_mean_ms": 7.0,
        "min_ms": 1.0, "max_ms": 5.0, "mean_ms": 3.0, "std_ms": 2 ** 0.5,
        "p5_ms": 1.2, "p50_ms": 3.0, "p90_ms": 4.6, "p95_ms": 4.8, "p99_ms": 4.96})


def test_no_warmup():
    stats = latency_stats([2.0], first_ms=3.0, warmup_ms=[])
    assert stats["warmup_mean_ms"] is None and stats["warmup_count"] == 0 and stats["p99_ms"] == 2.0
