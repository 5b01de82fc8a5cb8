"""Generators for the paper's Gaussian studies, with exact answers to test against."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_positive_int


def make_gaussian_events(
    n_per_class: int = 100_000,
    signal_mean: float = 0.1,
    background_mean: float = -0.1,
    sigma: float = 1.0,
    random_state=None,
):
    """One-feature events: signal N(signal_mean, sigma^2) vs background N(background_mean, sigma^2).

    The exact per-event log likelihood ratio is :func:`gaussian_log_ratio`; with the
    defaults it is ``0.2 x``.

    Parameters
    ----------
    n_per_class : int
    signal_mean, background_mean, sigma : float
    random_state : int, RandomState or None

    Returns
    -------
    X : ndarray of shape (2 * n_per_class, 1)
        Signal events first, then background.
    y : ndarray of int of shape (2 * n_per_class,)
        1 for signal, 0 for background.
    """
    n = check_positive_int(n_per_class, "n_per_class")
    _check_sigma(sigma)
    _check_means(signal_mean, background_mean)
    rng = check_random_state(random_state)
    signal = rng.normal(signal_mean, sigma, n)
    background = rng.normal(background_mean, sigma, n)
    X = np.concatenate([signal, background])[:, None]
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    return X, y


def gaussian_log_ratio(X, signal_mean: float = 0.1, background_mean: float = -0.1, sigma: float = 1.0):
    """Exact ``log N(x; signal_mean, sigma) / N(x; background_mean, sigma)``, summed over the last axis.

    For events (n, 1) it returns shape (n,); for ensembles (n, N, 1) use
    ``gaussian_log_ratio(E).sum(axis=1)``.
    """
    _check_sigma(sigma)
    _check_means(signal_mean, background_mean)
    X = np.asarray(X, dtype=np.float64)
    delta = signal_mean - background_mean
    midpoint = 0.5 * (signal_mean + background_mean)
    return (delta / sigma**2 * (X - midpoint)).sum(axis=-1)


def make_gaussian_regression(
    n_ensembles: int,
    ensemble_size: int = 100,
    theta_range: tuple[float, float] = (-0.5, 0.5),
    sigma: float = 1.0,
    random_state=None,
):
    """Ensembles of N(theta, sigma^2) events with theta ~ U(theta_range), as in the paper.

    Returns
    -------
    E : ndarray of shape (n_ensembles, ensemble_size, 1)
    theta : ndarray of shape (n_ensembles,)
        The mean that generated each ensemble.
    """
    n_ensembles = check_positive_int(n_ensembles, "n_ensembles")
    ensemble_size = check_positive_int(ensemble_size, "ensemble_size")
    _check_sigma(sigma)
    try:
        low, high = (float(v) for v in theta_range)
    except (TypeError, ValueError):
        raise ValueError(f"theta_range must be a pair (low, high) of numbers, got {theta_range!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"theta_range must be (low, high), finite, with low < high, got {theta_range!r}.")
    rng = check_random_state(random_state)
    theta = rng.uniform(low, high, n_ensembles)
    E = theta[:, None, None] + sigma * rng.standard_normal((n_ensembles, ensemble_size, 1))
    return E, theta


def _check_sigma(sigma) -> None:
    if not _is_finite_number(sigma) or not sigma > 0:
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}.")


def _check_means(*means) -> None:
    for mean in means:
        if not _is_finite_number(mean):
            raise ValueError(f"the class means must be finite numbers, got {mean!r}.")


def _is_finite_number(value) -> bool:
    """True for a finite real scalar (Python or numpy, 0-d arrays included)."""
    if isinstance(value, (str, bytes, bool)) or np.ndim(value) != 0:
        return False
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
