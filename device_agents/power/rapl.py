"""Intel/AMD RAPL through powercap: cumulative energy counters turned into power.

energy_uj wraps at max_energy_range_uj: a reading below the previous one means the counter went
round once, so the range is added. Power is the energy difference over the time between reads.
"""

import os
import re
import time

from .base import Probe, open_value, read_number, read_text, sorted_glob, under

ZONE = re.compile(r"^intel-rapl:\d+$")
SUM_RAIL = "RAPL_PACKAGES"


class RaplProbe(Probe):
    name = "rapl"
    max_hz = 1000.0

    def __init__(self, zones, clock=time.monotonic_ns):
        self.zones = zones  # [(rail, energy_uj SysfsValue, range in µJ)]
        self.clock = clock
        rails = [rail for rail, _, _ in zones]
        boundaries = dict((rail, "RAPL domain {} (CPU-side, not the whole system)".format(rail))
                          for rail in rails)
        boundaries[SUM_RAIL] = "sum of the RAPL package domains (CPU packages, not the whole system)"
        Probe.__init__(self, rails + [SUM_RAIL], boundaries, SUM_RAIL)
        self.summed = [rail for rail in rails if rail.startswith("package")] or rails
        self.previous = self._counters()
        self.last_watts = dict((rail, 0.0) for rail in self.rails)

    def _counters(self):
        return self.clock(), [energy.read() for _, energy, _ in self.zones]

    def read(self):
        then, before = self.previous
        now, after = self._counters()
        if now <= then:
            return dict(self.last_watts)
        self.previous = (now, after)
        seconds = (now - then) / 1e9
        watts = {}
        for (rail, _, span), old, new in zip(self.zones, before, after):
            delta = new - old if new >= old else new + span - old
            watts[rail] = delta / 1e6 / seconds
        watts[SUM_RAIL] = sum(watts[rail] for rail in self.summed)
        self.last_watts = watts
        return dict(watts)

    @classmethod
    def find(cls, root, vcgencmd=None, clock=time.monotonic_ns):
        zones = []
        for directory in sorted_glob(under(root, "/sys/class/powercap/intel-rapl:*")):
            if not ZONE.match(os.path.basename(directory)):
                continue
            energy = open_value(os.path.join(directory, "energy_uj"))
            if energy:
                span = read_number(os.path.join(directory, "max_energy_range_uj"))
                zones.append((read_text(os.path.join(directory, "name")), energy, span))
        return cls(zones, clock) if zones else None
