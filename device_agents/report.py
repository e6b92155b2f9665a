"""Pieces of report.json that are not measurements: versions, memory, CPU affinity."""

import os
import platform

import numpy as np

from . import __version__


def versions(runner=None):
    return {
        "agent": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "runtime": getattr(runner, "runtime", None),
        "runtime_version": getattr(runner, "runtime_version", None),
    }


def memory_mb():
    """(VmRSS, VmHWM) of this process in MB from /proc/self/status; (None, None) elsewhere."""
    values = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        pass
    return values.get("VmRSS"), values.get("VmHWM")


def reset_peak_rss():
    """Restart VmHWM from the current RSS (Linux >= 4.0), so the peak measured is the run's own."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def affinity():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None

