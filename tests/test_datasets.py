"""Gaussian generators and their exact log likelihood ratios."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from ensemblelr.datasets import gaussian_log_ratio, make_gaussian_events, make_gaussian_regression


def test_gaussian_events_layout_and_moments():
    n = 20_000
    X, y = make_gaussian_events(n, signal_mean=0.3, background_mean=-0.1, sigma=2.0, random_state=0)
    assert X.shape == (2 * n, 1) and y.shape == (2 * n,)
    assert y.dtype.kind == "i"
    np.testing.assert_array_equal(y[:n], 1)
    np.testing.assert_array_equal(y[n:], 0)
    # Means within 5 standard errors, standard deviations within 5 of theirs.
    se_mean, se_std = 2.0 / np.sqrt(n), 2.0 / np.sqrt(2 * n)
    assert abs(X[:n].mean() - 0.3) < 5 * se_mean
    assert abs(X[n:].mean() + 0.1) < 5 * se_mean
    assert abs(X[:n].std() - 2.0) < 5 * se_std
    assert abs(X[n:].std() - 2.0) < 5 * se_std


def test_gaussian_events_reproducible():
    a = make_gaussian_events(100, random_state=4)
    b = make_gaussian_events(100, random_state=4)
    c = make_gaussian_events(100, random_state=5)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("means", [(0.1, -0.1), (0.5, 0.0), (-1.0, 2.0)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_gaussian_log_ratio_is_exact(means, sigma):
    x = np.linspace(-5, 5, 21)[:, None]
    expected = norm.logpdf(x[:, 0], means[0], sigma) - norm.logpdf(x[:, 0], means[1], sigma)
    np.testing.assert_allclose(gaussian_log_ratio(x, *means, sigma=sigma), expected, atol=1e-12)


def test_gaussian_log_ratio_defaults_and_ensembles():
    x = np.array([[-1.0], [0.0], [2.5]])
    np.testing.assert_allclose(gaussian_log_ratio(x), 0.2 * x[:, 0], atol=1e-15)
    E = np.arange(12.0).reshape(2, 3, 2)  # two features: both are summed
    per_event = gaussian_log_ratio(E)
    assert per_event.shape == (2, 3)
    np.testing.assert_allclose(per_event, 0.2 * E.sum(axis=-1), atol=1e-12)
    np.testing.assert_allclose(per_event.sum(axis=1), [0.2 * 15, 0.2 * 51])


def test_gaussian_regression():
    params = dict(ensemble_size=400, theta_range=(-1.0, 2.0), random_state=0)
    E, theta = make_gaussian_regression(300, **params)
    assert E.shape == (300, 400, 1) and theta.shape == (300,)
    assert theta.min() >= -1.0 and theta.max() < 2.0
    # Each ensemble's mean estimates its theta with standard error 1 / sqrt(400).
    pulls = (E[..., 0].mean(axis=1) - theta) * np.sqrt(400)
    assert np.abs(pulls).max() < 5
    assert abs(pulls.std() - 1.0) < 5 / np.sqrt(2 * 300)
    again, theta_again = make_gaussian_regression(300, **params)
    np.testing.assert_array_equal(E, again)
    np.testing.assert_array_equal(theta, theta_again)


def test_dataset_errors():
    for n in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n_per_class must be a positive integer"):
            make_gaussian_events(n)
    for sigma in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="sigma must be a positive finite number"):
            make_gaussian_events(10, sigma=sigma)
        with pytest.raises(ValueError, match="sigma must be a positive finite number"):
            gaussian_log_ratio([[1.0]], sigma=sigma)
        with pytest.raises(ValueError, match="sigma must be a positive finite number"):
            make_gaussian_regression(2, sigma=sigma)
    with pytest.raises(ValueError, match="n_ensembles must be a positive integer"):
        make_gaussian_regression(0)
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        make_gaussian_regression(2, ensemble_size=0)
    with pytest.raises(ValueError, match="low < high"):
        make_gaussian_regression(2, theta_range=(1.0, 1.0))
