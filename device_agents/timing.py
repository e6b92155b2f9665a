"""Latency statistics in the form TFLite benchmark_model and onnxruntime_perf_test print them."""

import numpy as np

PERCENTILES = (5, 50, 90, 95, 99)


def latency_stats(latencies_ms, first_ms, warmup_ms):
    """Steady-state statistics of ``latencies_ms``; the first inference and warm-up reported apart."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    stats = {
        "count": int(values.size),
        "first_ms": float(first_ms) if first_ms is not None else None,
        "warmup_count": len(warmup_ms),
        "warmup_mean_ms": float(np.mean(warmup_ms)) if len(warmup_ms) else None,
    }
    if values.size == 0:
        return stats
    stats.update({
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
        "mean_ms": float(values.mean()),
        "std_ms": float(values.std()),
    })
    for p, value in zip(PERCENTILES, np.percentile(values, PERCENTILES)):
        stats["p{}_ms".format(p)] = float(value)
    return stats
