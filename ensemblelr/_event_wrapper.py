"""Shared prediction API for estimators built on top of per-event log-ratio models.

A wrapper (calibration, bagging) only has to say how it turns events into per-event
log ratios; this mixin derives every other prediction of a
:class:`~ensemblelr.PerInstanceClassifier` from that, so the wrapper can be used
wherever a per-instance model is (scorers, transformers, ensemble predictions).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._base import PREDICT_CHUNK_EVENTS
from ._validation import check_ensembles
from .logratio import log_ratio_to_proba, logit_to_log_proba


def check_log_ratio_estimator(estimator, name: str = "estimator") -> None:
    """Raise a TypeError unless ``estimator`` can produce per-event log ratios."""
    if not hasattr(estimator, "decision_function") or not hasattr(estimator, "fit"):
        raise TypeError(
            f"{name} must be a per-event log-ratio model with fit and decision_function "
            f"(e.g. PerInstanceClassifier), got {type(estimator).__name__}."
        )


def finite_log_ratio(values: np.ndarray, source: str) -> np.ndarray:
    """Return ``values`` as float64, or raise if a wrapped model produced NaN."""
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"{source} returned NaN log ratios; the wrapped model is broken or diverged.")
    return values


class EventLogRatioMixin:
    """Predictions from ``self._event_log_ratio(X) -> (n_events,)``.

    Subclasses set ``classes_``, ``n_features_in_`` and ``log_prior_odds_`` (the log
    odds of the training classes, used by the class-balance predictions) in ``fit``.
    """

    def _event_log_ratio(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """Per-event log likelihood ratio ``log p(x|1) / p(x|0)``.

        Parameters
        ----------
        X : array-like of shape (n_events, n_features)

        Returns
        -------
        log_ratio : ndarray of shape (n_events,)
        """
        check_is_fitted(self)
        return self._event_log_ratio(X)

    def _logit(self, X) -> np.ndarray:
        """Logit under the training class balance; models that have it directly override this."""
        return self.decision_function(X) + self.log_prior_odds_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities under the training class balance, shape (n_events, 2)."""
        return log_ratio_to_proba(self._logit(X), prior=0.5)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, accurate where probabilities round to 0 or 1."""
        return logit_to_log_proba(self._logit(X))

    def predict(self, X) -> np.ndarray:
        """Most probable class under the training class balance, shape (n_events,)."""
        logit = self._logit(X)  # first, so that an unfitted model raises NotFittedError
        return self.classes_[(logit > 0).astype(int)]

    def predict_ensemble_log_ratio(self, E, mask=None) -> np.ndarray:
        """Ensemble log likelihood ratio: the sum of per-event log ratios.

        Parameters
        ----------
        E : array-like of shape (n_ensembles, ensemble_size, n_features)
            Rows of NaN are padding and contribute nothing.
        mask : array-like of bool of shape (n_ensembles, ensemble_size), optional
            False marks padding (alternative to NaN rows).

        Returns
        -------
        log_ratio : ndarray of shape (n_ensembles,)
        """
        check_is_fitted(self)
        E, mask = check_ensembles(E, mask, n_features=self.n_features_in_)
        n_ensembles, size, n_features = E.shape
        chunk = max(1, PREDICT_CHUNK_EVENTS // size)
        out = np.empty(n_ensembles)
        for start in range(0, n_ensembles, chunk):
            part = E[start : start + chunk]
            per_event = self._event_log_ratio(part.reshape(-1, n_features)).reshape(len(part), size)
            if mask is not None:
                # Padded events were zero-filled by check_ensembles; drop their values.
                per_event = np.where(mask[start : start + chunk], per_event, 0.0)
            out[start : start + chunk] = per_event.sum(axis=1)
        return out

    def predict_ensemble_proba(self, E, prior: float = 0.5, mask=None) -> np.ndarray:
        """Probability that each ensemble is signal, for a prior signal probability.

        Parameters
        ----------
        E : array-like of shape (n_ensembles, ensemble_size, n_features)
        prior : float in (0, 1), default=0.5
        mask : array-like of bool of shape (n_ensembles, ensemble_size), optional

        Returns
        -------
        proba : ndarray of shape (n_ensembles, 2)
        """
        return log_ratio_to_proba(self.predict_ensemble_log_ratio(E, mask), prior=prior)
