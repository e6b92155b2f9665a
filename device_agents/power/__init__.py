"""Power probes: detection, construction by name, and the sampler that reads them.

Auto-detection prefers the most complete sensor: Jetson INA3221 > Pi 5 PMIC > INA2xx > RAPL > none.
"""

from ..errors import AgentError
from .base import NoneProbe, Probe
from .ina2xx import Ina2xxProbe
from .jetson import JetsonHwmonProbe, JetsonIioProbe
from .pi5 import Pi5PmicProbe
from .rapl import RaplProbe
from .sampler import Sampler

PROBES = (JetsonHwmonProbe, JetsonIioProbe, Pi5PmicProbe, Ina2xxProbe, RaplProbe)
PROBE_NAMES = ("auto",) + tuple(cls.name for cls in PROBES) + ("none",)

__all__ = ["Probe", "Sampler", "PROBE_NAMES", "detect_probes", "make_probe"]


def detect_probes(sysfs_root="/", vcgencmd="vcgencmd"):
    """Every probe found on this machine, best first."""
    found = []
    for cls in PROBES:
        try:
            probe = cls.find(sysfs_root, vcgencmd)
        except (OSError, ValueError):
            probe = None
        if probe is not None:
            found.append(probe)
    return found


def make_probe(name, sysfs_root="/", vcgencmd="vcgencmd"):
    """The probe called ``name`` ("auto": the best detected, else none); AgentError if absent."""
    if name == "none":
        return NoneProbe()
    if name == "auto":
        found = detect_probes(sysfs_root, vcgencmd)
        return found[0] if found else NoneProbe()
    for cls in PROBES:
        if cls.name == name:
            probe = cls.find(sysfs_root, vcgencmd)
            if probe is None:
                raise AgentError("power probe {!r} not found under sysfs root {!r}".format(name, sysfs_root))
            return probe
    raise AgentError("unknown power probe {!r}; accepted: {}".format(name, ", ".join(PROBE_NAMES)))
