"""The online phase over a shaped link, side by side in one run (figures printed, nothing asserted).

A device agent runs in its own network namespace behind a veth pair whose device-side egress is
shaped with tc HTB to ``--rate`` Mbit/s; the collector and the cloud's online inference server listen
on the host end. For each split of LeNet (trained on mnist-subset, from the edgekit cache) the agent
measures the link and runs its online phase; printed per split:

1. the upload goodput measured with frames of the split's feature size, against the shaped rate;
2. the measured end-to-end median against the sum of the parts' medians (device part + transfer of
   one feature frame + cloud part), and what is left over (the answer frame, the pool hop).

Needs root (namespaces, tc). Run: .venv/bin/python bench/link.py [--rate 8] [--splits conv1,pool1,ReLU2,fc1,fc2]
[--images 100] [--repetitions 2]
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))  # the namespace helper the tests use

import netns  # noqa: E402


def exported_lenet(splits):
    """(checkpoint, manifest, export dir) of LeNet's ONNX fp32 parts for ``splits`` (cached)."""
    from edgekit.export import export_split
    from edgekit.paths import cache_dir
    from edgekit.train import train_model

    checkpoint = train_model("lenet", "mnist-subset", progress=False)
    out = cache_dir("exports", f"lenet-mnist-subset-{checkpoint.key}")
    return checkpoint, export_split("lenet", "mnist-subset", splits, ["onnx"], ["fp32"], out,
                                    checkpoint=checkpoint.key), out


def run_split(host, collector, server, work, entries, out, shard, key_file, repetitions):
    """One agent run in the namespace for a split's device and cloud parts: its report's online section."""
    from device_agents.fileio import sha256_file
    from edgekit.experiment.measure import artifact_spec

    device, cloud = entries["device"], entries["cloud"]
    run_id, key = secrets.token_hex(16), bytes.fromhex(open(key_file).read())
    output = device["outputs"][0]
    expect = {"dtype": output["dtype"], "shape": output["shape"][1:], "layout": output.get("layout", "NCHW"),
              "count": len(np.load(shard))}
    collector.register_run(run_id, key, expect)
    server.register_run(run_id, key, artifact_spec(cloud, str(out / cloud["file"])), expect)
    spec = {"run_id": run_id, "artifact": artifact_spec(device, str(out / device["file"])),
            "inputs": {"path": shard, "sha256": sha256_file(shard)}, "warmup": 10, "repetitions": 1,
            "power": {"probe": "none", "baseline_s": 0},
            "cloud": {"host": host.gateway, "port": collector.port, "key_file": key_file},
            "online": {"port": server.port, "repetitions": repetitions}, "output_dir": os.path.join(work, run_id)}
    path = os.path.join(work, run_id + ".json")
    with open(path, "w") as handle:
        json.dump(spec, handle)
    agent = host.popen([sys.executable, "-m", "device_agents", "run", path], cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    _, stderr = agent.communicate(timeout=600)
    server.finish_run(run_id)
    collector.forget_run(run_id)
    if agent.returncode:
        raise SystemExit(f"agent failed: {stderr[-2000:]}")
    with open(os.path.join(work, run_id, "report.json")) as handle:
        return json.load(handle)["online"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=8.0, help="shaped upload rate, Mbit/s (default 8)")
    parser.add_argument("--splits", default="conv1,pool1,ReLU2,fc1,fc2")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repetitions", type=int, default=2, help="online passes over the images")
    args = parser.parse_args()
    if not netns.available():
        raise SystemExit("bench/link.py needs root, iproute2 and tc (a network namespace and an HTB-shaped link)")
    from cloud_side.collector import CollectorThread
    from cloud_side.online import OnlineServerThread
    from edgekit.data import load_dataset

    splits = args.splits.split(",")
    checkpoint, manifest, out = exported_lenet(splits)
    by_split = {}
    for entry in manifest["artifacts"]:
        if entry["split"] in splits and entry["format"] == "onnx" and entry["precision"] == "fp32":
            by_split.setdefault(entry["split"], {})[entry["part"]] = entry
    data = load_dataset("mnist-subset")
    rows = []
    with tempfile.TemporaryDirectory() as work, netns.Namespace(rate=f"{args.rate:g}mbit") as host:
        shard = os.path.join(work, "inputs.npy")
        np.save(shard, np.ascontiguousarray(data.x_test[:args.images]))
        key_file = os.path.join(work, "run.key")
        with open(key_file, "w") as handle:
            handle.write(secrets.token_bytes(32).hex())
        os.chmod(key_file, 0o600)
        with CollectorThread(os.path.join(work, "store"), host=host.gateway) as collector, \
                OnlineServerThread(host=host.gateway) as server:
            for split in splits:
                online = run_split(host, collector, server, work, by_split[split], out, shard, key_file,
                                   args.repetitions)
                link = online["link"]
                parts = {name: stats["p50_ms"] for name, stats in (
                    ("device", online["device_statistics"]), ("transfer", link["transfer"]),
                    ("cloud", online["cloud_statistics"]))}
                rows.append((split, link["feature_bytes"], link["goodput"]["mbps"], link["rtt"]["p50_ms"], parts,
                             online["statistics"]["p50_ms"], online["server_statistics"]["p50_ms"]))
    print(f"LeNet ({checkpoint.key}) on mnist-subset, {args.images} images x {args.repetitions} online passes; "
          f"device in a namespace, upload shaped with tc HTB to {args.rate:g} Mbit/s")
    print(f"{'split':<7}{'feature B':>10}{'goodput':>10}{'/ shaped':>9}{'rtt':>8}{'device':>9}{'transfer':>10}"
          f"{'cloud':>8}{'sum':>9}{'e2e':>9}{'e2e/sum':>9}{'e2e-sum':>9}{'server':>8}")
    for split, size, mbps, rtt, parts, e2e, server_ms in rows:
        total = sum(parts.values())
        print(f"{split:<7}{size:>10}{mbps:>10.2f}{mbps / args.rate:>9.3f}{rtt:>8.3f}{parts['device']:>9.3f}"
              f"{parts['transfer']:>10.3f}{parts['cloud']:>8.3f}{total:>9.3f}{e2e:>9.3f}{e2e / total:>9.3f}"
              f"{e2e - total:>9.3f}{server_ms:>8.3f}")
    print("goodput: feature bytes per second (Mbit/s, 1e6 bits); times are medians in ms; the shaped rate counts "
          "every byte on the wire (TCP/IP headers, our 120 B of framing per feature), so goodput sits below it, "
          "more so for small features. server: the cloud's time from reading the frame to writing the answer.")


if __name__ == "__main__":
    main()
