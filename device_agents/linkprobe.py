"""The link between the agent and the cloud, measured before the online phase, on its connection.

- Round-trip time: PING -> PONG, the smallest authenticated exchange, one at a time.
- Transfer time: one DATA frame of the split's feature size -> its ACK, one at a time (as the
  online phase sends one feature per inference). Includes the link's per-frame costs: TCP segmenting
  the frame, a shaper's token bucket refilled by the idle gap, the cloud's MAC check.
- Upload goodput: feature bytes per second delivered to the cloud by a continuous stream of
  feature-sized DATA frames. The rate is read from the cloud's ACKs as they arrive, not from the
  sender's clock (a send returns once the bytes are in the kernel's buffer, long before they
  crossed the link). ACKs arrive paced by the link's bottleneck, so the slope of the bytes
  acknowledged against the ACKs' arrival times is the delivery rate (a least-squares line, as the
  link delivers in bursts). The first quarter of the ACK span is left out: TCP slow start and a
  shaper's burst bucket (tokens saved while idle) let the first bytes through faster or slower
  than the steady rate. The amount in flight follows the measured
  rate (twice the bytes acknowledged in the last ``tau`` = max(4 RTT, 50 ms)), so the link is
  kept busy without queueing seconds of data behind a slow link; frames go out batched, Nagle off.
  Frames carry the split's feature size, so the per-frame overhead (12 B prefix, 76 B header,
  32 B MAC) weighs on small features as it does in the online phase.
"""

import math
import time

import numpy as np

from . import protocol as wire
from .timing import latency_stats

PING_WARMUP = 3
TRANSFER_WARMUP = 3
MIN_TAU_S = 0.05  # the queue it allows (2 tau) covers the sender being descheduled that long
INITIAL_WINDOW_BYTES = 16 << 10
MAX_WINDOW_FRAMES = 512  # their ACKs (76 B each) fit the agent's receive buffer while it sends
MAX_WINDOW_BYTES = 4 << 20
MIN_ACKS = 8
WARMUP_FRACTION = 0.25
DEFAULT_MAX_BYTES = 256 << 20


def frame_bytes(payload_bytes):
    """Bytes on the wire of one feature frame (DATA or INFER) carrying ``payload_bytes``."""
    return wire.PREFIX.size + wire._TENSOR.size + payload_bytes + wire.MAC_SIZE


def measure_rtt(link, samples):
    """Round-trip times of ``samples`` PING -> PONG exchanges, milliseconds (after a short warm-up)."""
    times = []
    for k in range(PING_WARMUP + samples):
        start = time.monotonic_ns()
        link.ping()
        if k >= PING_WARMUP:
            times.append((time.monotonic_ns() - start) / 1e6)
    return times


def measure_transfer(link, payload, samples, first_seq=0):
    """Milliseconds to deliver one DATA frame of ``payload`` and receive its ACK, ``samples`` times."""
    times = []
    for k in range(TRANSFER_WARMUP + samples):
        start = time.monotonic_ns()
        link.transfer(first_seq + k, payload)
        if k >= TRANSFER_WARMUP:
            times.append((time.monotonic_ns() - start) / 1e6)
    return times


