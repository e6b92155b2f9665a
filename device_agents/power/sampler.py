"""Background sampling of a probe on the same monotonic_ns clock as the inference timestamps."""

import threading
import time

import numpy as np

MAX_SLEEP_S = 0.1


class Sampler(object):
    """Reads ``probe`` at ``hz`` in a daemon thread; each sample is stamped at the middle of its read.

    Deadlines are absolute (start + k/hz), so slow reads do not make the rate drift; a read that
    falls behind skips to the next deadline instead of bursting. The thread sleeps with time.sleep
    (in slices of at most MAX_SLEEP_S, to notice ``stop``): it wakes at half the CPU cost of
    Event.wait.
    """

    def __init__(self, probe, hz, clock=time.monotonic_ns):
        if hz <= 0:
            raise ValueError("sampling rate must be > 0 Hz, got {!r}".format(hz))
        self.probe = probe
        self.period_ns = int(1e9 / hz)
        self.clock = clock
        self.times = []
        self.rows = []
        self.errors = 0
        self.last_error = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="power-sampler", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        if self._thread.is_alive():
            self._thread.join()

    def sample_once(self):
        before = self.clock()
        try:
            values = self.probe.read()
        except (OSError, ValueError) as error:
            self.errors += 1
            self.last_error = str(error)
            return
        after = self.clock()
        self.rows.append([values[rail] for rail in self.probe.rails])
        self.times.append((before + after) // 2)

    def _loop(self):
        deadline = self.clock()
        while not self._stopping:
            self.sample_once()
            deadline += self.period_ns
            now = self.clock()
            if deadline < now:
                deadline = now + self.period_ns - (now - deadline) % self.period_ns
            while now < deadline and not self._stopping:
                time.sleep(min((deadline - now) / 1e9, MAX_SLEEP_S))
                now = self.clock()

    def samples(self):
        """(times_ns int64 [n], watts float64 [n, rails]) of everything sampled so far."""
        count = min(len(self.times), len(self.rows))
        times = np.array(self.times[:count], dtype=np.int64)
        watts = np.array(self.rows[:count], dtype=np.float64).reshape(count, len(self.probe.rails))
        return times, watts
