"""Query-free attack: train a shadow device part f1' through the frozen cloud part, then rMLE on it.

The attacker has f2 and labelled data of the task but neither f1's weights nor queries. The
shadow comes from ``shadow_factory`` (a callable returning an untrained module that maps images
to features f2 accepts): a fresh copy of f1's architecture for the paper's "same network", any
other architecture for "different network". ``shadow_shift`` > 0 augments the shadow's training
images: each batch image is moved by a random whole-pixel shift of up to that many pixels in each
direction (zero fill), drawn from ``seed``; 0 trains on the images as they are (the paper's MNIST).
"""

from __future__ import annotations

import torch
from torch.nn import functional

from cloud_side.attacks.base import Attack, AttackError, Knowledge, frozen_copy, output_shape, register_attack
from cloud_side.attacks.presets import QUERYFREE_PRESETS
from cloud_side.attacks.training import train_epochs
from cloud_side.attacks.whitebox import check_inversion_settings, invert


def random_shift(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by whole pixels, (dy, dx) uniform in [-shift, shift], uncovered pixels 0."""
    height, width = images.shape[-2:]
    padded = functional.pad(images, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (len(images), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + height, dx:dx + width] for i, (dy, dx) in enumerate(offsets)])


@register_attack
class QueryFreeAttack(Attack):
    """Shadow model trained with cross-entropy through f2, then inverted (He et al. 2019, attack 3)."""

    name = "queryfree"
    requires = ("cloud_part", "aux_images", "aux_labels")
    presets = QUERYFREE_PRESETS

    def _check_settings(self):
        if not callable(self.settings["shadow_factory"]):
            raise AttackError("queryfree: needs the setting shadow_factory, a callable returning an untrained "
                              "module that maps images to the cloud part's input")
        if self.settings["shadow_shift"] < 0:
            raise AttackError(f"queryfree: shadow_shift must be at least 0, not {self.settings['shadow_shift']}")
        check_inversion_settings(self.name, self.settings)

    def _fit(self, knowledge: Knowledge):
        cloud = frozen_copy(knowledge.cloud_part)
        self._shadow = self.settings["shadow_factory"]()
        feature_shape = output_shape(self._shadow, self.input_shape)
        try:
            output_shape(cloud, feature_shape)
        except RuntimeError as error:
            raise AttackError(f"queryfree: the shadow's features {feature_shape} do not fit the cloud part: {error}")
        images = torch.as_tensor(knowledge.aux_images, dtype=torch.float32)
        labels = torch.as_tensor(knowledge.aux_labels, dtype=torch.int64)
        shift = self.settings["shadow_shift"]
        generator = torch.Generator().manual_seed(self.seed)

        def task_loss(index):
            batch = images[index]
            if shift:
                batch = random_shift(batch, shift, generator)
            return functional.cross_entropy(cloud(self._shadow(batch)), labels[index])

        train_epochs(self._shadow, task_loss, len(images), epochs=self.settings["shadow_epochs"],
                     lr=self.settings["shadow_lr"], batch_size=self.settings["shadow_batch_size"],
                     lr_schedule=self.settings["shadow_lr_schedule"],
                     lr_halve_every=self.settings["shadow_lr_halve_every"], seed=self.seed)
        self._shadow.requires_grad_(False)
        return feature_shape

    def _reconstruct(self, features):
        return invert(self._shadow, features, self.input_shape, self.settings, self.seed)
