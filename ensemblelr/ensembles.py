"""Forming ensembles of events."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._validation import (
    check_binary_labels,
    check_bool,
    check_event_array,
    check_fraction,
    check_labels_1d,
    check_positive_int,
)


def make_ensembles(X, y, ensemble_size: int, random_state=None, *, shuffle: bool = True):
    """Group labelled events into same-label ensembles.

    Events of each class are (optionally) shuffled and cut into consecutive groups of
    ``ensemble_size``. Per class, the last ``n_class % ensemble_size`` events do not
    fill an ensemble and are dropped; a ``UserWarning`` says how many.

    Parameters
    ----------
    X : array-like of shape (n_events, n_features)
    y : array-like of shape (n_events,) or (n_events, 1)
        Two classes; the larger label (1 = signal) is the positive class.
    ensemble_size : int
        Events per ensemble, N.
    random_state : int, RandomState or None
        Controls the shuffling of events and of the output ensembles.
    shuffle : bool, default=True
        If False, events are grouped in their input order within each class and the
        ensembles of class 0 come first.

    Returns
    -------
    E : ndarray of shape (n_ensembles, ensemble_size, n_features)
    y_ensembles : ndarray of shape (n_ensembles,)
        The label shared by the events of each ensemble (original label values).
    """
    check_event_array(X)
    X = check_array(X, dtype=np.float64, ensure_all_finite=True, input_name="X")
    y = check_labels_1d(y, X.shape[0])
    ensemble_size = check_positive_int(ensemble_size, "ensemble_size")
    shuffle = check_bool(shuffle, "shuffle")
    classes, y01 = check_binary_labels(y)
    rng = check_random_state(random_state)
    groups, labels, dropped = [], [], 0
    for code, label in enumerate(classes):
        idx = np.flatnonzero(y01 == code)
        if shuffle:
            idx = rng.permutation(idx)
        n_ensembles = len(idx) // ensemble_size
        if n_ensembles == 0:
            raise ValueError(
                f"ensemble_size={ensemble_size} is larger than the {len(idx)} events of class "
                f"{label!r}; no ensemble can be formed."
            )
        dropped += len(idx) - n_ensembles * ensemble_size
        groups.append(idx[: n_ensembles * ensemble_size].reshape(n_ensembles, ensemble_size))
        labels.append(np.full(n_ensembles, label, dtype=y.dtype))
    index = np.concatenate(groups)
    y_ensembles = np.concatenate(labels)
    if shuffle:
        order = rng.permutation(len(index))
        index, y_ensembles = index[order], y_ensembles[order]
    if dropped:
        warnings.warn(
            f"make_ensembles: {dropped} event(s) did not fill an ensemble of {ensemble_size} "
            "and were dropped.",
            UserWarning,
            stacklevel=2,
        )
    return X[index], y_ensembles


def make_mixture_ensembles(
    X_signal,
    X_background,
    ensemble_size: int,
    signal_fraction,
    n_ensembles: int | None = None,
    random_state=None,
    *,
    replace: bool = False,
):
    """Ensembles whose events are signal with probability ``signal_fraction`` (mu).

    Each event is independently signal with probability mu (so the number of signal
    events per ensemble is binomial, as in a real data set), then drawn from the
    corresponding sample.

    Parameters
    ----------
    X_signal, X_background : array-like of shape (n_signal, n_features), (n_background, n_features)
    ensemble_size : int
    signal_fraction : float or array-like of shape (n_ensembles,)
        mu in [0, 1]; an array gives one mu per ensemble.
    n_ensembles : int, optional
        Required when ``signal_fraction`` is a scalar.
    random_state : int, RandomState or None
    replace : bool, default=False
        Draw events with replacement. Without replacement (the default) every event
        is used at most once, and too small a sample raises.

    Returns
    -------
    E : ndarray of shape (n_ensembles, ensemble_size, n_features)
    n_signal : ndarray of int of shape (n_ensembles,)
        Number of signal events in each ensemble.
    """
    check_event_array(X_signal, "X_signal")
    check_event_array(X_background, "X_background")
    X_signal = check_array(X_signal, dtype=np.float64, input_name="X_signal")
    X_background = check_array(X_background, dtype=np.float64, input_name="X_background")
    if X_signal.shape[1] != X_background.shape[1]:
        raise ValueError(
            f"X_signal has {X_signal.shape[1]} features but X_background has {X_background.shape[1]}."
        )
    ensemble_size = check_positive_int(ensemble_size, "ensemble_size")
    replace = check_bool(replace, "replace")
    mu = np.asarray(signal_fraction, dtype=np.float64)
    if mu.ndim == 0:
        n_ensembles = check_positive_int(n_ensembles, "n_ensembles")
        mu = np.full(n_ensembles, float(mu))
    elif mu.ndim != 1 or (n_ensembles is not None and len(mu) != n_ensembles):
        raise ValueError("signal_fraction must be a scalar or a 1-D array with one value per ensemble.")
    if len(mu) == 0:
        raise ValueError("signal_fraction is empty; need one value per ensemble (at least one).")
    for value in np.unique(mu):
        check_fraction(value, "signal_fraction", low_open=False, high_open=False)
    rng = check_random_state(random_state)
    is_signal = rng.random_sample((len(mu), ensemble_size)) < mu[:, None]
    n_sig, n_bkg = int(is_signal.sum()), int((~is_signal).sum())
    if not replace and (n_sig > len(X_signal) or n_bkg > len(X_background)):
        raise ValueError(
            f"need {n_sig} signal and {n_bkg} background events without replacement, but have "
            f"{len(X_signal)} and {len(X_background)}; use fewer ensembles or replace=True."
        )
    E = np.empty((len(mu), ensemble_size, X_signal.shape[1]))
    E[is_signal] = X_signal[rng.choice(len(X_signal), n_sig, replace=replace)]
    E[~is_signal] = X_background[rng.choice(len(X_background), n_bkg, replace=replace)]
    return E, is_signal.sum(axis=1)
