"""Checks of an experiment against what is installed and known: model, dataset, splits, devices, attacks.

The schema (``config.py``) says what a value may look like; these checks say whether it names
something that exists. Both run before any work starts, and both name the value's path in the file.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.experiment.config import Experiment


def check_experiment(experiment: Experiment, source: str, inventory=None) -> None:
    """``EdgekitError`` naming ``source`` and the path of the first value that names nothing known.

    ``inventory``: the device inventory file (None: edgekit.devices' default)."""
    from edgekit.data import load_dataset
    from edgekit.devices.inventory import load_inventory
    from edgekit.models import create_model, list_models
    from edgekit.split import split_model, split_points

    def fail(where: str, value, accepted) -> EdgekitError:
        return EdgekitError(f"{source}: {where}: {value!r} is not one of {', '.join(map(str, accepted))}")

    if experiment.model not in list_models():
        raise fail("model", experiment.model, list_models())
    data = _named("dataset", source, load_dataset, experiment.dataset)
    if experiment.images > len(data.x_test):
        raise EdgekitError(f"{source}: images: {experiment.images} is more than the {len(data.x_test)} "
                           f"held-out images of {experiment.dataset}; accepted: 1 to {len(data.x_test)}")
    model = _named("model", source, create_model, experiment.model, data.info)
    points = [p.name for p in split_points(model, data.info.shape)]
    for index, split in enumerate(experiment.splits):
        if split not in points:
            raise fail(f"splits[{index}]", split, points)
    devices = _named("inventory", source, load_inventory, inventory)
    for index, device in enumerate(experiment.devices):
        if device not in devices:
            raise fail(f"devices[{index}]", device, sorted(devices))
        if not devices[device].is_local and not experiment.collector.address:
            raise EdgekitError(f"{source}: collector.address: required with device {device!r}: the address "
                               f"{device} reaches this machine at (and collector.listen = \"0.0.0.0\")")
    if "tflite" in experiment.formats:
        from edgekit.export.tools import require_tflite

        _named(f"formats[{experiment.formats.index('tflite')}]", source, require_tflite)
    parts = split_model(model, experiment.splits[0], data.info.shape)
    for index, attack in enumerate(experiment.attacks):
        build_attack(attack, experiment, f"{source}: attacks[{index}]", parts, data.info.shape)


def build_attack(attack, experiment: Experiment, where: str, parts, input_shape):
    """The ``cloud_side`` attack for an ``attacks`` entry against ``parts`` (a ``SplitParts``);
    ``EdgekitError`` prefixed by ``where`` for a setting the attack refuses."""
    from cloud_side.attacks import AttackError, list_attacks, make_attack
    from edgekit.experiment.shadows import shadow_factory

    if attack.kind not in list_attacks():
        raise EdgekitError(f"{where}.kind: {attack.kind!r} is not installed; installed: {', '.join(list_attacks())}")
    settings = attack.settings()
    settings.setdefault("preset", preset_for(attack.kind, experiment.dataset, parts.split.name))
    if attack.kind == "queryfree":
        settings["shadow_factory"] = shadow_factory(attack.shadow, parts.device, input_shape, parts.feature_shape,
                                                    experiment.attack_seed)
    try:
        return make_attack(attack.kind, seed=experiment.attack_seed, **settings)
    except AttackError as exc:
        raise EdgekitError(f"{where}: {exc}") from None


def preset_for(kind: str, dataset: str, split: str | None) -> str:
    """The attack's preset tuned for this dataset family and split (``mnist-ReLU2``), else ``default``."""
    from cloud_side.attacks import list_presets

    family = "cifar" if dataset.startswith("cifar") else "mnist" if "mnist" in dataset else dataset
    name = f"{family}-{split}"
    return name if name in list_presets(kind) else "default"


def _named(where: str, source: str, function, *args):
    try:
        return function(*args)
    except EdgekitError as exc:
        raise EdgekitError(f"{source}: {where}: {exc}") from None
