"""Defences: deterministic per (seed, index), dropout without rescaling, one-line errors."""

import numpy as np
import pytest

from device_agents.defences import Defence, apply_defence

FEATURES = np.linspace(0.5, 2.0, 4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)


@pytest.mark.parametrize("spec", [{"kind": "gaussian", "sigma": 0.5, "seed": 3},
                                  {"kind": "laplace", "b": 0.5, "seed": 3},
                                  {"kind": "dropout", "rate": 0.3, "seed": 3}])
def test_same_seed_and_index_reproduce_exactly(spec):
    defence = Defence.from_dict(spec)
    first = apply_defence(defence, FEATURES, 5)
    assert first.dtype == np.float32 and first.shape == FEATURES.shape
    np.testing.assert_array_equal(first, apply_defence(Defence.from_dict(spec), FEATURES.copy(), 5))
    assert not np.array_equal(first, apply_defence(defence, FEATURES, 6))
    assert not np.array_equal(first, apply_defence(Defence.from_dict(dict(spec, seed=4)), FEATURES, 5))
    assert Defence.from_dict(defence.to_dict()) == defence


def test_dropout_zeroes_without_rescaling():
    out = apply_defence(Defence("dropout", 0.5, 0), FEATURES, 0)
    kept = out != 0
    np.testing.assert_array_equal(out[kept], FEATURES[kept])  # survivors unchanged: no 1/(1-r)
    assert 0.4 < 1 - kept.mean() < 0.6


def test_noise_scale():
    big = np.zeros(200000, dtype=np.float32)
    assert np.std(apply_defence(Defence("gaussian", 0.5, 1), big, 0)) == pytest.approx(0.5, rel=0.02)
    # Laplace(b) has standard deviation b * sqrt(2).
    assert np.std(apply_defence(Defence("laplace", 0.5, 1), big, 0)) == pytest.approx(0.5 * 2 ** 0.5, rel=0.02)


def test_none_and_zero_rate_leave_features_alone():
    np.testing.assert_array_equal(apply_defence(Defence.from_dict({"kind": "none"}), FEATURES, 1), FEATURES)
    np.testing.assert_array_equal(apply_defence(Defence("dropout", 0.0, 1), FEATURES, 1), FEATURES)


@pytest.mark.parametrize("spec, words", [
    ({"kind": "gaussian", "sigma": -1}, "must be >= 0"),
    ({"kind": "dropout", "rate": 1.0}, "[0, 1)"),
    ({"kind": "dropout", "rate": -0.1}, "[0, 1)"),
    ({"kind": "blur", "sigma": 1}, "unknown defence kind 'blur'"),
    ({"kind": "laplace", "sigma": 1}, "unknown keys"),
    ({"kind": "gaussian", "sigma": 1, "seed": -2}, "seed"),
])
def test_bad_parameters_are_one_line_value_errors(spec, words):
    with pytest.raises(ValueError) as error:
        Defence.from_dict(spec)
    message = str(error.value)
    assert words in message and "accepted kinds: none, gaussian" in message and "\n" not in message
