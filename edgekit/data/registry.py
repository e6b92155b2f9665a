"""Dataset descriptions and the name -> loader registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgekit.errors import unknown


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its data: input shape, classes and normalisation."""

    name: str
    shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] = ()


@dataclass
class Dataset:
    """Train and held-out images (float32 NCHW in [0, 1]) and labels (int64)."""

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


_LOADERS: dict[str, Callable[..., Dataset]] = {}


def register(name: str):
    """Decorator: make ``loader(root=None) -> Dataset`` loadable as ``name``."""

    def decorate(loader):
        _LOADERS[name] = loader
        return loader

    return decorate


def list_datasets() -> list[str]:
    return sorted(_LOADERS) + ["folder:PATH"]


def load_dataset(name: str, root=None) -> Dataset:
    """Load a registered dataset; ``root`` overrides where its files are looked for."""
    from edgekit.data import sources  # noqa: F401  (registers the loaders)

    if name.startswith("folder:"):
        return _LOADERS["folder"](name.split(":", 1)[1])
    if name not in _LOADERS or name == "folder":
        raise unknown("dataset", name, list_datasets())
    return _LOADERS[name](root)
