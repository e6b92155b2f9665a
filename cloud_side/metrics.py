"""Reconstruction quality scores, computed one way everywhere (see ``CONVENTION``)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from cloud_side.segment import cloud_accuracy

PSNR_CAP_DB = 100.0

CONVENTION = (
    "Images clipped to [0, 1]. PSNR = 10*log10(1/MSE) per image (peak 1), capped at "
    f"{PSNR_CAP_DB:g} dB when MSE = 0. SSIM = skimage.metrics.structural_similarity per image, "
    "data_range=1.0, default 7x7 window, channel_axis=0 for colour images. "
    "Reported as mean and std over images."
)


def _as_images(name: str, images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"{name} must be NCHW images, got shape {images.shape}")
    return np.clip(images, 0.0, 1.0)


def psnr_db(true, recon) -> np.ndarray:
    """Per-image PSNR in dB of NCHW images in [0, 1]."""
    true, recon = _as_images("true", true), _as_images("recon", recon)
    mse = ((true - recon) ** 2).reshape(len(true), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(1.0 / mse), PSNR_CAP_DB)


def ssim(true, recon) -> np.ndarray:
    """Per-image SSIM (data_range 1, 7x7 window; colour images use ``channel_axis=0``)."""
    true, recon = _as_images("true", true), _as_images("recon", recon)
    if true.shape[1] == 1:
        return np.array([structural_similarity(t[0], r[0], data_range=1.0) for t, r in zip(true, recon)])
    return np.array([structural_similarity(t, r, data_range=1.0, channel_axis=0) for t, r in zip(true, recon)])


def score_images(true, recon) -> dict[str, np.ndarray]:
    """``{"psnr_db": per-image array, "ssim": per-image array}`` for two NCHW batches of equal shape."""
    true, recon = np.asarray(true), np.asarray(recon)
    if true.shape != recon.shape:
        raise ValueError(f"true images {true.shape} and reconstructions {recon.shape} differ in shape")
    return {"psnr_db": psnr_db(true, recon), "ssim": ssim(true, recon)}


def summarize(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """``{"<metric>_mean": .., "<metric>_std": ..}`` for every per-image metric in ``scores``."""
    summary = {}
    for metric, values in scores.items():
        summary[f"{metric}_mean"] = float(np.mean(values))
        summary[f"{metric}_std"] = float(np.std(values))
    return summary


def reconstruction_accuracy(model, recon, labels, batch: int = 256) -> float:
    """Top-1 accuracy of the whole target ``model`` on the reconstructed images."""
    return cloud_accuracy(model, recon, labels, batch=batch)
