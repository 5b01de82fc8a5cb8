"""mutual_information against the exact value for two Gaussian classes."""

from __future__ import annotations

import numpy as np
import pytest

from ensemblelr import PerInstanceClassifier, mutual_information
from ensemblelr.datasets import make_gaussian_events
from ensemblelr.information import gaussian_mutual_information


def _tiny():
    return PerInstanceClassifier(hidden_layer_sizes=(16, 16), max_epochs=8, early_stopping=False,
                                 batch_size=256, random_state=0)


def test_exact_gaussian_value_limits():
    assert gaussian_mutual_information(0.0, 0.0) == pytest.approx(0.0, abs=1e-10)
    # Fully separated classes carry H(Y) = log 2 nats.
    assert gaussian_mutual_information(20.0, -20.0) == pytest.approx(np.log(2), abs=1e-8)
    # Small separation d: I ~ d^2 / 8 (Fisher information of a balanced label).
    assert gaussian_mutual_information(0.05, -0.05) == pytest.approx(0.1**2 / 8, rel=0.01)
    assert gaussian_mutual_information(1.0, 0.0, prior=0.3) == pytest.approx(
        gaussian_mutual_information(0.0, 1.0, prior=0.7), rel=1e-9
    )


@pytest.mark.parametrize("separation", [0.5, 1.0, 2.0])
def test_label_method_matches_exact(separation):
    exact = gaussian_mutual_information(separation / 2, -separation / 2)
    X, y = make_gaussian_events(10_000, separation / 2, -separation / 2, random_state=1)
    mi, std = mutual_information(X, y, _tiny(), method="label", random_state=0, return_std=True)
    # 4 statistical sd plus a small allowance for the learned ratio's own error.
    assert abs(mi - exact) < 4 * std + 0.005


@pytest.mark.parametrize("separation", [1.0, 2.0])
def test_shuffle_method_matches_exact(separation):
    exact = gaussian_mutual_information(separation / 2, -separation / 2)
    X, y = make_gaussian_events(10_000, separation / 2, -separation / 2, random_state=2)
    mi, std = mutual_information(X, y, _tiny(), method="shuffle", random_state=0, return_std=True)
    # The Donsker-Varadhan estimate is a lower bound up to sampling error.
    assert mi < exact + 4 * std
    assert mi > exact - 4 * std - 0.015


def test_independent_label_gives_zero():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(8_000, 2))
    y = rng.integers(0, 2, 8_000)
    mi = mutual_information(X, y, _tiny(), method="label", random_state=0)
    assert abs(mi) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "knn"}, "method"),
        ({"estimate": "mine"}, "estimate"),
        ({"cv": 1}, "cv"),
    ],
)
def test_bad_arguments(kwargs, match):
    X = np.arange(20.0)[:, None]
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        mutual_information(X, y, _tiny(), **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="one class"):
        mutual_information(np.zeros((10, 1)), np.ones(10), _tiny())
    with pytest.raises(TypeError, match="decision_function"):
        mutual_information(np.zeros((10, 1)), np.arange(10) % 2, estimator="model")
    with pytest.raises(ValueError, match="sigma"):
        gaussian_mutual_information(sigma=0.0)
