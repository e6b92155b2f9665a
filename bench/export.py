"""Export benchmark: per model, split, format and precision, the export time, file size, parity
figures and the runtime's median latency per inference (batch 1, one thread) on this machine.

    .venv/bin/python bench/export.py [--runs 200] [--cases lenet,cifar10cnn,resnet18]

lenet is the trained, cached checkpoint on mnist-subset (``export_split``, as the command does).
cifar10cnn and resnet18 use random weights on random uniform 32x32 images (no download needed),
so their int8 figures show the quantiser's error, not the accuracy of a trained model.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgekit.data import Dataset, DatasetInfo
from edgekit.errors import EdgekitError
from edgekit.export import FORMATS, PRECISIONS, export_split
from edgekit.export.manifest import find, read_manifest
from edgekit.export.pipeline import export_model
from edgekit.export.runtimes import open_runner
from edgekit.export.table import format_parity, format_size
from edgekit.models import create_model

CIFAR = DatasetInfo("random-uniform-32x32", (3, 32, 32), 10, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
CASES = {
    "lenet": ("conv1", "ReLU2", "pool2", "fc1"),
    "cifar10cnn": ("pool1",),
    "resnet18": ("layer2_1_relu_1",),
}
COLUMNS = ("model", 11), ("split", 16), ("part", 7), ("format", 7), ("precision", 10), ("export s", 9), \
    ("size", 11), ("parity", 32), ("median ms", 10), ("status", 0)


def random_images(info: DatasetInfo, train: int = 512, test: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    shape = info.shape
    return Dataset(info, rng.random((train, *shape), dtype=np.float32), np.zeros(train, np.int64),
                   rng.random((test, *shape), dtype=np.float32), np.zeros(test, np.int64))


def median_ms(path: Path, fmt: str, image: np.ndarray, runs: int, warmup: int = 10) -> float:
    runner = open_runner(path, fmt, threads=1)
    for _ in range(warmup):
        runner(image)
    times = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        runner(image)
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1e6


def line(*cells) -> str:
    return "".join(f"{cell:<{width}}" if width else str(cell) for cell, (_, width) in zip(cells, COLUMNS)).rstrip()


def bench_case(model_name: str, splits, out: Path, runs: int) -> None:
    results = []
    try:
        if model_name == "lenet":
            export_split(model_name, None, splits, FORMATS, PRECISIONS, out, report=results.append)
        else:
            torch.manual_seed(0)
            model = create_model(model_name, CIFAR)
            export_model(model, model_name, random_images(CIFAR), "random-init-seed0", splits, FORMATS,
                         PRECISIONS, out, report=results.append)
    except EdgekitError as exc:
        print(f"  ({model_name}: {exc})", file=sys.stderr)
    manifest = read_manifest(out)
    rng = np.random.default_rng(0)
    for result in results:
        latency = "-"
        if result.status != "failed":
            (given,) = find(manifest, result.file)["inputs"]
            image = rng.random(given["shape"], dtype=np.float32)
            latency = f"{median_ms(out / result.file, result.format, image, runs):.3f}"
        status = result.status if result.status != "failed" else "FAILED: " + "; ".join(result.problems)
        print(line(model_name, result.file.split("-")[1], result.part, result.format, result.precision,
                   f"{result.seconds:.1f}", format_size(result.size_bytes), format_parity(result.parity),
                   latency, status), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed inferences per artifact (default 200)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"models to run (default {','.join(CASES)})")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(line(*(name for name, _ in COLUMNS)), flush=True)
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-export-") as scratch:
        for model_name in args.cases.split(","):
            out = Path(scratch) / model_name
            out.mkdir()
            bench_case(model_name, CASES[model_name], out, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
