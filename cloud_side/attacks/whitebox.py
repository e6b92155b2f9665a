"""White-box attack: regularised maximum likelihood estimation (rMLE) of the input.

x* = argmin_x ||f1(x) - v||² + λ_TV·TV_β(x) + λ_l2·mean(x²), over images x in [0, 1].

The whole batch is optimised at once. The objective is a sum of per-image objectives, so each
image's gradient is the gradient it would get alone, and Adam acts element-wise: the batch gives
the same images as inverting one image at a time. x stays in [0, 1] by projection (clamped after
every step): MNIST backgrounds sit exactly at 0, which a sigmoid parametrisation never reaches.
"""

from __future__ import annotations

import torch
from torch import nn

from cloud_side.attacks.base import Attack, AttackError, Knowledge, frozen_copy, output_shape, register_attack
from cloud_side.attacks.presets import WHITEBOX_PRESETS

INITS = ("gray", "zeros", "noise")
TV_EPS = 1e-8


def total_variation(images: torch.Tensor, beta) -> torch.Tensor:
    """Per-image TV averaged over pixels.

    ``beta`` a number: mean of ((x[i+1,j]-x[i,j])² + (x[i,j+1]-x[i,j])² + eps)^(β/2), the paper's
    TV_β (β = 1 preserves edges). ``"squared"``: mean of squared vertical plus mean of squared
    horizontal differences, as in the authors' code.
    """
    if beta == "squared":
        down = (images[:, :, 1:, :] - images[:, :, :-1, :]).pow(2).mean(dim=(1, 2, 3))
        right = (images[:, :, :, 1:] - images[:, :, :, :-1]).pow(2).mean(dim=(1, 2, 3))
        return down + right
    down = images[:, :, 1:, :-1] - images[:, :, :-1, :-1]
    right = images[:, :, :-1, 1:] - images[:, :, :-1, :-1]
    return (down.pow(2) + right.pow(2) + TV_EPS).pow(float(beta) / 2).mean(dim=(1, 2, 3))


def initial_images(init: str, shape, seed: int) -> torch.Tensor:
    """Constant gray 0.5 (the paper), zeros, or uniform noise drawn from ``seed``."""
    if init == "gray":
        return torch.full(shape, 0.5)
    if init == "zeros":
        return torch.zeros(shape)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def check_inversion_settings(attack: str, settings: dict) -> None:
    if settings["init"] not in INITS:
        raise AttackError(f"{attack}: unknown init {settings['init']!r}; inits: {', '.join(INITS)}")
    beta = settings["tv_beta"]
    if beta != "squared" and (isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0):
        raise AttackError(f"{attack}: tv_beta must be a number > 0 or 'squared', got {beta!r}")


def per_image_objective(device_part: nn.Module, images, features, settings) -> torch.Tensor:
    """The rMLE objective of each image (shape (N,)); their sum has each image's own gradient."""
    mismatch = (device_part(images) - features).pow(2).flatten(1).mean(dim=1)
    objective = mismatch
    if settings["tv_weight"]:
        objective = objective + settings["tv_weight"] * total_variation(images, settings["tv_beta"])
    if settings["l2_weight"]:
        objective = objective + settings["l2_weight"] * images.pow(2).flatten(1).mean(dim=1)
    return objective


def invert(device_part: nn.Module, features: torch.Tensor, input_shape, settings: dict, seed: int) -> torch.Tensor:
    """Run rMLE against ``device_part`` (weights frozen) for every row of ``features`` at once."""
    images = initial_images(settings["init"], (len(features), *input_shape), seed).requires_grad_(True)
    optimiser = torch.optim.Adam([images], lr=settings["lr"], amsgrad=settings["amsgrad"], eps=settings["adam_eps"])
    for _ in range(settings["iterations"]):
        optimiser.zero_grad(set_to_none=True)
        per_image_objective(device_part, images, features, settings).sum().backward()
        optimiser.step()
        with torch.no_grad():
            images.clamp_(0.0, 1.0)
    return images.detach()


@register_attack
class WhiteBoxAttack(Attack):
    """rMLE with the device part's weights (He et al. 2019, attack 1)."""

    name = "whitebox"
    requires = ("device_part",)
    presets = WHITEBOX_PRESETS

    def _check_settings(self):
        check_inversion_settings(self.name, self.settings)

    def _fit(self, knowledge: Knowledge):
        self._device_part = frozen_copy(knowledge.device_part)
        return output_shape(self._device_part, self.input_shape)

    def _reconstruct(self, features):
        return invert(self._device_part, features, self.input_shape, self.settings, self.seed)