def measure_goodput(link, payload, seconds, rtt_s, max_bytes=DEFAULT_MAX_BYTES, first_seq=0):
    """Upload goodput of a stream of DATA frames of ``payload`` (see the module docstring).

    Sends for ``seconds`` (longer, up to max(3 x seconds, seconds + 10), until MIN_ACKS frames are
    acknowledged; at most ``max_bytes``), then waits for every ACK. Returns a dict with ``mbps``
    (feature bytes, 1e6 bits per second; None when fewer than two ACKs came back) and how it was found.
    """
    size = len(payload)
    tau_ns = int(max(4 * rtt_s, MIN_TAU_S) * 1e9)
    largest_allowed = max(2, min(MAX_WINDOW_FRAMES, MAX_WINDOW_BYTES // max(size, 1)))
    window = min(largest_allowed, max(2, int(math.ceil(INITIAL_WINDOW_BYTES / float(max(size, 1))))))
    largest_window = window
    ack_ns = []
    sent = 0
    start = time.monotonic_ns()
    soft_end = start + int(seconds * 1e9)
    hard_end = start + int(max(3 * seconds, seconds + 10) * 1e9)
    last_heard = start
    while True:
        now = time.monotonic_ns()
        sending = now < hard_end and (sent + 1) * size <= max_bytes and (now < soft_end or len(ack_ns) < MIN_ACKS)
        if not sending and len(ack_ns) == sent:
            break
        room = window - (sent - len(ack_ns))
        if sending and room > 0:
            link.sock.sendall(b"".join(link.frame(wire.DATA, first_seq + sent + k, payload) for k in range(room)))
            sent += room
        if link.readable(0 if sending and room > 0 else 0.05):
            while True:
                seq = link.acknowledged(link.receive(wire.ACK))
                if seq != first_seq + len(ack_ns):
                    raise wire.ProtocolError("unexpected-frame", "ACK {} out of order".format(seq))
                last_heard = time.monotonic_ns()
                ack_ns.append(last_heard)
                if not link.readable(0):
                    break
            recent = len(ack_ns) - _first_at_or_after(ack_ns, last_heard - tau_ns)
            window = max(2, min(2 * recent, largest_allowed))
            largest_window = max(largest_window, window)
        elif time.monotonic_ns() - last_heard > link.io_timeout * 1e9:
            raise wire.ProtocolError("timeout", "no ACK for {} s while measuring goodput".format(link.io_timeout))
    return goodput_from_acks(ack_ns, size, frame_bytes(size), largest_window, time.monotonic_ns() - start)


def _first_at_or_after(times, limit):
    """Index of the first of the sorted ``times`` at or after ``limit`` (binary search)."""
    low, high = 0, len(times)
    while low < high:
        middle = (low + high) // 2
        if times[middle] < limit:
            low = middle + 1
        else:
            high = middle
    return low


def goodput_from_acks(ack_ns, payload_bytes, wire_bytes, largest_window, wall_ns):
    """The steady delivery rate from ACK arrival times (one ACK per frame, in order).

    The slope of a least-squares line through (ACK time, feature bytes acknowledged) over the ACKs
    after the first quarter of their span: a link delivers in bursts (a shaper's and the NIC's
    segmentation offload pass 64 KB at once, Wi-Fi aggregates frames), and a line through every
    point is not thrown off by where the first and last bursts happen to fall.
    """
    result = {"mbps": None, "frames": len(ack_ns), "payload_bytes": payload_bytes,
              "frame_bytes": wire_bytes, "largest_window_frames": largest_window, "wall_s": wall_ns / 1e9,
              "frames_used": 0, "span_s": 0.0,
              "method": "least-squares slope of feature bytes acknowledged against ACK arrival time (agent's "
                        "clock), first {:g} of the ACK span left out".format(WARMUP_FRACTION)}
    if len(ack_ns) < 2:
        return result
    first = _first_at_or_after(ack_ns, ack_ns[0] + WARMUP_FRACTION * (ack_ns[-1] - ack_ns[0]))
    if len(ack_ns) - first < 2:
        first = 0
    seconds = (np.asarray(ack_ns[first:], dtype=np.int64) - ack_ns[first]) / 1e9
    if seconds[-1] <= 0:
        return result
    acknowledged = np.arange(len(seconds), dtype=np.float64) * payload_bytes
    slope = np.polyfit(seconds, acknowledged, 1)[0]
    result.update(mbps=float(slope * 8 / 1e6), frames_used=len(seconds) - 1, span_s=float(seconds[-1]))
    return result


def measure_link(link, payload_bytes, settings):
    """RTT, goodput and transfer between the agent and the cloud, in that order (the report's ``link``)."""
    payload = bytes(payload_bytes)
    rtt = measure_rtt(link, settings["rtt_samples"])
    rtt_s = sorted(rtt)[len(rtt) // 2] / 1e3
    goodput = measure_goodput(link, payload, settings["goodput_seconds"], rtt_s, settings["goodput_max_bytes"])
    transfer = measure_transfer(link, payload, settings["transfer_samples"], first_seq=goodput["frames"])
    return {"rtt": latency_stats(rtt, None, []), "goodput": goodput, "transfer": latency_stats(transfer, None, []),
            "frame_bytes": frame_bytes(payload_bytes), "feature_bytes": payload_bytes}
