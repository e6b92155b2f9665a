"""Reproduce the paper's MNIST table (He, Zhang, Lee, ACSAC 2019, Tables 2-5) with edgekit, side by side.

Target model: LeNet trained by ``edgekit.train`` (seed 0). Targets: the first held-out image of
each class (the paper's 10-image protocol) and the first 10 held-out images of each class (100
images, which contain the 10). Nothing is tuned on these images (presets were tuned on training
images). Attacker data:
  train              the target's training set (``x_train``, 4000 images for mnist-subset)
  same-distribution  held-out images that are not among the 100 targets (900 for mnist-subset)
  noise              Gaussian images N(0.5, 0.5²) unclipped, i.e. N(0, 1) after MNIST normalisation
Query-free "same" trains a re-initialised LeNet device part on the training set; "diff" trains a
different architecture on the same-distribution images (the paper's "diff set/net").
Defence sweeps (ReLU2, white-box, 10 images; accuracy of the cloud part on the whole held-out set)
use ``cloud_side.segment.simulate_defence``: the defences are simulated on the cloud side.

  .venv/bin/python bench/paper.py [--quick] [--dataset mnist-subset|fashion-mnist] [--cells a,b] [--sweeps]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from cloud_side.attacks import Knowledge, make_attack
from cloud_side.metrics import CONVENTION, reconstruction_accuracy, score_images, summarize
from cloud_side.segment import cloud_accuracy, simulate_defence
from edgekit.data import load_dataset
from edgekit.models import create_model
from edgekit.split import split_model
from edgekit.train import train_model

SPLITS = ("conv1", "ReLU2")
CELLS = ("whitebox", "blackbox-train", "blackbox-samedist", "blackbox-noise", "queryfree-same", "queryfree-diff")
# Paper's MNIST results, PSNR dB / SSIM, per (cell, split).
PAPER = {
    ("whitebox", "conv1"): (39.69, .9969), ("whitebox", "ReLU2"): (15.10, .5998),
    ("blackbox-train", "conv1"): (39.64, .9887), ("blackbox-train", "ReLU2"): (20.35, .7334),
    ("blackbox-samedist", "conv1"): (40.72, .9950), ("blackbox-samedist", "ReLU2"): (20.81, .8046),
    ("blackbox-noise", "conv1"): (14.76, .7188), ("blackbox-noise", "ReLU2"): (7.72, .4310),
    ("queryfree-same", "conv1"): (17.60, .7423), ("queryfree-same", "ReLU2"): (9.61, .4981),
    ("queryfree-diff", "conv1"): (17.86, .6952), ("queryfree-diff", "ReLU2"): (8.03, .3226),
}
# edgekit's targets on the 10-image protocol (MNIST only); a cell below them is flagged.
TARGETS = {
    ("whitebox", "conv1"): (45.0, .999), ("whitebox", "ReLU2"): (20.0, .75),
    ("blackbox-train", "conv1"): (39.0, .98), ("blackbox-train", "ReLU2"): (20.0, .73),
    ("queryfree-same", "conv1"): (17.6, .74), ("queryfree-same", "ReLU2"): (9.6, .50),
}
# The attacker's randomness (decoder and shadow initialisation) is not the target's training seed 0:
# a shadow LeNet drawn from seed 0 would start from the target's own initial weights.
ATTACK_SEED = 1
SIGMAS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 2.0, 3.0, 5.0)
RATES = (0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.9)


def different_architecture(split: str, channels: int) -> nn.Module:
    """A shadow device part unlike LeNet's (3x3 kernels, padding, other depths) with the same output shape."""
    if split == "conv1":  # 8@24x24, no activation
        return nn.Sequential(nn.Conv2d(channels, 16, 3), nn.ReLU(), nn.Conv2d(16, 8, 3))
    return nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16@8x8, ReLU
                         nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Conv2d(32, 16, 5), nn.ReLU())


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` images of each class, class by class (first image of each first)."""
    classes = np.unique(labels)
    ranks = [np.flatnonzero(labels == label)[:per_class] for label in classes]
    return np.array([rank[k] for k in range(per_class) for rank in ranks])


class Bench:
    def __init__(self, dataset: str, quick: bool):
        self.data = load_dataset(dataset)
        self.quick = quick
        self.model = train_model("lenet", dataset, seed=0, progress=True).model
        self.shape = self.data.info.shape
        index = first_per_class(self.data.y_test, 1 if quick else 10)
        self.targets, self.labels = self.data.x_test[index], self.data.y_test[index]
        self.protocol = len(np.unique(self.labels))  # the first image of each class comes first
        rest = np.setdiff1d(np.arange(len(self.data.y_test)), index)
        self.same_dist = (self.data.x_test[rest], self.data.y_test[rest])
        self.train = (self.data.x_train, self.data.y_train)

    def attack(self, cell: str, split: str, parts):
        """The attack of ``cell`` at ``split`` and the knowledge its threat model gives it."""
        name, settings, knowledge = self.threat_model(cell, split, parts)
        if self.quick:  # a smoke run of the whole table: a tenth of the iterations, 3 epochs
            full = make_attack(name, **settings).settings
            settings.update({"epochs": 3} if name == "blackbox" else {"iterations": max(1, full["iterations"] // 10)})
            settings.update({"shadow_epochs": 3} if name == "queryfree" else {})
        return make_attack(name, **settings), knowledge

    def threat_model(self, cell: str, split: str, parts) -> tuple[str, dict, Knowledge]:
        device = parts.device

        def query(images):
            with torch.no_grad():
                return device(torch.from_numpy(images)).numpy()

        common = {"preset": f"mnist-{split}", "seed": ATTACK_SEED}
        if cell == "whitebox":
            return "whitebox", common, Knowledge(device_part=device, input_shape=self.shape)
        if cell.startswith("blackbox"):
            source = {"blackbox-train": "train", "blackbox-samedist": "same-distribution", "blackbox-noise": "noise"}[cell]
            aux = self.train[0] if source == "train" else self.same_dist[0]
            return ("blackbox", {**common, "query_source": source, "noise_queries": len(self.train[0])},
                    Knowledge(query=query, aux_images=aux, input_shape=self.shape))
        if cell == "queryfree-same":
            def factory():
                return split_model(create_model("lenet", self.data.info), split, input_shape=self.shape).device
            aux = self.train
        else:
            def factory():
                return different_architecture(split, self.shape[0])
            aux = self.same_dist
        return ("queryfree", {**common, "shadow_factory": factory},
                Knowledge(cloud_part=parts.cloud, aux_images=aux[0], aux_labels=aux[1], input_shape=self.shape))

    def run_cell(self, cell: str, split: str) -> dict:
        parts = split_model(self.model, split, input_shape=self.shape)
        attack, knowledge = self.attack(cell, split, parts)
        start = time.perf_counter()
        attack.fit(knowledge)
        fit_seconds = time.perf_counter() - start
        with torch.no_grad():
            features = parts.device(torch.from_numpy(self.targets)).numpy()
        recon = attack.reconstruct(features)
        scores = score_images(self.targets, recon)
        ten = {name: values[:self.protocol] for name, values in scores.items()}
        return {"cell": cell, "split": split, "ten": summarize(ten), "all": summarize(scores),
                "acc": reconstruction_accuracy(self.model, recon, self.labels),
                "seconds": fit_seconds + attack.wall_seconds}

    def sweep(self, defences: list[dict]) -> list[dict]:
        parts = split_model(self.model, "ReLU2", input_shape=self.shape)
        with torch.no_grad():
            test_features = parts.device(torch.from_numpy(self.data.x_test)).numpy()
            target_features = parts.device(torch.from_numpy(self.targets[:self.protocol])).numpy()
        attack, knowledge = self.attack("whitebox", "ReLU2", parts)
        attack.fit(knowledge)
        rows = []
        for defence in defences:
            accuracy = cloud_accuracy(parts.cloud, simulate_defence(defence, test_features), self.data.y_test)
            recon = attack.reconstruct(simulate_defence(defence, target_features))
            rows.append({"defence": defence, "acc": accuracy,
                         **summarize(score_images(self.targets[:self.protocol], recon))})
        return rows


def print_cell(row: dict, dataset: str) -> None:
    key = (row["cell"], row["split"])
    paper = PAPER.get(key) if dataset.startswith("mnist") else None
    ten, every = row["ten"], row["all"]
    flag = ""
    target = TARGETS.get(key) if dataset.startswith("mnist") else None
    if target and (ten["psnr_db_mean"] < target[0] or ten["ssim_mean"] < target[1]):
        flag = f"  SHORT of {target[0]}/{target[1]}"
    paper_text = f"{paper[0]:6.2f}/{paper[1]:.4f}" if paper else "     -/-     "
    print(f"{row['cell']:18} {row['split']:6} {paper_text}   {ten['psnr_db_mean']:6.2f}/{ten['ssim_mean']:.4f}"
          f"   {every['psnr_db_mean']:6.2f}±{every['psnr_db_std']:4.2f}/{every['ssim_mean']:.4f}"
          f"   {row['acc']:.2f}  {row['seconds']:7.1f}s{flag}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist-subset")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated subset of {', '.join(CELLS)}")
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--quick", action="store_true", help="10 images, a tenth of the iterations, 3 epochs")
    parser.add_argument("--sweeps", action="store_true", help="also the noise and dropout sweeps at ReLU2")
    parser.add_argument("--no-table", action="store_true", help="skip the attack table (e.g. sweeps only)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    unknown = set(args.cells.split(",")) - set(CELLS)
    if unknown:
        parser.error(f"unknown cells {sorted(unknown)}; cells: {', '.join(CELLS)}")
    started = time.perf_counter()
    bench = Bench(args.dataset, args.quick)
    print(f"{args.dataset}: LeNet; {len(bench.targets)} targets; {CONVENTION}")
    if not args.no_table:
        print(f"{'cell':18} {'split':6} {'paper(10)':13}   {'edgekit(10)':13}   {'edgekit(all) mean±std':22}"
              f"   acc(recon)  time")
        for split in args.splits.split(","):
            for cell in args.cells.split(","):
                print_cell(bench.run_cell(cell, split), args.dataset)
    if args.sweeps:
        print("sweep at ReLU2, white-box on the 10-image protocol (defence simulated on the cloud side)")
        print(f"{'defence':34} {'accuracy':8}  PSNR dB / SSIM")
        defences = ([{"kind": "gaussian", "sigma": s, "seed": 0} for s in SIGMAS]
                    + [{"kind": "laplace", "b": b, "seed": 0} for b in SIGMAS]
                    + [{"kind": "dropout", "rate": r, "seed": 0} for r in RATES])
        for row in bench.sweep(defences):
            label = ", ".join(f"{k}={v}" for k, v in row["defence"].items() if k != "seed")
            print(f"{label:34} {row['acc']:.4f}    {row['psnr_db_mean']:6.2f} / {row['ssim_mean']:.4f}", flush=True)
    print(f"total {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
