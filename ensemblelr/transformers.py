"""Transformers between probabilities, per-event log ratios and ensemble log ratios."""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data

from ._validation import check_ensembles, check_positive_int, input_ndim
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
    (n, 1). With ``input="logit"`` every column is one classifier's logit, so (n, k)
    maps to (n, k). The transformer is stateless: ``transform`` works without ``fit``;
    after ``fit`` it also checks the number of columns.
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
        """Validated input as a 2-D array of P(signal) (or logit) columns."""
        # A 1-D column becomes (n, 1) before validation, so that fit records
        # n_features_in_ and transform accepts the same shape.
        if input_ndim(X) == 1:
            X = np.asarray(X).reshape(-1, 1)
        X = validate_data(self, X, dtype=np.float64, reset=reset)
        if self.input == "logit":
            # Logits are unambiguous: every column is one classifier's logit.
            return X
        if X.shape[1] == 2:
            if not np.allclose(X.sum(axis=1), 1.0, atol=1e-6):
                raise ValueError("input of shape (n, 2) must be predict_proba output: rows sum to 1.")
            return X[:, 1:]
        if X.shape[1] != 1:
            raise ValueError(
                f"expected one column (P(signal)) or two (predict_proba), got {X.shape[1]}; "
                "several classifiers' outputs can be passed as logits (input='logit')."
            )
        return X

    def fit(self, X, y=None):
        """Validate the parameters and record the input width; learns nothing."""
        self._check()
        self._column(X, reset=True)
        return self

    def transform(self, X) -> np.ndarray:
        """Classifier outputs -> per-event log ratios.

        Parameters
        ----------
        X : array-like of shape (n,), (n, 1) or (n, 2)
            P(signal) or ``predict_proba`` output; with ``input="logit"``, any number
            of logit columns (n, k).

        Returns
        -------
        log_ratio : ndarray of shape (n, 1), or (n, k) for k logit columns
        """
        # Stateless (requires_fit=False): the input width is checked only after fit.
        offset = self._check()
        values = self._column(X, reset=False)
        logit = proba_to_logit(values) if self.input == "proba" else values
        return logit - offset

    def inverse_transform(self, X) -> np.ndarray:
        """Log ratios (n, 1) -> probabilities P(1|x) (or logits) under ``prior``, (n, 1).

        With ``input="logit"`` several columns (n, k) map to (n, k) logits.
        """
        offset = self._check()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        width_ok = X.ndim == 2 and (X.shape[1] == 1 or self.input == "logit")
        if not width_ok:
            raise ValueError(f"log ratios must have shape (n,) or (n, 1), got {X.shape}.")
        if not np.isfinite(X).all():
            raise ValueError("log ratios contain NaN or infinite values.")
        logit = X + offset
        if self.input == "logit":
            return logit
        return expit(logit)

    def get_feature_names_out(self, input_features=None):
        n_out = getattr(self, "n_features_in_", 1) if self.input == "logit" else 1
        if n_out == 1:
            return np.asarray(["log_ratio"], dtype=object)
        return np.asarray([f"log_ratio{i}" for i in range(n_out)], dtype=object)


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
    Output has shape (n_ensembles, 1). Several columns (the log ratios of several
    models) are summed column by column: (n_events, k) -> (n_ensembles, k). Because
    it changes the number of rows it cannot sit in the middle of an sklearn Pipeline;
    use it on model outputs.
    """

    def __init__(self, ensemble_size=10):
        self.ensemble_size = ensemble_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X, y=None):
        """Validate ``ensemble_size`` and record the number of columns; learns nothing."""
        check_positive_int(self.ensemble_size, "ensemble_size")
        if input_ndim(X) == 3:
            self.n_features_in_ = check_ensembles(X, name="log ratios")[0].shape[2]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            self._events(X, reset=True)
        return self

    def _events(self, X, reset: bool) -> np.ndarray:
        if input_ndim(X) == 1:
            X = np.asarray(X).reshape(-1, 1)
        return validate_data(self, X, dtype=np.float64, reset=reset)

    def transform(self, X, mask=None) -> np.ndarray:
        """Sum per-event log ratios over each ensemble, shape (n_ensembles, 1)."""
        size = check_positive_int(self.ensemble_size, "ensemble_size")
        if input_ndim(X) == 3:
            E, mask = check_ensembles(
                X, mask, n_features=getattr(self, "n_features_in_", None), name="log ratios"
            )
            if mask is not None:
                E = np.where(mask[..., None], E, 0.0)
            return _finite_sums(E)
        if mask is not None:
            # Ignoring it would silently count the events it marks as padding.
            raise ValueError(
                "mask applies to 3-D input of shape (n_ensembles, ensemble_size, n_columns); for "
                "2-D input, drop the padded events or pass 3-D ensembles padded with NaN."
            )
        # validate_data rejects NaN/inf and, once fitted, a changed number of columns.
        X = self._events(X, reset=False)
        if len(X) % size:
            raise ValueError(
                f"{len(X)} events are not a multiple of ensemble_size={size}; pass 3-D "
                "ensembles padded with NaN for unequal sizes."
            )
        return _finite_sums(X.reshape(-1, size, X.shape[1]))

    def get_feature_names_out(self, input_features=None):
        n_out = getattr(self, "n_features_in_", 1)
        if n_out == 1:
            return np.asarray(["ensemble_log_ratio"], dtype=object)
        return np.asarray([f"ensemble_log_ratio{i}" for i in range(n_out)], dtype=object)


def _finite_sums(E: np.ndarray) -> np.ndarray:
    """Sum (n_ensembles, size, k) over events; raise instead of returning an overflow to inf."""
    with np.errstate(over="ignore"):
        sums = E.sum(axis=1, dtype=np.float64)
    if not np.isfinite(sums).all():
        raise ValueError(
            "the summed log ratios overflow float64 (|sum| > 1.8e308); the per-event log ratios "
            "are not plausible values."
        )
    return sums
