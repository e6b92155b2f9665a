"""The probe interface every power sensor implements, and the small sysfs helpers they share."""

import glob
import os
import shlex
import shutil
import subprocess


class Probe(object):
    """A power sensor: named rails read in watts, each with the boundary it measures.

    ``rails`` lists every value ``read()`` returns, derived ones (sums, corrected totals) included;
    ``primary`` is the rail whose energy is the run's headline figure; ``max_hz`` is the fastest
    rate the sensor gives fresh values at.
    """

    name = "none"
    max_hz = 0.0

    def __init__(self, rails=(), boundaries=None, primary=None):
        self.rails = list(rails)
        self.boundaries = dict(boundaries or {})
        self.primary = primary

    def read(self):
        """Return ``{rail: watts}`` for every rail in ``rails``."""
        return {}

    def describe(self):
        return {
            "probe": self.name,
            "rails": list(self.rails),
            "primary_rail": self.primary,
            "boundary": self.boundaries.get(self.primary, "no power measurement"),
            "boundaries": dict(self.boundaries),
            "max_hz": self.max_hz,
        }


class NoneProbe(Probe):
    """No sensor: runs report latency only."""

    def __init__(self):
        Probe.__init__(self, boundaries={None: "no power measurement"})

    def describe(self):
        info = Probe.describe(self)
        info["boundaries"] = {}
        return info


def under(root, path):
    """``path`` (absolute, as on a real board) inside the sysfs root ``root``."""
    return os.path.join(root, path.lstrip("/"))


def sorted_glob(pattern):
    return sorted(glob.glob(pattern))


def read_text(path):
    with open(path) as handle:
        return handle.read().strip().rstrip("\x00")


def read_number(path):
    with open(path, "rb") as handle:
        return float(handle.read())


class SysfsValue(object):
    """A number file kept open and re-read with pread at offset 0, as sysfs attributes allow.

    Opening a file costs about ten times more than re-reading it, and the sampler reads a few of
    them up to 100 times a second.
    """

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)

    def read(self):
        return float(os.pread(self.fd, 64, 0))

    def __del__(self):
        fd, self.fd = getattr(self, "fd", None), None
        if fd is not None:
            os.close(fd)


def open_value(path):
    """A SysfsValue for ``path`` if it exists and holds a number, else None."""
    try:
        value = SysfsValue(path)
        value.read()
        return value
    except (OSError, ValueError):
        return None


def run_tool(command, *args, timeout=5.0):
    """Output of ``command args`` (``command`` may hold several words); None if it cannot run or fails."""
    argv = shlex.split(command) + list(args)
    if not argv or shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
