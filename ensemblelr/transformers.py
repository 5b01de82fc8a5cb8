"""Transformers between probabilities, per-event log ratios and ensemble log ratios."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_ensembles, check_positive_int
from .logratio import log_odds, proba_to_logit


class LogRatioTransformer(TransformerMixin, BaseEstimator):
    """Classifier outputs -> per-event log likelihood ratio.

    A classifier trained with a signal fraction ``prior`` outputs
    ``p = sigmoid(log LR(x) + log(prior / (1 - prior)))``; this transformer inverts
    that: ``log LR = logit(p) - log(prior / (1 - prior))``.

    Parameters
    ----------
    prior : float in (0, 1), default=0.5
        Signal fraction of the classifier's training sample.
    input : {"proba", "logit"}, default="proba"
        Whether inputs are probabilities of class 1 or logits. Probabilities of
        exactly 0 or 1 are clipped (with a warning) so that outputs stay finite.

    Notes
    -----
    Input of shape (n,) or (n, 1) holds P(1|x) (or the logit); input of shape (n, 2)
    is read as ``predict_proba`` output and its second column used. Output has shape
    (n, 1).
    """

    def __init__(self, prior=0.5, input="proba"):
        self.prior = prior
        self.input = input

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = False
        return tags

    def _check(self):
        if self.input not in ("proba", "logit"):
            raise ValueError(f"input must be 'proba' or 'logit', got {self.input!r}.")
        return log_odds(self.prior)

    def _column(self, X, reset: bool) -> np.ndarray:
        X = validate_data(self, X, dtype=np.float64, reset=reset, ensure_2d=False)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"expected shape (n,), (n, 1) or (n, 2), got {X.shape}.")
        if X.shape[1] == 2 and self.input == "proba":
            if not np.allclose(X.sum(axis=1), 1.0, atol=1e-6):
                raise ValueError("input of shape (n, 2) must be predict_proba output: rows sum to 1.")
            return X[:, 1]
        if X.shape[1] != 1:
            raise ValueError(
                f"expected one column (P(signal) or logit) or two (predict_proba), got {X.shape[1]}."
            )
        return X[:, 0]

    def fit(self, X, y=None):
        """Validate the parameters and record the input width; learns nothing."""
        self._check()
        self._column(X, reset=True)
        return self

    def transform(self, X) -> np.ndarray:
        """Probabilities (or logits) of shape (n,), (n, 1) or (n, 2) -> log ratios (n, 1)."""
        check_is_fitted(self, "n_features_in_")
        offset = self._check()
        values = self._column(X, reset=False)
        logit = proba_to_logit(values) if self.input == "proba" else values
        return (logit - offset)[:, None]

    def inverse_transform(self, X) -> np.ndarray:
        """Log ratios (n, 1) -> probabilities P(1|x) (or logits) under ``prior``, (n, 1)."""
        offset = self._check()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != 1:
            raise ValueError(f"log ratios must have shape (n,) or (n, 1), got {X.shape}.")
        if not np.isfinite(X).all():
            raise ValueError("log ratios contain NaN or infinite values.")
        logit = X + offset
        if self.input == "logit":
            return logit
        return 1.0 / (1.0 + np.exp(-logit))

    def get_feature_names_out(self, input_features=None):
        return np.asarray(["log_ratio"], dtype=object)


class EnsembleLogRatio(TransformerMixin, BaseEstimator):
    """Per-event log ratios -> ensemble log ratios (sums over each ensemble).

    Parameters
    ----------
    ensemble_size : int, default=10
        For 2-D input: consecutive groups of this many events form an ensemble. The
        number of events must be a multiple of it (nothing is silently dropped).

    Notes
    -----
    Input is either 2-D, shape (n_events, 1) or (n_events,), grouped consecutively,
    or 3-D, shape (n_ensembles, ensemble_size, 1), where rows of NaN are padding.
    Output has shape (n_ensembles, 1). Because it changes the number of rows it
    cannot sit in the middle of an sklearn Pipeline; use it on model outputs.
    """

    def __init__(self, ensemble_size=10):
        self.ensemble_size = ensemble_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X, y=None):
        """Validate ``ensemble_size``; learns nothing."""
        check_positive_int(self.ensemble_size, "ensemble_size")
        if np.ndim(X) != 3:
            validate_data(self, X, dtype=np.float64, reset=True, ensure_2d=False)
        else:
            self.n_features_in_ = 1
        return self

    def transform(self, X, mask=None) -> np.ndarray:
        """Sum per-event log ratios over each ensemble, shape (n_ensembles, 1)."""
        size = check_positive_int(self.ensemble_size, "ensemble_size")
        if np.ndim(X) == 3:
            E, mask = check_ensembles(X, mask, n_features=1, name="log ratios")
            values = E[..., 0]
            if mask is not None:
                values = np.where(mask, values, 0.0)
            return values.sum(axis=1, dtype=np.float64)[:, None]
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_2d=False) if hasattr(
            self, "n_features_in_") else np.asarray(X, dtype=np.float64)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"per-event log ratios must have shape (n_events,) or (n_events, 1), or be 3-D "
                f"(n_ensembles, ensemble_size, 1); got {X.shape}."
            )
        if not np.isfinite(X).all():
            raise ValueError("per-event log ratios contain NaN or infinite values.")
        if len(X) % size:
            raise ValueError(
                f"{len(X)} events are not a multiple of ensemble_size={size}; pass 3-D "
                "ensembles padded with NaN for unequal sizes."
            )
        return X.reshape(-1, size).sum(axis=1)[:, None]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(["ensemble_log_ratio"], dtype=object)
