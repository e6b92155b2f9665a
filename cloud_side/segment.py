"""The cloud segment f2: top-1 predictions and accuracy on received (possibly defended) features."""

from __future__ import annotations

import numpy as np
import torch
from device_agents.defences import Defence, apply_defence


@torch.no_grad()
def cloud_predict(cloud_part: torch.nn.Module, features, batch: int = 256) -> np.ndarray:
    """Top-1 class index for every row of ``features`` (run in batches of ``batch``)."""
    features = np.asarray(features, dtype=np.float32)
    cloud_part.eval()
    predictions = [cloud_part(torch.from_numpy(features[start:start + batch])).argmax(dim=1)
                   for start in range(0, len(features), batch)]
    return torch.cat(predictions).numpy() if predictions else np.zeros(0, dtype=np.int64)


def cloud_accuracy(cloud_part: torch.nn.Module, features, labels, batch: int = 256) -> float:
    """Fraction of rows of ``features`` whose top-1 prediction equals ``labels``."""
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no features to score")
    return float(np.mean(cloud_predict(cloud_part, features, batch) == labels))


def simulate_defence(defence: dict | None, features) -> np.ndarray:
    """Apply ``defence`` on the cloud side as the device would: row ``i`` is inference index ``i``.

    Uses ``device_agents.defences`` itself, so a simulated row equals the row the device would send
    for inference ``i`` (each row is defended with a batch of 1, the device parts' batch). Results
    built from this must say the defence was simulated, not applied on the device.
    """
    parsed = Defence.from_dict(defence)
    features = np.asarray(features, dtype=np.float32)
    return np.concatenate([apply_defence(parsed, features[i:i + 1], i) for i in range(len(features))]) \
        if len(features) else features.copy()
