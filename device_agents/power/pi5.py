"""Raspberry Pi 5 PMIC ADC through ``vcgencmd pmic_read_adc``.

Each X_A current is paired with the X_V voltage of the same rail name (the bracketed ADC indices
differ). EXT5V_V and BATT_V have no current. The rails miss the PMIC's conversion losses, so two
boundaries are reported: the raw sum of the rails and the published estimate of the board input,
1.1451 * sum + 0.5879 W.
"""

import re

from .base import Probe, run_tool

LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+)[AV]\s*$")
SUM_RAIL = "PMIC_SUM"
CORRECTED_RAIL = "PMIC_CORRECTED_TOTAL"
GAIN, OFFSET_W = 1.1451, 0.5879


def parse_pmic_adc(text):
    """``{rail: (volts, amps)}`` for the rails that have both a current and a voltage."""
    currents, volts = {}, {}
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            rail, unit, value = match.groups()
            (currents if unit == "A" else volts)[rail] = float(value)
    return dict((rail, (volts[rail], currents[rail])) for rail in currents if rail in volts)


class Pi5PmicProbe(Probe):
    name = "pi5-pmic"
    max_hz = 40.0  # one read takes about 23 ms

    def __init__(self, vcgencmd, rails):
        self.vcgencmd = vcgencmd
        boundaries = dict((rail, "Pi 5 PMIC rail {} (V*I)".format(rail)) for rail in rails)
        boundaries[SUM_RAIL] = "sum of the Pi 5 PMIC rails; misses PMIC conversion losses"
        boundaries[CORRECTED_RAIL] = ("Pi 5 board input estimated as {}*{}+{} W "
                                      "(published correction)".format(GAIN, SUM_RAIL, OFFSET_W))
        Probe.__init__(self, list(rails) + [SUM_RAIL, CORRECTED_RAIL], boundaries, CORRECTED_RAIL)

    def read(self):
        text = run_tool(self.vcgencmd, "pmic_read_adc")
        if text is None:
            raise OSError("{} pmic_read_adc failed".format(self.vcgencmd))
        pairs = parse_pmic_adc(text)
        values = dict((rail, volts * amps) for rail, (volts, amps) in pairs.items())
        total = sum(values.values())
        values[SUM_RAIL] = total
        values[CORRECTED_RAIL] = GAIN * total + OFFSET_W
        return values

    @classmethod
    def find(cls, root, vcgencmd="vcgencmd"):
        text = run_tool(vcgencmd, "pmic_read_adc")
        pairs = parse_pmic_adc(text) if text else {}
        return cls(vcgencmd, sorted(pairs)) if pairs else None
