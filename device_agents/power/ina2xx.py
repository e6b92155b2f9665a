"""INA219 / INA226 (and relatives) through the Linux hwmon ina2xx driver: power1_input in µW."""

import os

from .base import Probe, open_value, read_text, sorted_glob, under

CHIPS = ("ina219", "ina220", "ina226", "ina230", "ina231")


class Ina2xxProbe(Probe):
    name = "ina2xx-hwmon"
    max_hz = 100.0

    def __init__(self, channels):
        self.channels = channels
        rails = [rail for rail, _ in channels]
        boundaries = dict((rail, "external {} shunt: whatever supply it is wired into".format(rail))
                          for rail in rails)
        Probe.__init__(self, rails, boundaries, rails[0] if len(rails) == 1 else "SUM_OF_SHUNTS")
        if len(rails) > 1:
            self.rails.append(self.primary)
            self.boundaries[self.primary] = "sum of the external shunts"

    def read(self):
        values = dict((rail, microwatts.read() / 1e6) for rail, microwatts in self.channels)
        if self.primary not in values:
            values[self.primary] = sum(values.values())
        return values

    @classmethod
    def find(cls, root, vcgencmd=None):
        channels = []
        for directory in sorted_glob(under(root, "/sys/class/hwmon/hwmon*")):
            try:
                chip = read_text(os.path.join(directory, "name"))
            except OSError:
                continue
            power = open_value(os.path.join(directory, "power1_input")) if chip in CHIPS else None
            if power:
                device = os.path.join(directory, "device")
                where = os.path.basename(os.path.realpath(device)) if os.path.exists(device) else os.path.basename(directory)
                channels.append(("{}-{}".format(chip, where), power))
        return cls(channels) if channels else None
