"""The cloud's view of one configuration: accuracy of the cloud part and every attack's scores.

Input: the features the device sent for the private images (defended on the device, or defended
here when the defence is simulated). Output: one summary row per attack, one row per attacked
image and attack, and the reconstructions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PrivateImages:
    """The images the devices run (the attacked ones first) and their labels, seen by the scorer only."""

    images: np.ndarray
    labels: np.ndarray
    attacked_count: int
    indices: np.ndarray  # rows of the dataset's held-out set


def choose_private(data, count: int, attacked: int) -> PrivateImages:
    """``count`` held-out images: first the first image of each class (the paper's targets), then the rest
    in order, so that the attacked ones cover the classes."""
    labels = data.y_test
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    taken = set(firsts)
    order = firsts + [i for i in range(len(labels)) if i not in taken]
    indices = np.array(order[:count])
    return PrivateImages(np.ascontiguousarray(data.x_test[indices]), labels[indices], attacked, indices)


@dataclass
class Evaluation:
    accuracy: float
    rows: list[dict] = field(default_factory=list)          # per attack: summary columns
    image_rows: list[dict] = field(default_factory=list)    # per attack x image
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict)


def received_features(configuration, features: np.ndarray, seed: int) -> np.ndarray:
    """What the cloud receives: a simulated defence is applied here, row ``i`` as inference ``i``."""
    if configuration.defence.applied != "simulated":
        return features
    from cloud_side.segment import simulate_defence

    return simulate_defence(configuration.defence.spec(seed), features)


def evaluate(configuration, features: np.ndarray, private, attackers, attack_configs) -> Evaluation:
    """Score ``features`` (one row per private image) for ``configuration`` against every attack.

    ``private``: the ``PrivateImages``. ``attackers``: an ``AttackerPool`` already set to this configuration's split.
    """
    from cloud_side.metrics import score_images, summarize
    from cloud_side.segment import cloud_accuracy

    cloud = attackers.cloud_part(configuration.split)
    result = Evaluation(cloud_accuracy(cloud, features, private.labels))
    attacked = features[:private.attacked_count]
    truth = private.images[:private.attacked_count]
    for index, attack_config in enumerate(attack_configs):
        fitted = attackers.get(index, configuration)
        recon = fitted.attack.reconstruct(attacked)
        scores = score_images(truth, recon)
        summary = summarize(scores)
        result.rows.append({
            "attack": attack_config.name, "attack_kind": attack_config.kind,
            "psnr_mean": summary["psnr_db_mean"], "psnr_std": summary["psnr_db_std"],
            "ssim_mean": summary["ssim_mean"], "ssim_std": summary["ssim_std"],
            "attack_fit_seconds": fitted.take_fit_seconds(), "attack_seconds": fitted.attack.wall_seconds,
        })
        result.image_rows.extend(
            {"attack": attack_config.name, "index": i, "label": int(private.labels[i]),
             "psnr": float(scores["psnr_db"][i]), "ssim": float(scores["ssim"][i])}
            for i in range(len(truth)))
        result.reconstructions[attack_config.name] = recon
    return result
