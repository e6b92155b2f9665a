"""Energy from power samples, in windows like Zeus's: begin a window, end it, get its energy.

Energy is the trapezoid integral of the samples inside the window, with the power at each window
edge interpolated linearly from the samples around it. An idle baseline (mean power measured
before the run) is subtracted to give the net energy; both gross and net are reported.
"""

import collections
import math
import time

import numpy as np

from .errors import AgentError

MIN_SAMPLES_PER_WINDOW = 5

Measurement = collections.namedtuple(
    "Measurement", "name start_ns end_ns duration_s gross_j net_j samples")


def integrate(times_ns, watts, start_ns, end_ns):
    """(joules per rail, samples strictly inside) of the trapezoid integral over [start, end].

    Edge values are interpolated between the samples around each edge (held flat beyond the first
    or last sample). Needs at least one sample.
    """
    times_ns = np.asarray(times_ns, dtype=np.int64)
    watts = np.asarray(watts, dtype=np.float64).reshape(len(times_ns), -1)
    if len(times_ns) == 0:
        raise ValueError("no power samples to integrate")
    inside = (times_ns > start_ns) & (times_ns < end_ns)
    # Interpolate in seconds relative to the start: float64 ns since boot would lose precision.
    seconds = (times_ns - start_ns) / 1e9
    edges = np.array([0.0, (end_ns - start_ns) / 1e9])
    edge_watts = np.stack([np.interp(edges, seconds, column) for column in watts.T], axis=1)
    t = np.concatenate([edges[:1], seconds[inside], edges[1:]])
    w = np.concatenate([edge_watts[:1], watts[inside], edge_watts[1:]])
    joules = ((w[1:] + w[:-1]) / 2.0 * np.diff(t)[:, None]).sum(axis=0)
    return joules, int(inside.sum())


def choose_window(median_latency_ms, hz, requested=0):
    """(inferences per energy window, how it was chosen).

    A window must span at least MIN_SAMPLES_PER_WINDOW sensor samples, so for a sensor slower
    than one inference energy is taken over N inferences and divided by N.
    """
    if requested and requested > 0:
        return int(requested), "spec power.window = {}".format(int(requested))
    needed_s = MIN_SAMPLES_PER_WINDOW / float(hz)
    n = max(1, int(math.ceil(needed_s / max(median_latency_ms / 1e3, 1e-9))))
    return n, ("auto: {} samples at {:g} Hz need {:.3f} s; median latency {:.4f} ms -> windows of {} "
               "inference(s), each window's energy divided by its inference count".format(
                   MIN_SAMPLES_PER_WINDOW, hz, needed_s, median_latency_ms, n))


class PowerMonitor(object):
    """Energy windows over a running Sampler, with an idle baseline subtracted for ``net_j``."""

    def __init__(self, sampler, clock=time.monotonic_ns):
        self.sampler = sampler
        self.rails = list(sampler.probe.rails)
        self.clock = clock
        self.baseline_w = dict((rail, 0.0) for rail in self.rails)
        self.open = {}

    def measure_baseline(self, seconds):
        """Idle mean power per rail over the next ``seconds`` (the caller stays idle meanwhile)."""
        start = self.clock()
        time.sleep(seconds)
        self.wait_for_sample_after(self.clock())
        measurement = self.measure("baseline", start, self.clock())
        duration = max(measurement.duration_s, 1e-9)
        self.baseline_w = dict((rail, joules / duration) for rail, joules in measurement.gross_j.items())
        return self.baseline_w

    def begin_window(self, name):
        self.open[name] = self.clock()

    def end_window(self, name):
        """Close window ``name``; waits (at most a few sample periods) for a sample past its end."""
        start, end = self.open.pop(name), self.clock()
        self.wait_for_sample_after(end)
        return self.measure(name, start, end)

    def wait_for_sample_after(self, end_ns, periods=3):
        deadline = time.monotonic() + periods * self.sampler.period_ns / 1e9
        while time.monotonic() < deadline:
            times = self.sampler.times
            if times and times[-1] >= end_ns:
                return True
            time.sleep(self.sampler.period_ns / 1e9 / 10)
        return False

    def measure(self, name, start_ns, end_ns, samples=None):
        """Measurement of [start_ns, end_ns] from the samples so far (or the given ones)."""
        times, watts = samples if samples is not None else self.sampler.samples()
        if len(times) == 0:
            raise AgentError("power probe {} gave no samples (last error: {})".format(
                self.sampler.probe.name, self.sampler.last_error))
        duration = (end_ns - start_ns) / 1e9
        joules, count = integrate(times, watts, start_ns, end_ns)
        gross = dict(zip(self.rails, (float(j) for j in joules)))
        net = dict((rail, gross[rail] - self.baseline_w[rail] * duration) for rail in self.rails)
        return Measurement(name, start_ns, end_ns, duration, gross, net, count)
