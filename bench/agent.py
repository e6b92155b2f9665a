"""Device agent overheads, side by side in one run (figures printed, nothing asserted).

1. median latency: the agent (``python -m device_agents run``) vs a bare loop of the same
   onnxruntime call in a fresh process (target: within 2 %);
2. the agent with features streamed to a loopback collector vs saved to features.npy (within 3 %);
3. CPU cost of the power sampler at 100 Hz reading the Orin Nano fixture's sysfs files
   (target: under 1 % of one core);
4. streaming throughput over loopback (FeatureStreamer -> Collector) vs a raw socket send.

Run: .venv/bin/python bench/agent.py [--images 2000] [--rounds 3]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from device_agents.fileio import sha256_file  # noqa: E402

RUN_ID = "b" * 32
KEY = b"\x22" * 32
BARE_LOOP = """
import sys, time, numpy as np, onnxruntime as ort
options = ort.SessionOptions(); options.intra_op_num_threads = 1; options.inter_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
shard = np.load(sys.argv[2]); warmup = int(sys.argv[3]); out = [session.get_outputs()[0].name]
name = session.get_inputs()[0].name
for k in range(warmup + 1):
    session.run(out, {name: np.ascontiguousarray(shard[k % len(shard)][None])})
latencies = []
for image in shard:
    x = np.ascontiguousarray(image[None])
    start = time.monotonic_ns(); session.run(out, {name: x}); latencies.append(time.monotonic_ns() - start)
