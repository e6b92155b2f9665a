"""Building blocks shared by the models."""

import torch
from torch import nn

from edgekit.errors import EdgekitError


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; mean and std are buffers so they travel with the weights."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def normalize_for(info) -> Normalize:
    """The ``normalize`` module for a dataset; its statistics must match the image channels."""
    channels = info.shape[0]
    if len(info.mean) != channels or len(info.std) != channels:
        raise EdgekitError(f"dataset {info.name!r}: mean/std have {len(info.mean)}/{len(info.std)} "
                           f"values for {channels} channels")
    return Normalize(info.mean, info.std)
