"""``edgekit devices check``: judge what the agent's ``check`` found, with a fix for each gap.

The last check of each device is kept as ``checks/NAME.json`` under the config dir, so that
``edgekit devices list`` can show its state and time.
"""

import dataclasses
import json
import time
from dataclasses import dataclass

from device_agents.fileio import write_json
from edgekit.devices.probe import MIN_PYTHON, RUNTIME_FIXES, RUNTIME_MODULES
from edgekit.devices.settings import checks_dir

LOW_DISK = 200 << 20
HOT_C = 80.0
GOVERNOR_FIX = "echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str | None = None


def assess(check: dict, preferred_runtime: str | None) -> list[Finding]:
    """One finding per property the agent needs or the figures depend on."""
    findings = [_python(check), *_runtimes(check, preferred_runtime), _power(check), _disk(check)]
    governors = check.get("governors") or []
    scaling = [g for g in governors if g != "performance"]
    findings.append(Finding(not scaling, f"CPU governor: {', '.join(governors) or 'not exposed'}",
                            GOVERNOR_FIX if scaling else None))
    temps = [t["temp_c"] for t in check.get("temperatures") or [] if t.get("temp_c") is not None]
    hot = max(temps, default=0.0) >= HOT_C
    findings.append(Finding(not hot, f"temperature: {f'{max(temps):.0f} C max' if temps else 'n/a'}",
                            "let the board cool down (add a heatsink or fan) before measuring" if hot else None))
    throttling = check.get("throttling")
    flags = (throttling or {}).get("now", []) + (throttling or {}).get("since_boot", [])
    findings.append(Finding(not flags, f"throttling: {', '.join(flags) or ('none' if throttling else 'n/a')}",
                            "use the official power supply and a heatsink, then reboot" if flags else None))
    return findings


def save_check(device: str, check: dict, findings: list[Finding]) -> dict:
    record = {
        "device": device,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ok": all(f.ok for f in findings),
        "findings": [dataclasses.asdict(f) for f in findings],
        "check": check,
    }
    path = checks_dir() / f"{device}.json"
    write_json(path, record)
    return record | {"path": str(path)}


def last_check(device: str) -> dict | None:
    path = checks_dir() / f"{device}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _python(check) -> Finding:
    version = str(check.get("python", "?"))
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    ok = parts >= MIN_PYTHON
    return Finding(ok, f"Python {version}", None if ok else "install Python 3.8+ and set python = ... in the inventory")


def _runtimes(check, preferred):
    found = check.get("runtimes") or {}
    for fmt, modules in RUNTIME_MODULES.items():
        present = [m for m in modules if m in found]
        needed = preferred in (None, fmt)
        label = ", ".join(f"{m} {found[m] or ''}".strip() for m in present) or "none"
        yield Finding(bool(present) or not needed, f"{fmt} runtime: {label}",
                      None if present else RUNTIME_FIXES[fmt])


def _power(check) -> Finding:
    probes = [p["probe"] for p in check.get("probes") or [] if p.get("rails")]
    if probes:
        return Finding(True, f"power probes: {', '.join(probes)}")
    platform = check.get("platform") or {}
    model = platform.get("model") or ""
    if "Raspberry Pi 5" in model:
        fix = "install vcgencmd (raspi-utils) and add the user to the video group"
    elif platform.get("nv_tegra_release"):
        fix = "sudo chmod a+r /sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*/* (or the iio:device0 files)"
    elif platform.get("machine") in ("x86_64", "AMD64"):
        fix = ("sudo chmod a+r /sys/class/powercap/intel-rapl/intel-rapl:*/energy_uj "
               "(VMs and containers usually expose no RAPL: then latency only)")
    else:
        fix = "attach an INA219/INA226 (hwmon ina2xx driver) or measure with a USB meter"
    return Finding(False, "power probes: none readable (latency only)", fix)


def _disk(check) -> Finding:
    free = (check.get("disk") or {}).get("free_bytes")
    if free is None:
        return Finding(False, "free disk: unknown", "check the working directory exists")
    ok = free >= LOW_DISK
    return Finding(ok, f"free disk: {free / (1 << 30):.1f} GiB",
                   None if ok else "free space in the device's workdir (runs need the model and inputs)")

