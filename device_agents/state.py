"""Device state recorded before and after every run: platform, CPU clocks, temperatures, throttling.

Every path is read under a configurable sysfs root so fixture trees exercise the same code.
"""

import os
import platform
import re

from .power.base import read_text, run_tool, sorted_glob, under

THROTTLE_FLAGS = ("under-voltage", "frequency capped", "throttled", "soft temperature limit")


def _text(root, path):
    try:
        return read_text(under(root, path))
    except (OSError, UnicodeDecodeError):
        return None


def platform_info(root="/"):
    """Board model (Pi device tree, Jetson release and power mode) and the OS."""
    tegra = _text(root, "/etc/nv_tegra_release")
    return {
        "model": _text(root, "/proc/device-tree/model"),
        "nv_tegra_release": tegra.splitlines()[0] if tegra else None,
        "nvpmodel": (run_tool("nvpmodel", "-q") or "").strip() or None if tegra else None,
        "machine": platform.machine(),
        "system": platform.system(),
        "release": platform.release(),
    }


def cpu_info(root="/"):
    """Governor and current/min/max frequency (kHz) per CPU."""
    cpus = {}
    for directory in sorted_glob(under(root, "/sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        cpu = os.path.basename(os.path.dirname(directory))
        entry = {}
        for key, name in (("governor", "scaling_governor"), ("cur_khz", "scaling_cur_freq"),
                          ("min_khz", "scaling_min_freq"), ("max_khz", "scaling_max_freq")):
            value = _text(directory, name)
            entry[key] = int(value) if value and key != "governor" and value.isdigit() else value
        cpus[cpu] = entry
    return dict(sorted(cpus.items(), key=lambda item: int(item[0][3:])))


def governors(cpus):
    return sorted(set(entry.get("governor") for entry in cpus.values() if entry.get("governor")))


def thermal_zones(root="/"):
    """[{zone, type, temp_c}] from thermal_zone*/temp (milli-degrees C)."""
    zones = []
    for directory in sorted_glob(under(root, "/sys/class/thermal/thermal_zone*")):
        temp = _text(directory, "temp")
        try:
            celsius = int(temp) / 1000.0
        except (TypeError, ValueError):
            celsius = None
        zones.append({"zone": os.path.basename(directory), "type": _text(directory, "type"),
                      "temp_c": celsius})
    return sorted(zones, key=lambda zone: int(re.sub(r"\D", "", zone["zone"]) or 0))


def decode_throttled(value):
    """Flags of ``vcgencmd get_throttled``: bits 0-3 happening now, bits 16-19 since boot."""
    return {
        "raw": hex(value),
        "now": [name for bit, name in enumerate(THROTTLE_FLAGS) if value >> bit & 1],
        "since_boot": [name for bit, name in enumerate(THROTTLE_FLAGS) if value >> (16 + bit) & 1],
    }


def throttling(vcgencmd="vcgencmd"):
    """Decoded Pi throttling flags, or None where vcgencmd is absent."""
    text = run_tool(vcgencmd, "get_throttled")
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", text or "")
    return decode_throttled(int(match.group(1), 16)) if match else None


def snapshot(root="/", vcgencmd="vcgencmd"):
    """The state that can change during a run."""
    cpus = cpu_info(root)
    return {"governors": governors(cpus), "cpus": cpus, "thermal": thermal_zones(root),
            "throttling": throttling(vcgencmd)}


def state_warnings(before, after):
    """One line per reason to distrust the figures: throttling or under-voltage seen on the board."""
    warnings = []
    for label, state in (("before", before), ("after", after)):
        flags = (state or {}).get("throttling") or {}
        if flags.get("now") or flags.get("since_boot"):
            warnings.append("Pi throttling {} the run (get_throttled {}): now [{}], since boot [{}]".format(
                label, flags["raw"], ", ".join(flags["now"]), ", ".join(flags["since_boot"])))
    for governor in (before or {}).get("governors") or ():
        if governor != "performance":
            warnings.append("CPU governor {!r}: latency varies with frequency scaling "
                            "(set 'performance' for stable figures)".format(governor))
    if after and before and after.get("governors") != before.get("governors"):
        warnings.append("CPU governor changed during the run: {} -> {}".format(
            before.get("governors"), after.get("governors")))
    return warnings
