"""Dataset descriptions and the name -> loader registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
_LOCATORS: dict[str, Callable[..., Path | None]] = {}


def register(name: str, locate: Callable[..., Path | None] | None = None):
    """Decorator: make ``loader(root=None) -> Dataset`` loadable as ``name``.

    ``locate(root=None)`` says where the dataset's files are found (None: not downloaded).
    """

    def decorate(loader):
        _LOADERS[name] = loader
        if locate is not None:
            _LOCATORS[name] = locate
        return loader

    return decorate


def _registered() -> dict[str, Callable[..., Dataset]]:
    from edgekit.data import sources  # noqa: F401  (importing it registers the loaders)

    return _LOADERS


def list_datasets() -> list[str]:
    return sorted(n for n in _registered() if n != "folder") + ["folder:PATH"]


def load_dataset(name: str, root=None) -> Dataset:
    """Load a registered dataset; ``root`` overrides where its files are looked for."""
    loaders = _registered()
    if name.startswith("folder:"):
        return loaders["folder"](name.split(":", 1)[1])
    if name not in loaders or name == "folder":
        raise unknown("dataset", name, list_datasets())
    return loaders[name](root)


def locate_dataset(name: str, root=None) -> Path | None:
    """Where a registered dataset's files are found, or None when they are not there."""
    loaders = _registered()
    if name not in loaders or name == "folder":
        raise unknown("dataset", name, list_datasets())
    return _LOCATORS[name](root)