print(np.median(latencies) / 1e6)
"""


def export_model(directory):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Conv2d(16, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2)).eval()
    path = os.path.join(directory, "part.onnx")
    torch.onnx.export(model, (torch.rand(1, 1, 28, 28),), path, input_names=["x"], output_names=["feature"],
                      dynamo=False)
    return path


def write_spec(directory, model, shard, warmup, cloud=None):
    spec = {"run_id": RUN_ID,
            "artifact": {"path": model, "sha256": sha256_file(model), "format": "onnx",
                         "input": {"name": "x", "shape": [1, 1, 28, 28], "dtype": "float32"},
                         "output": {"name": "feature", "shape": [1, 16, 7, 7], "dtype": "float32",
                                    "layout": "NCHW"}},
            "inputs": {"path": shard}, "threads": 1, "warmup": warmup, "repetitions": 1,
            "defence": {"kind": "none"}, "power": {"probe": "none", "baseline_s": 0},
            "cloud": cloud, "output_dir": "out"}
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "spec.json")
    with open(path, "w") as handle:
        json.dump(spec, handle)
    return path


def agent_median(spec):
    done = subprocess.run([sys.executable, "-m", "device_agents", "run", spec], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if done.returncode:
        raise SystemExit("agent failed: " + done.stderr)
    with open(os.path.join(os.path.dirname(spec), "out", "report.json")) as handle:
        report = json.load(handle)
    return report["statistics"]["p50_ms"], report


def latency_figures(work, model, shard, images, rounds):
    from cloud_side.collector import CollectorThread

    key_file = os.path.join(work, "run.key")
    with open(key_file, "w") as handle:
        handle.write(KEY.hex())
    os.chmod(key_file, 0o600)
    bare, agent, streamed = [], [], []
    with CollectorThread(os.path.join(work, "store")) as collector:
        for r in range(rounds):
            done = subprocess.run([sys.executable, "-c", BARE_LOOP, model, shard, "50"],
                                  stdout=subprocess.PIPE, universal_newlines=True, check=True)
            bare.append(float(done.stdout))
            agent.append(agent_median(write_spec(os.path.join(work, "off{}".format(r)), model, shard, 50))[0])
            run_id = "{:032x}".format(r + 1)
            collector.register_run(run_id, KEY, {"dtype": "float32", "shape": [16, 7, 7], "layout": "NCHW",
                                                 "count": images})
            spec = write_spec(os.path.join(work, "on{}".format(r)), model, shard, 50,
                              cloud={"host": "127.0.0.1", "port": collector.port, "key_file": key_file})
            with open(spec) as handle:
                raw = json.load(handle)
            raw["run_id"] = run_id
            with open(spec, "w") as handle:
                json.dump(raw, handle)
            streamed.append(agent_median(spec)[0])
    return statistics.median(bare), statistics.median(agent), statistics.median(streamed)


def sampler_cpu(seconds):
    """Process CPU seconds per wall second with and without a 100 Hz sampler (sysfs reads)."""
    from device_agents.power import Sampler, make_probe

    probe = make_probe("jetson-ina3221-hwmon", os.path.join(REPO, "tests", "fixtures", "boards", "jetson-orin-nano"))
    probe.max_hz = 100.0  # a fixture file answers as fast as a fast sensor would

    def cpu_fraction(with_sampler):
        sampler = Sampler(probe, 100.0).start() if with_sampler else None
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        if sampler is not None:
            sampler.stop()
            return cpu / wall, len(sampler.times) / wall
        return cpu / wall, 0.0

    idle, _ = cpu_fraction(False)
    busy, rate = cpu_fraction(True)
    return idle, busy, rate


def raw_socket_mb_s(payloads):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    total = sum(len(p) for p in payloads)

    def drain():
        conn, _ = server.accept()
        got = 0
        while got < total:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        conn.sendall(b"k")
        conn.close()

    thread = threading.Thread(target=drain)
    thread.start()
    client = socket.create_connection(server.getsockname())
    start = time.monotonic()
    for payload in payloads:
        client.sendall(payload)
    client.recv(1)
    seconds = time.monotonic() - start
    client.close()
    thread.join()
    server.close()
    return total / seconds / 1e6


def streamer_mb_s(work, payloads, shape):
    from cloud_side.collector import CollectorThread
    from device_agents.stream import FeatureStreamer

    count = len(payloads)
    arrays = [np.frombuffer(p, dtype=np.float32).reshape(shape) for p in payloads]
    with CollectorThread(os.path.join(work, "tput-store")) as collector:
        meta = {"dtype": "float32", "shape": list(shape), "layout": "NCHW", "count": count}
        collector.register_run(RUN_ID, KEY, meta)
        start = time.monotonic()
        streamer = FeatureStreamer("127.0.0.1", collector.port, KEY, RUN_ID, meta, os.path.join(work, "spill"))
        for index, array in enumerate(arrays):
            streamer.put(index, array, 0, 0)
        streamer.close(timeout=300)
        seconds = time.monotonic() - start
    return sum(len(p) for p in payloads) / seconds / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians reported)")
    parser.add_argument("--cpu-seconds", type=float, default=3.0, help="seconds per sampler CPU measurement")
    parser.add_argument("--frames", type=int, default=400, help="frames for the throughput test")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="edgekit-bench-agent-")
    try:
        run_all(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_all(args, work):
    model = export_model(work)
    shard = os.path.join(work, "inputs.npy")
    np.save(shard, np.random.default_rng(0).random((args.images, 1, 28, 28)).astype(np.float32))

    bare, agent, streamed = latency_figures(work, model, shard, args.images, args.rounds)
    print("median latency, {} images x {} rounds (median of rounds):".format(args.images, args.rounds))
    print("  bare onnxruntime loop      {:9.4f} ms".format(bare))
    print("  agent, features.npy        {:9.4f} ms   {:+6.2f} % vs bare (target within 2 %)".format(
        agent, 100 * (agent / bare - 1)))
    print("  agent, streaming to cloud  {:9.4f} ms   {:+6.2f} % vs features.npy (target within 3 %)".format(
        streamed, 100 * (streamed / agent - 1)))

    idle, busy, rate = sampler_cpu(args.cpu_seconds)
    print("power sampler at 100 Hz (Orin Nano fixture, 3 rails = 6 sysfs reads per sample):")
    print("  process CPU without sampler {:6.3f} % of one core".format(100 * idle))
    print("  process CPU with sampler    {:6.3f} % of one core  ({:.1f} samples/s); cost {:.3f} % "
          "(target under 1 %)".format(100 * busy, rate, 100 * (busy - idle)))

    shape = (64, 16, 16)  # 64 KiB per frame
    payloads = [np.random.default_rng(k).random(shape).astype(np.float32).tobytes() for k in range(args.frames)]
    raw = raw_socket_mb_s(payloads)
    streamed_tput = streamer_mb_s(work, payloads, shape)
    print("loopback throughput, {} frames of {} KiB:".format(args.frames, len(payloads[0]) // 1024))
    print("  raw socket sendall            {:9.1f} MB/s".format(raw))
    print("  FeatureStreamer -> Collector  {:9.1f} MB/s  (authenticated, durably stored, acknowledged)".format(
        streamed_tput))


if __name__ == "__main__":
    main()
