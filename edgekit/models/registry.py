"""The model registry: ``name -> builder(info)``, as in timm's ``create_model``.

Every model takes float32 NCHW images in [0, 1] and starts with a ``normalize`` module holding the
dataset's mean and std, so a device part sees the raw private image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from edgekit.errors import EdgekitError, unknown


@dataclass(frozen=True)
class ModelInfo:
    """What a model is for: its default dataset and the input shape (C, H, W) it is built for."""

    name: str
    default_dataset: str
    input_shape: tuple[int, int, int]
    num_classes: int
    description: str

    def shape_info(self):
        """A ``DatasetInfo`` with the default shape and identity normalisation: enough to build the
        model and list its split points without loading the default dataset."""
        from edgekit.data import DatasetInfo

        channels = self.input_shape[0]
        return DatasetInfo(self.default_dataset, self.input_shape, self.num_classes,
                           mean=(0.0,) * channels, std=(1.0,) * channels)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_INFOS: dict[str, ModelInfo] = {}


def register_model(name: str, default_dataset: str, input_shape: tuple[int, int, int], num_classes: int = 10):
    """Decorator: make ``builder(info) -> nn.Module`` creatable as ``name``."""

    def decorate(builder):
        doc = (builder.__doc__ or "").strip().splitlines()
        _BUILDERS[name] = builder
        _INFOS[name] = ModelInfo(name, default_dataset, input_shape, num_classes, doc[0] if doc else "")
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def model_info(name: str) -> ModelInfo:
    if name not in _INFOS:
        raise unknown("model", name, list_models())
    return _INFOS[name]


def create_model(name: str, info) -> nn.Module:
    """Build model ``name`` for a dataset described by ``info`` (a ``DatasetInfo``), in eval mode."""
    if name not in _BUILDERS:
        raise unknown("model", name, list_models())
    shape = tuple(info.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise EdgekitError(f"{name}: input shape {shape} is not (C, H, W)")
    return _BUILDERS[name](info).eval()


def conv_output_size(model: str, size: int, steps) -> int:
    """Follow a spatial size through ``steps`` of (kernel, stride, padding); error if it vanishes."""
    start = size
    for kernel, stride, padding in steps:
        size = (size + 2 * padding - kernel) // stride + 1
        if size < 1:
            raise EdgekitError(f"{model}: input size {start} is too small; it needs an input that "
                               f"survives its convolutions and pooling (default {_INFOS[model].input_shape})")
    return size
