"""Throughput of the batched white-box attack against one image at a time, same settings and iterations.

Both runs use the same attack object, so the settings are identical; the batched objective is a sum
of per-image objectives, so both should give the same images (equal PSNR).

  .venv/bin/python bench/attacks.py [--images 100] [--iterations 300] [--split ReLU2] [--threads 2]

Both ways first run a few untimed iterations, so that neither pays for the one-off set-up (oneDNN
primitives for a new shape, allocator growth) inside its timing. 100 images is the paper's larger
protocol; the gain grows with the batch until the convolutions saturate the cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cloud_side.attacks import Knowledge, make_attack
from cloud_side.metrics import score_images
from edgekit.data import load_dataset
from edgekit.split import split_model
from edgekit.train import train_model

WARM_UP_ITERATIONS = 5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--split", default="ReLU2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist-subset")
    parts = split_model(train_model("lenet", "mnist-subset", seed=0).model, args.split, input_shape=data.info.shape)
    images = data.x_test[:args.images]
    with torch.no_grad():
        features = parts.device(torch.from_numpy(images)).numpy()
    knowledge = Knowledge(device_part=parts.device, input_shape=data.info.shape)
    warm_up = make_attack("whitebox", preset=f"mnist-{args.split}", iterations=WARM_UP_ITERATIONS).fit(knowledge)
    warm_up.reconstruct(features)
    warm_up.reconstruct(features[:1])
    attack = make_attack("whitebox", preset=f"mnist-{args.split}", iterations=args.iterations).fit(knowledge)

    start = time.perf_counter()
    batched = attack.reconstruct(features)
    batched_seconds = time.perf_counter() - start
    start = time.perf_counter()
    alone = np.concatenate([attack.reconstruct(features[i:i + 1]) for i in range(len(features))])
    alone_seconds = time.perf_counter() - start

    print(f"white-box rMLE, LeNet {args.split}, {args.images} images, {args.iterations} iterations, "
          f"{args.threads} threads")
    for label, recon, seconds in (("batched", batched, batched_seconds), ("one at a time", alone, alone_seconds)):
        psnr = score_images(images, recon)["psnr_db"].mean()
        print(f"{label:14} {len(images) / seconds:8.2f} images/s  {seconds:7.1f}s  PSNR {psnr:.2f} dB")
    print(f"speed-up {alone_seconds / batched_seconds:.1f}x (target >= 10x); "
          f"max |batched - one at a time| = {np.abs(batched - alone).max():.2e}")


if __name__ == "__main__":
    main()
