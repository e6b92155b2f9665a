"""Black-box attack: query the device part, then train an inverse network g: f1(x) -> x.

Query sources (the paper's three): ``"train"`` and ``"same-distribution"`` send the attacker's
``aux_images`` (the caller decides which images those are: the target's training set, or other
images of the same distribution); ``"noise"`` sends ``noise_queries`` Gaussian images drawn from
``seed``, N(noise_mean, noise_std²) per pixel in image space and not clipped: with MNIST's
normalisation (mean 0.5, std 0.5) that is the paper's N(0, 1) in normalised space.
``decoders`` > 1 trains that many decoders (initialisation and shuffling drawn one after another
from ``seed``) and averages their reconstructions; 1 is the paper's single decoder.
"""

from __future__ import annotations

import numpy as np
import torch

from cloud_side.attacks.base import Attack, AttackError, Knowledge, register_attack
from cloud_side.attacks.decoders import decoder_for
from cloud_side.attacks.presets import BLACKBOX_PRESETS
from cloud_side.attacks.training import train_epochs

QUERY_SOURCES = ("train", "same-distribution", "noise")


def query_features(query, images: np.ndarray, batch: int) -> np.ndarray:
    """Send ``images`` through the ``query`` callable in batches; float32 features, one row per image."""
    rows = [np.asarray(query(images[start:start + batch]), dtype=np.float32) for start in range(0, len(images), batch)]
    features = np.concatenate(rows)
    if len(features) != len(images):
        raise AttackError(f"blackbox: the query answered {len(features)} features for {len(images)} images")
    return features


@register_attack
class BlackBoxAttack(Attack):
    """Inverse network trained on the device part's answers to queries (He et al. 2019, attack 2)."""

    name = "blackbox"
    requires = ("query", "aux_images")
    presets = BLACKBOX_PRESETS

    def _check_settings(self):
        if self.settings["query_source"] not in QUERY_SOURCES:
            raise AttackError(f"blackbox: unknown query_source {self.settings['query_source']!r}; "
                              f"query sources: {', '.join(QUERY_SOURCES)}")
        if self.settings["decoders"] < 1:
            raise AttackError(f"blackbox: decoders must be at least 1, not {self.settings['decoders']}")

    def required_knowledge(self):
        return ("query",) if self.settings["query_source"] == "noise" else self.requires

    def _queries(self, knowledge: Knowledge) -> np.ndarray:
        if self.settings["query_source"] == "noise":
            rng = np.random.default_rng(self.seed)
            shape = (self.settings["noise_queries"], *self.input_shape)
            return rng.normal(self.settings["noise_mean"], self.settings["noise_std"], shape).astype(np.float32)
        return np.asarray(knowledge.aux_images, dtype=np.float32)

    def _fit(self, knowledge: Knowledge):
        images = self._queries(knowledge)
        features = query_features(knowledge.query, images, self.settings["query_batch"])
        self._decoders = [self._train_decoder(features, images, self.seed + k) for k in range(self.settings["decoders"])]
        return features.shape[1:]

    def _train_decoder(self, features: np.ndarray, images: np.ndarray, shuffle_seed: int):
        decoder = decoder_for(features.shape[1:], self.input_shape)
        inputs, targets = torch.from_numpy(features), torch.from_numpy(images)

        def pixel_loss(index):
            return (decoder(inputs[index]) - targets[index]).pow(2).mean()

        train_epochs(decoder, pixel_loss, len(images), epochs=self.settings["epochs"], lr=self.settings["lr"],
                     batch_size=self.settings["batch_size"], lr_schedule=self.settings["lr_schedule"],
                     lr_halve_every=self.settings["lr_halve_every"], seed=shuffle_seed)
        return decoder.requires_grad_(False)

    def _reconstruct(self, features):
        batch = self.settings["query_batch"]
        return torch.stack([torch.cat([decoder(features[start:start + batch]) for start in range(0, len(features), batch)])
                            for decoder in self._decoders]).mean(0)
