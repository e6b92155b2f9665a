"""Shadow device parts for the query-free attack: the same architecture as f1, or a different one.

Both map images to features of f1's shape, which is all the cloud part needs. "same" is a fresh,
re-initialised copy of f1's layers ([A]'s "same network"); "different" is a small generic network
that shares nothing with f1 but its output shape ([A]'s "different network").
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def shadow_factory(kind: str, device_part: nn.Module, input_shape, feature_shape, seed: int):
    """A callable returning an untrained shadow (``kind`` "same" or "different")."""
    def build() -> nn.Module:
        torch.manual_seed(seed)
        if kind == "same":
            return reinitialised(device_part)
        return generic_encoder(tuple(input_shape), tuple(feature_shape))
    return build


def reinitialised(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every layer's parameters drawn afresh (buffers such as the
    normalisation constants are kept: they are public knowledge of the task)."""
    shadow = copy.deepcopy(module).train().requires_grad_(True)
    for layer in shadow.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return shadow


def generic_encoder(input_shape, feature_shape) -> nn.Module:
    """Two 3x3 convolutions resized to a (C, H, W) feature, or an MLP for a flat feature."""
    channels = input_shape[0]
    if len(feature_shape) == 3:
        out_channels, height, width = feature_shape
        return nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((height, width)),
            nn.Conv2d(32, out_channels, 1))
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 256), nn.ReLU(),
                         nn.Linear(256, math.prod(feature_shape)), nn.Unflatten(1, tuple(feature_shape)))
