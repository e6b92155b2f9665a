"""Scores of reconstructions: PSNR and SSIM per image, by the convention in ``CONVENTION``."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from cloud_side.metrics import (CONVENTION, PSNR_CAP_DB, reconstruction_accuracy, score_images,
                                summarize)


def test_identical_images_score_the_cap_and_ssim_one():
    images = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    scores = score_images(images, images.copy())
    np.testing.assert_array_equal(scores["psnr_db"], [PSNR_CAP_DB] * 3)
    np.testing.assert_allclose(scores["ssim"], 1.0)


def test_psnr_of_a_known_mse_per_image():
    true = np.zeros((2, 1, 8, 8), dtype=np.float32)
    recon = true.copy()
    recon[0] += 0.1                       # MSE 0.01 -> 20 dB
    recon[1, 0, :4] = 1.0                 # half the pixels off by 1: MSE 0.5 -> 3.0103 dB
    np.testing.assert_allclose(score_images(true, recon)["psnr_db"], [20.0, 10 * np.log10(2)], rtol=1e-6)


def test_images_are_clipped_to_the_unit_range_before_scoring():
    true = np.full((1, 1, 8, 8), 1.0, dtype=np.float32)
    np.testing.assert_array_equal(score_images(true, true + 5.0)["psnr_db"], [PSNR_CAP_DB])


def test_ssim_uses_data_range_one_and_channel_axis_for_colour():
    rng = np.random.default_rng(1)
    true = rng.random((2, 3, 16, 16))
    recon = np.clip(true + rng.normal(0, 0.1, true.shape), 0, 1)
    expected = [structural_similarity(t, r, data_range=1.0, channel_axis=0) for t, r in zip(true, recon)]
    np.testing.assert_allclose(score_images(true, recon)["ssim"], expected)
    grey = [structural_similarity(t[0], r[0], data_range=1.0) for t, r in zip(true[:, :1], recon[:, :1])]
    np.testing.assert_allclose(score_images(true[:, :1], recon[:, :1])["ssim"], grey)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        score_images(np.zeros((2, 1, 8, 8)), np.zeros((2, 1, 8, 9)))


def test_summarize_gives_mean_and_std_per_metric():
    summary = summarize({"psnr_db": np.array([10.0, 20.0]), "ssim": np.array([0.5, 0.5])})
    assert summary == {"psnr_db_mean": 15.0, "psnr_db_std": 5.0, "ssim_mean": 0.5, "ssim_std": 0.0}
    assert "data_range=1.0" in CONVENTION and "channel_axis=0" in CONVENTION


def test_reconstruction_accuracy_is_the_models_top1_on_the_images():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    images = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=np.float32).reshape(3, 1, 2, 2)
    assert reconstruction_accuracy(model, images, [0, 1, 1]) == pytest.approx(2 / 3)
