"""make_ensembles and make_mixture_ensembles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ensemblelr import make_ensembles, make_mixture_ensembles


def _labelled_events(n0: int, n1: int):
    """Events whose feature encodes label and identity: +i for signal, -(i + 1) for background."""
    X = np.concatenate([-(np.arange(n0) + 1.0), np.arange(n1) + 1.0])[:, None]
    X = np.concatenate([X, np.zeros_like(X)], axis=1)  # a second, constant feature
    y = np.concatenate([np.zeros(n0, dtype=int), np.ones(n1, dtype=int)])
    return X, y


# ------------------------------------------------------------ make_ensembles
def test_same_label_ensembles_use_each_event_once():
    X, y = _labelled_events(30, 20)
    E, y_ens = make_ensembles(X, y, 5, random_state=0)
    assert E.shape == (10, 5, 2)
    assert np.bincount(y_ens).tolist() == [6, 4]
    signal = E[..., 0] > 0
    np.testing.assert_array_equal(signal.all(axis=1), y_ens == 1)
    np.testing.assert_array_equal(signal.any(axis=1), y_ens == 1)
    assert len(np.unique(E[..., 0])) == 50
    np.testing.assert_array_equal(E[..., 1], 0.0)


def test_remainder_is_dropped_with_warning():
    X, y = _labelled_events(23, 17)
    with pytest.warns(UserWarning, match=r"5 event\(s\) did not fill an ensemble of 5"):
        E, y_ens = make_ensembles(X, y, 5, random_state=0)
    assert np.bincount(y_ens).tolist() == [4, 3]
    assert len(np.unique(E[..., 0])) == 35


def test_no_warning_when_nothing_dropped():
    X, y = _labelled_events(10, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_ensembles(X, y, 5, random_state=0)


def test_reproducible_with_random_state():
    X, y = _labelled_events(40, 40)
    first = make_ensembles(X, y, 4, random_state=3)
    second = make_ensembles(X, y, 4, random_state=3)
    other = make_ensembles(X, y, 4, random_state=4)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])
    rng = np.random.RandomState(0)
    assert not np.array_equal(make_ensembles(X, y, 4, random_state=rng)[0],
                              make_ensembles(X, y, 4, random_state=rng)[0])


def test_without_shuffle_keeps_order():
    X, y = _labelled_events(6, 4)
    E, y_ens = make_ensembles(X, y, 2, shuffle=False)
    np.testing.assert_array_equal(y_ens, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(E[0, :, 0], [-1.0, -2.0])
    np.testing.assert_array_equal(E[-1, :, 0], [3.0, 4.0])


@pytest.mark.parametrize("labels", [(-1, 1), (0.0, 1.0), (False, True), ("b", "s")])
def test_labels_keep_their_values(labels):
    X, y = _labelled_events(6, 6)
    y = np.where(y == 1, labels[1], labels[0])
    E, y_ens = make_ensembles(X, y[:, None] if labels[0] == 0.0 else y, 3, random_state=0)
    assert y_ens.dtype == y.dtype
    assert set(y_ens.tolist()) == set(labels)
    np.testing.assert_array_equal(E[..., 0].max(axis=1) > 0, y_ens == labels[1])


def test_make_ensembles_errors():
    X, y = _labelled_events(10, 4)
    with pytest.raises(ValueError, match="larger than the 4 events of class"):
        make_ensembles(X, y, 5)
    for size in (0, -1, 2.5):
        with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
            make_ensembles(X, y, size)
    with pytest.raises(ValueError, match=r"13 entries but the data has 14|inconsistent"):
        make_ensembles(X, y[:-1], 2)
    with pytest.raises(ValueError, match="only one class"):
        make_ensembles(X, np.zeros(14), 2)
    with pytest.raises(ValueError, match="3 classes"):
        make_ensembles(X, np.arange(14) % 3, 2)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make_ensembles(bad, y, 2)
    with pytest.raises(ValueError, match="dim 3"):
        make_ensembles(X.reshape(7, 2, 2), y[:7], 1)


# ---------------------------------------------------- make_mixture_ensembles
def _signal_background(n: int, n_features: int = 2):
    signal = np.tile(np.arange(1.0, n + 1)[:, None], (1, n_features))
    return signal, -signal


def test_mixture_signal_count_is_binomial():
    signal, background = _signal_background(20_000)
    n_ens, size, mu = 1000, 20, 0.3
    E, n_signal = make_mixture_ensembles(signal, background, size, mu, n_ens, random_state=0)
    assert E.shape == (n_ens, size, 2)
    np.testing.assert_array_equal(n_signal, (E[..., 0] > 0).sum(axis=1))
    # Binomial(size, mu): mean and variance within 5 standard errors.
    assert abs(n_signal.mean() - size * mu) < 5 * np.sqrt(size * mu * (1 - mu) / n_ens)
    var = size * mu * (1 - mu)
    assert abs(n_signal.var() - var) < 5 * var * np.sqrt(2 / n_ens)
    # Without replacement, every event appears at most once.
    assert len(np.unique(E[..., 0])) == E[..., 0].size


def test_mixture_per_ensemble_fractions():
    signal, background = _signal_background(200)
    mu = np.array([0.0, 1.0, 0.0, 1.0])
    E, n_signal = make_mixture_ensembles(signal, background, 10, mu, random_state=1)
    np.testing.assert_array_equal(n_signal, [0, 10, 0, 10])
    assert (E[[0, 2], :, 0] < 0).all() and (E[[1, 3], :, 0] > 0).all()


def test_mixture_reproducible():
    signal, background = _signal_background(500)
    a = make_mixture_ensembles(signal, background, 5, 0.5, 20, random_state=7)
    b = make_mixture_ensembles(signal, background, 5, 0.5, 20, random_state=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_mixture_replace():
    signal, background = _signal_background(10)
    with pytest.raises(ValueError, match=r"without replacement.*replace=True"):
        make_mixture_ensembles(signal, background, 10, 0.5, 5, random_state=0)
    E, _ = make_mixture_ensembles(signal, background, 10, 0.5, 5, random_state=0, replace=True)
    assert E.shape == (5, 10, 2)
    assert set(np.abs(E[..., 0]).ravel()) <= set(range(1, 11))


def test_mixture_errors():
    signal, background = _signal_background(50)
    with pytest.raises(ValueError, match="X_signal has 2 features but X_background has 1"):
        make_mixture_ensembles(signal, background[:, :1], 5, 0.5, 2)
    for mu in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="signal_fraction"):
            make_mixture_ensembles(signal, background, 5, mu, 2)
    with pytest.raises(ValueError, match="n_ensembles must be a positive integer"):
        make_mixture_ensembles(signal, background, 5, 0.5)
    with pytest.raises(ValueError, match="one value per ensemble"):
        make_mixture_ensembles(signal, background, 5, [0.1, 0.2], n_ensembles=3)
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        make_mixture_ensembles(signal, background, 0, 0.5, 2)
    bad = signal.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        make_mixture_ensembles(bad, background, 5, 0.5, 2)
