"""Fitted attacks, shared by every configuration whose attacker knows the same things.

What the white-box and query-free attackers know depends on the split only (the device part's
weights, the cloud part), not on the format or precision the device runs, nor on the features it
later receives: they are fitted once per (split, attack) and reused for every format, precision,
defence and device of that split. The black-box attacker queries the configuration's exported
device part, so its decoder is fitted per (split, attack, format, precision), and per device too
when the device's agent answers the queries (``via = "agent"``; ``"local"`` runs the same file in
its runtime on this machine, whatever the device).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.experiment.checks import build_attack
from edgekit.experiment.config import Experiment
from edgekit.experiment.measure import artifact_spec


@dataclass
class Fitted:
    attack: object  # a fitted cloud_side Attack
    fit_seconds: float
    charged: bool = False  # whether a results row already counts fit_seconds

    def take_fit_seconds(self) -> float:
        """The fit time for the first row that uses this attack, 0 for the others (no double count)."""
        seconds, self.charged = (0.0 if self.charged else self.fit_seconds), True
        return seconds


class AttackerPool:
    """``pool.get(index, configuration)``: attack ``experiment.attacks[index]`` fitted for ``configuration``.

    ``export_dir`` holds the exported device parts; ``inventory`` is the device inventory file (None:
    edgekit.devices' default) for black-box queries answered by a device's agent.
    """

    def __init__(self, experiment: Experiment, data, private_indices, export_dir: Path, inventory=None):
        self.experiment = experiment
        self.data = data
        self.public_test = np.setdiff1d(np.arange(len(data.x_test)), private_indices)
        self.export_dir, self.inventory = export_dir, inventory
        self._parts, self._artifacts = {}, {}
        self._fitted: dict[tuple, Fitted] = {}

    def use_split(self, split: str, parts, artifacts: dict) -> None:
        """Make ``split``'s torch parts and exported device parts (manifest entries by (format, precision))
        known, and forget the attacks of other splits (memory). A failed export's entry is its error."""
        self._parts, self._artifacts = {split: parts}, artifacts
        self._fitted = {key: value for key, value in self._fitted.items() if key[0] == split}

    def cloud_part(self, split: str):
        return self._parts[split].cloud

    def get(self, index: int, configuration) -> Fitted:
        config = self.experiment.attacks[index]
        key = reuse_key(index, config, configuration)
        if key not in self._fitted:
            parts = self._parts[configuration.split]
            attack = build_attack(config, self.experiment, f"attacks[{index}]", parts, self.data.info.shape)
            with self.knowledge(config, configuration) as knowledge:
                start = time.perf_counter()
                attack.fit(knowledge)
                self._fitted[key] = Fitted(attack, time.perf_counter() - start)
        return self._fitted[key]

    @contextlib.contextmanager
    def knowledge(self, config, configuration):
        """What this attack's adversary holds, for the block; never the private (attacked) images."""
        from cloud_side.attacks import Knowledge

        shape = tuple(self.data.info.shape)
        parts = self._parts[configuration.split]
        if config.kind == "whitebox":
            yield Knowledge(device_part=parts.device, input_shape=shape)
        elif config.kind == "blackbox":
            images = None if config.query_source == "noise" else self._aux(config.query_source, config.queries)[0]
            with self._queries(config.via, configuration) as query:
                yield Knowledge(query=query, aux_images=images, input_shape=shape)
        else:
            images, labels = self._aux("train" if config.shadow == "same" else "same-distribution",
                                       config.aux_images)
            yield Knowledge(cloud_part=parts.cloud, aux_images=images, aux_labels=labels, input_shape=shape)

    @contextlib.contextmanager
    def _queries(self, via: str, configuration):
        """Query access to the configuration's exported device part: images in, features out."""
        artifact = self._artifacts[(configuration.format, configuration.precision)]
        path = self.export_dir / artifact["file"]
        if via == "local":
            yield local_query(artifact, path, self.experiment.cloud_threads)
            return
        from edgekit.devices import get_device, load_inventory

        device = get_device(configuration.device, load_inventory(self.inventory))
        with device.serve_queries(artifact, path, self.experiment.threads) as client:
            yield client.query

    def _aux(self, source: str, limit: int | None):
        """The target's training images, or held-out images other than the private ones."""
        if source == "train":
            images, labels = self.data.x_train, self.data.y_train
        else:
            images, labels = self.data.x_test[self.public_test], self.data.y_test[self.public_test]
        if len(images) == 0:
            raise EdgekitError(f"no {source} images left for the attacker: every held-out image is private; "
                               "lower images")
        return images[:limit], labels[:limit]


def reuse_key(index: int, config, configuration) -> tuple:
    """Which configurations share a fitted attack (the split comes first: ``use_split`` keeps by it)."""
    if config.kind != "blackbox":
        return configuration.split, index
    answered_by = configuration.device if config.via == "agent" else "local"
    return configuration.split, index, configuration.format, configuration.precision, answered_by


def local_query(artifact: dict, path: Path, threads: int):
    """The exported device part ``artifact`` (a manifest entry, file at ``path``) in its runtime on this
    machine, as a query: images [N,C,H,W] in, features [N,...] out, one image at a time (batch-1 files)."""
    from device_agents.queries import run_each
    from device_agents.runtime import load_runner

    runner = load_runner(artifact_spec(artifact, str(path)), threads)
    return lambda images: run_each(runner, np.ascontiguousarray(images, dtype=np.float32))
