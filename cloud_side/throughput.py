"""How fast features cross the wire: a FeatureStreamer into a loopback Collector, timed end to end.

For ``bench/agent.py``: the time runs from the first ``put`` until the run is sealed, so it includes
framing, MACs, the collector's fsyncs (one per group commit) and the acknowledgements.
"""

import os
import tempfile
import time
import uuid

import numpy as np

from device_agents.stream import FeatureStreamer

from .collector import CollectorThread


def measure_stream_throughput(shape, count, dtype="float32", store_dir=None, **streamer_options):
    """Stream ``count`` features of ``shape`` over loopback; return rates and the streamer's stats."""
    key, run_id = os.urandom(32), uuid.uuid4().hex
    meta = {"dtype": dtype, "shape": list(shape), "layout": "NCHW", "count": count}
    features = np.zeros(shape, dtype=dtype)
    with tempfile.TemporaryDirectory() as scratch, CollectorThread(store_dir or scratch) as collector:
        collector.register_run(run_id, key, meta)
        start = time.perf_counter()
        streamer = FeatureStreamer("127.0.0.1", collector.port, key, run_id, meta,
                                   os.path.join(scratch, "spill"), **streamer_options)
        for index in range(count):
            streamer.put(index, features, 0, 0)
        stats = streamer.close(timeout=600)
        seconds = time.perf_counter() - start
    megabytes = count * features.nbytes / 1e6
    return {"frames": count, "frame_bytes": features.nbytes, "seconds": seconds,
            "frames_per_s": count / seconds, "mb_per_s": megabytes / seconds, "stats": stats}
