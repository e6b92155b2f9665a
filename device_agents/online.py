"""The online phase of a run: collaborative inference one image at a time, as a deployment runs it.

For each image the agent runs the device part, applies the run's defence (the same call, seed and
inference index as the timed loop), sends the feature to the cloud's online service, and waits for
the cloud part's answer before it takes the next image. The device clock (``time.monotonic_ns``)
gives the end-to-end time of each inference, from just before the device part's runtime call to the
authenticated answer; the answer carries the cloud part's own time, measured where it ran. Warm-up
inferences (images in order, like the timed loop's) are not recorded.
"""

import csv
import time

import numpy as np

from . import protocol as wire
from .cloud_link import CloudLink
from .defences import apply_defence
from .errors import AgentError
from .fileio import atomic_write

RECORD = np.dtype([("index", np.int64), ("image", np.int64), ("repetition", np.int64),
                   ("start_ns", np.int64), ("end_ns", np.int64), ("device_ms", np.float64),
                   ("e2e_ms", np.float64), ("cloud_ms", np.float64), ("server_ms", np.float64),
                   ("prediction", np.int64), ("window", np.int64)])
CLOCK = ("e2e: the device's monotonic_ns from just before the device part's runtime call to the "
         "verified answer; device: the runtime call alone; cloud: the cloud's monotonic_ns around its "
         "runtime call; server: the cloud's time from reading the feature frame to writing the answer")


def open_link(online, key, run_id, meta):
    """The authenticated connection to the cloud's online service (AgentError when it fails)."""
    try:
        return CloudLink(online["host"], online["port"], key, run_id, meta)
    except (OSError, wire.ProtocolError) as error:
        raise AgentError("cloud online service {}:{}: {}".format(online["host"], online["port"], error))


class OnlinePhase(object):
    """Runs inferences through ``link``; ``progress()`` is called after each recorded one."""

    def __init__(self, link, runner, shard, defence, progress=None):
        self.link = link
        self.runner = runner
        self.shard = shard
        self.defence = defence
        self.progress = progress or (lambda: None)

    def infer(self, image):
        """(start_ns, device end_ns, end_ns, Answer) of one inference of image ``image``."""
        x = np.ascontiguousarray(self.shard[image][None])
        start = time.monotonic_ns()
        y = self.runner.run(x)
        device_end = time.monotonic_ns()
        feature = apply_defence(self.defence, y[0], image)
        try:
            answer = self.link.infer(image, feature, start, device_end)
        except (OSError, wire.ProtocolError) as error:
            raise AgentError("online inference of image {}: the cloud's answer was refused or lost: {}".format(
                image, error))
        return start, device_end, time.monotonic_ns(), answer

    def warm_up(self, count):
        """End-to-end milliseconds of ``count`` unrecorded inferences."""
        times = []
        for k in range(count):
            start, _, end, _ = self.infer(k % len(self.shard))
            times.append((end - start) / 1e6)
        return times

    def passes(self, repetitions, window):
        """One RECORD row per inference: ``repetitions`` passes over the images, in order."""
        records = np.zeros(len(self.shard) * repetitions, dtype=RECORD)
        k = 0
        for repetition in range(repetitions):
            for image in range(len(self.shard)):
                start, device_end, end, answer = self.infer(image)
                records[k] = (k, image, repetition, start, end, (device_end - start) / 1e6, (end - start) / 1e6,
                              answer.cloud_ns / 1e6, answer.server_ns / 1e6, answer.prediction, k // window)
                k += 1
                self.progress()
        return records


def write_records(path, records):
    """``online.csv``: one row per recorded online inference (written atomically)."""
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RECORD.names)
        for row in records.tolist():
            writer.writerow(row[:5] + tuple("{:.6f}".format(v) for v in row[5:9]) + row[9:])
