"""What every attack shares: the attacker's ``Knowledge``, the ``Attack`` interface and the registry.

Every attack behaves the same way (as scikit-learn estimators do): construct it with settings
(``make_attack(name, preset=..., seed=..., **overrides)``), ``fit(knowledge)``, then
``reconstruct(features)``. The attacker is only ever given what ``Knowledge`` holds; the true
private images are seen by the scorer alone.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn


class AttackError(ValueError):
    """A misuse of an attack: missing knowledge, a bad setting, a feature of the wrong shape."""


@dataclass(frozen=True)
class Knowledge:
    """What the adversary (the cloud) has.

    ``device_part``: f1 itself (white-box). ``query``: a callable sending float32 NCHW images in
    [0, 1] to the device part and returning its features (black-box). ``cloud_part``: f2.
    ``aux_images``/``aux_labels``: data the attacker holds (never the attacked images).
    ``input_shape``: (C, H, W) of the private images.
    """

    device_part: nn.Module | None = None
    query: Callable[[np.ndarray], Any] | None = None
    cloud_part: nn.Module | None = None
    aux_images: np.ndarray | None = None
    aux_labels: np.ndarray | None = None
    input_shape: tuple[int, int, int] = (1, 28, 28)


KNOWLEDGE_FIELDS = tuple(f.name for f in fields(Knowledge))


def frozen_copy(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` whose weights take no gradient (the caller's module is untouched)."""
    return copy.deepcopy(module).eval().requires_grad_(False)


class Attack:
    """Base class: settings from a preset plus overrides, knowledge checks, shape checks, timing.

    Subclasses set ``name``, ``requires`` (the ``Knowledge`` fields they need) and ``presets``
    (``{"default": {every setting: value}, other: {some settings}}``) and implement ``_fit``
    (returning the feature shape the attack inverts) and ``_reconstruct``.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    presets: ClassVar[dict[str, dict[str, Any]]]

    def __init__(self, preset: str = "default", seed: int = 0, **overrides):
        if preset not in self.presets:
            raise AttackError(f"{self.name}: unknown preset {preset!r}; presets: {', '.join(sorted(self.presets))}")
        accepted = self.presets["default"]
        unknown = sorted(set(overrides) - set(accepted))
        if unknown:
            raise AttackError(f"{self.name}: unknown settings {unknown}; settings: {', '.join(sorted(accepted))}")
        self.preset = preset
        self.seed = int(seed)
        self.settings = {**accepted, **self.presets[preset], **overrides}
        self._check_settings()
        self.feature_shape: tuple[int, ...] | None = None
        self.input_shape: tuple[int, int, int] | None = None
        self.wall_seconds: float | None = None

    def _check_settings(self) -> None:
        """Raise ``AttackError`` for a setting value the attack cannot use (called at construction)."""

    def required_knowledge(self) -> tuple[str, ...]:
        return self.requires

    def fit(self, knowledge: Knowledge) -> "Attack":
        missing = [name for name in self.required_knowledge() if getattr(knowledge, name) is None]
        if missing:
            raise AttackError(f"{self.name} attack needs knowledge it was not given: {', '.join(missing)} "
                              f"(Knowledge fields: {', '.join(KNOWLEDGE_FIELDS)})")
        if (knowledge.aux_images is not None and knowledge.aux_labels is not None
                and len(knowledge.aux_images) != len(knowledge.aux_labels)):
            raise AttackError(f"{self.name}: {len(knowledge.aux_images)} aux images but "
                              f"{len(knowledge.aux_labels)} aux labels")
        self.input_shape = tuple(knowledge.input_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.feature_shape = tuple(self._fit(knowledge))
        return self

    def reconstruct(self, features) -> np.ndarray:
        """Reconstructed images, float32 NCHW in [0, 1], one per row of ``features``; sets ``wall_seconds``."""
        if self.feature_shape is None:
            raise AttackError(f"{self.name}: call fit(knowledge) before reconstruct")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim < 2 or features.shape[1:] != self.feature_shape:
            raise AttackError(f"{self.name}: features of shape {features.shape} do not fit this attack; "
                              f"expected (N, {', '.join(map(str, self.feature_shape))})")
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            images = self._reconstruct(torch.from_numpy(features))
        self.wall_seconds = time.perf_counter() - start
        return np.clip(images.detach().numpy(), 0.0, 1.0).astype(np.float32)

    def _fit(self, knowledge: Knowledge) -> tuple[int, ...]:
        raise NotImplementedError

    def _reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(preset={self.preset!r}, seed={self.seed}, settings={self.settings!r})"


_ATTACKS: dict[str, type[Attack]] = {}


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator: make ``cls`` creatable by ``make_attack(cls.name, ...)``."""
    _ATTACKS[cls.name] = cls
    return cls


def list_attacks() -> list[str]:
    return sorted(_ATTACKS)


def list_presets(name: str) -> list[str]:
    """The preset names of attack ``name``."""
    if name not in _ATTACKS:
        raise AttackError(f"unknown attack {name!r}; attacks: {', '.join(list_attacks())}")
    return sorted(_ATTACKS[name].presets)


def make_attack(name: str, **settings) -> Attack:
    """``make_attack("whitebox", preset="mnist-ReLU2", seed=0, iterations=100)``."""
    if name not in _ATTACKS:
        raise AttackError(f"unknown attack {name!r}; attacks: {', '.join(list_attacks())}")
    return _ATTACKS[name](**settings)


def output_shape(module: nn.Module, input_shape) -> tuple[int, ...]:
    """The per-item output shape of ``module`` on one zero image of ``input_shape``."""
    with torch.no_grad():
        return tuple(module(torch.zeros(1, *input_shape)).shape[1:])
