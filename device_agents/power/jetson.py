"""NVIDIA Jetson INA3221 rails: hwmon (JetPack 5/6) and iio (JetPack 4).

Directories are globbed (hwmonN and iio:deviceN change between boots) and rails are matched by
label; channels labelled "NC" are unconnected and skipped.
"""

import os
import re

from .base import Probe, open_value, read_text, sorted_glob, under

HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"
# Rails that carry the whole module's input, in order of preference.
MODULE_INPUTS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")
SUM_RAIL = "SUM_OF_RAILS"


def jetson_boundaries(labels):
    """Boundaries per rail and the primary rail; a sum rail when no module-input rail exists."""
    boundaries = {}
    for label in labels:
        if label in MODULE_INPUTS:
            boundaries[label] = "Jetson module input ({}), excludes the carrier board".format(label)
        else:
            boundaries[label] = "Jetson rail {} inside the module".format(label)
    for label in MODULE_INPUTS:
        if label in labels:
            return list(labels), boundaries, label
    boundaries[SUM_RAIL] = "sum of the listed rails (no module-input rail on this board)"
    return list(labels) + [SUM_RAIL], boundaries, SUM_RAIL


class _JetsonProbe(Probe):
    max_hz = 10.0

    def __init__(self, channels):
        self.channels = channels
        labels = [label for label, _ in channels]
        rails, boundaries, primary = jetson_boundaries(labels)
        Probe.__init__(self, rails, boundaries, primary)

    def read(self):
        values = dict((label, self.read_channel(paths)) for label, paths in self.channels)
        if self.primary == SUM_RAIL:
            values[SUM_RAIL] = sum(values.values())
        return values


class JetsonHwmonProbe(_JetsonProbe):
    """INA3221 through hwmon: in{k}_input mV times curr{k}_input mA (no power file)."""

    name = "jetson-ina3221-hwmon"

    @staticmethod
    def read_channel(paths):
        millivolts, milliamps = paths
        return millivolts.read() * milliamps.read() / 1e6

    @classmethod
    def find(cls, root, vcgencmd=None):
        channels = []
        for directory in sorted_glob(under(root, HWMON_GLOB)):
            for label_path in sorted_glob(os.path.join(directory, "in*_label")):
                k = re.match(r"in(\d+)_label$", os.path.basename(label_path)).group(1)
                label = read_text(label_path)
                if label == "NC":
                    continue
                volts = open_value(os.path.join(directory, "in{}_input".format(k)))
                amps = open_value(os.path.join(directory, "curr{}_input".format(k)))
                if volts and amps:
                    channels.append((label, (volts, amps)))
        return cls(channels) if channels else None


class JetsonIioProbe(_JetsonProbe):
    """INA3221 through the JetPack 4 iio driver: in_power{k}_input in mW."""

    name = "jetson-ina3221-iio"

    @staticmethod
    def read_channel(milliwatts):
        return milliwatts.read() / 1e3

    @classmethod
    def find(cls, root, vcgencmd=None):
        channels = []
        for directory in sorted_glob(under(root, IIO_GLOB)):
            for name_path in sorted_glob(os.path.join(directory, "rail_name_*")):
                k = name_path.rsplit("_", 1)[1]
                label = read_text(name_path)
                power = open_value(os.path.join(directory, "in_power{}_input".format(k)))
                if label != "NC" and power:
                    channels.append((label, power))
        return cls(channels) if channels else None
