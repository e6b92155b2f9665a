"""Inverse networks g: feature -> image for the black-box attack, chosen by feature shape.

The paper's decoders (from the authors' code, no output activation) are used for the feature
shapes of its splits; any other shape gets a generic decoder derived from the shapes alone.
"""

from __future__ import annotations

import math

from torch import nn

from cloud_side.attacks.base import AttackError

# (feature shape, image shape) -> builder of the paper's decoder for that split.
PAPER_DECODERS = {
    ((8, 24, 24), (1, 28, 28)): lambda: nn.Conv2d(8, 1, 5, padding=4),                       # MNIST conv1
    ((16, 8, 8), (1, 28, 28)): lambda: nn.Sequential(                                         # MNIST ReLU2
        nn.ConvTranspose2d(16, 8, 5), nn.ReLU(), nn.ConvTranspose2d(8, 1, 5, stride=2, output_padding=1)),
    ((64, 32, 32), (3, 32, 32)): lambda: nn.ConvTranspose2d(64, 3, 3, padding=1),            # CIFAR conv11
    ((128, 16, 16), (3, 32, 32)): lambda: nn.Sequential(                                      # CIFAR ReLU22
        nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(64, 3, 3, padding=1)),
    ((128, 8, 8), (3, 32, 32)): lambda: nn.Sequential(                                        # CIFAR ReLU32
        nn.ConvTranspose2d(128, 128, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(64, 3, 3, padding=1)),
}

FLAT_MAP_CHANNELS = 64
MIN_CHANNELS = 16


class _Unflatten(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(len(x), *self.shape)


def _generic_decoder(feature_shape, image_shape) -> nn.Module:
    """Upsample to the image: flat features go through a Linear layer to a small spatial map first.

    Each stage doubles the spatial size with a ConvTranspose (k4 s2 p1) and halves the channels;
    the last stages resize to the exact image size and map to the image channels with a 3x3 conv.
    """
    channels, height, width = image_shape
    layers: list[nn.Module] = []
    if len(feature_shape) == 1:
        side = max(1, math.ceil(min(height, width) / 4))
        layers += [nn.Linear(feature_shape[0], FLAT_MAP_CHANNELS * side * side), nn.ReLU(),
                   _Unflatten((FLAT_MAP_CHANNELS, side, side))]
        current, size = FLAT_MAP_CHANNELS, side
    else:
        current, size = feature_shape[0], min(feature_shape[1:])
    while size * 2 <= max(height, width):
        following = max(MIN_CHANNELS, current // 2)
        layers += [nn.ConvTranspose2d(current, following, 4, stride=2, padding=1), nn.ReLU()]
        current, size = following, size * 2
    layers += [nn.Upsample(size=(height, width), mode="bilinear", align_corners=False),
               nn.Conv2d(current, channels, 3, padding=1)]
    return nn.Sequential(*layers)


def decoder_for(feature_shape, image_shape) -> nn.Module:
    """The paper's decoder for one of its split shapes, else a generic one; maps (N, *feature) -> (N, *image)."""
    feature_shape, image_shape = tuple(feature_shape), tuple(image_shape)
    if len(feature_shape) not in (1, 3):
        raise AttackError(f"blackbox: no decoder for features of shape {feature_shape}: expected (F,) or (C, H, W)")
    paper = PAPER_DECODERS.get((feature_shape, image_shape))
    return paper() if paper else _generic_decoder(feature_shape, image_shape)
