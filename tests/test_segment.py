"""The cloud segment: accuracy on received features, undefended or with a simulated defence."""

import numpy as np
import pytest
import torch
from device_agents.defences import Defence, apply_defence

from cloud_side.segment import cloud_accuracy, cloud_predict, simulate_defence


@pytest.fixture
def cloud_part():
    """Predicts the index of the largest of 3 features."""
    return torch.nn.Identity()


def test_accuracy_counts_top1_hits_across_batches(cloud_part):
    features = np.eye(3, dtype=np.float32)[[0, 1, 2, 2, 1]]
    np.testing.assert_array_equal(cloud_predict(cloud_part, features, batch=2), [0, 1, 2, 2, 1])
    assert cloud_accuracy(cloud_part, features, [0, 1, 2, 0, 0], batch=2) == pytest.approx(0.6)


def test_labels_must_match_features(cloud_part):
    with pytest.raises(ValueError, match="labels"):
        cloud_accuracy(cloud_part, np.zeros((3, 3), np.float32), [0, 1])


@pytest.mark.parametrize("defence", [{"kind": "gaussian", "sigma": 0.5, "seed": 3},
                                     {"kind": "laplace", "b": 0.2, "seed": 1},
                                     {"kind": "dropout", "rate": 0.5, "seed": 7}])
def test_simulated_defence_equals_the_devices_per_inference_output(defence):
    features = np.random.default_rng(0).random((4, 2, 3, 3), dtype=np.float32)
    parsed = Defence.from_dict(defence)
    on_device = np.concatenate([apply_defence(parsed, features[i:i + 1], i) for i in range(4)])
    simulated = simulate_defence(defence, features)
    np.testing.assert_array_equal(simulated, on_device)
    assert not np.array_equal(simulated, features)


def test_no_defence_leaves_features_unchanged():
    features = np.random.default_rng(0).random((2, 5), dtype=np.float32)
    np.testing.assert_array_equal(simulate_defence({"kind": "none"}, features), features)
    np.testing.assert_array_equal(simulate_defence(None, features), features)


def test_dropout_lowers_accuracy_of_a_real_cloud_part(cloud_part):
    features = np.eye(3, dtype=np.float32)[np.arange(300) % 3] + 0.1
    labels = np.arange(300) % 3
    clean = cloud_accuracy(cloud_part, features, labels)
    defended = cloud_accuracy(cloud_part, simulate_defence({"kind": "dropout", "rate": 0.5, "seed": 0}, features),
                              labels)
    assert clean == 1.0 and defended < 0.9
