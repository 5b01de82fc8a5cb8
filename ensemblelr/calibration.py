"""Calibration of per-event log likelihood ratios.

A classifier can rank events well and still report log ratios that are too large or
too small (over- or under-confidence). For a single event that only spoils
probabilities, but an ensemble log ratio is a *sum* of per-event values, so a scale
error of a few percent per event becomes a large error for an ensemble of hundreds
of events. :class:`CalibratedLogRatio` refits the map from the model's output to
the log ratio on held-out labelled events.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._event_wrapper import EventLogRatioMixin, check_log_ratio_estimator, finite_log_ratio
from ._validation import check_binary_labels, check_event_array, check_fraction, check_sample_weight
from .per_instance import class_log_odds

METHODS = ("temperature", "platt", "isotonic")


def _weighted_bce(params: np.ndarray, r: np.ndarray, y01: np.ndarray, w: np.ndarray, offset: float):
    """Weighted binary cross-entropy of logits ``a r + b + offset`` and its gradient."""
    a, b = params[0], params[1] if len(params) > 1 else 0.0
    logit = a * r + b + offset
    loss = -(w * (y01 * log_expit(logit) + (1 - y01) * log_expit(-logit))).sum()
    residual = w * (np.exp(log_expit(logit)) - y01)
    grad = [(residual * r).sum()]
    if len(params) > 1:
        grad.append(residual.sum())
    return loss / w.sum(), np.array(grad) / w.sum()


class CalibratedLogRatio(EventLogRatioMixin, ClassifierMixin, BaseEstimator):
    """Per-event log-ratio model whose output is recalibrated on held-out events.

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``decision_function``
        A per-event log-ratio model, e.g. :class:`PerInstanceClassifier` (or a
        :class:`BaggedPerInstanceClassifier`); its ``decision_function`` must return
        (an estimate of) the log ratio ``log p(x|1) / p(x|0)``.
    method : {"temperature", "platt", "isotonic"}, default="temperature"
        - ``"temperature"``: ``a * r(x)``, one scale (1 / temperature); keeps the
          zero of the log ratio, so it never adds a per-event bias that a sum over
          many events would amplify;
        - ``"platt"``: ``a * r(x) + b``;
        - ``"isotonic"``: a monotone, piecewise-linear map of ``r(x)``; fixes any
          monotone distortion but needs many calibration events.
    prefit : bool, default=False
        If True, ``estimator`` is already fitted and all of ``X`` calibrates it. If
        False, a clone is fitted on ``1 - calibration_fraction`` of the events and
        the rest (stratified by class) calibrates it.
    calibration_fraction : float in (0, 1), default=0.25
    random_state : int, RandomState or None
        Controls the train / calibration split.

    Attributes
    ----------
    estimator_ : estimator
        The fitted per-event model.
    scale_ : float
        Fitted ``a`` (``"temperature"``, ``"platt"``); ``temperature_ = 1 / scale_``.
    bias_ : float
        Fitted ``b`` (0 for ``"temperature"``).
    isotonic_ : IsotonicRegression
        Fitted map from ``r(x)`` to the calibration-set class probability (``"isotonic"``).
    log_prior_odds_ : float
        Log odds of the weighted training classes (used by ``predict_proba``).
    classes_ : ndarray of shape (2,)
    n_features_in_ : int

    Examples
    --------
    >>> from ensemblelr import CalibratedLogRatio, PerInstanceClassifier
    >>> model = CalibratedLogRatio(PerInstanceClassifier(max_epochs=5), method="isotonic")
    """

    def __init__(self, estimator, method="temperature", prefit=False, calibration_fraction=0.25,
                 random_state=None):
        self.estimator = estimator
        self.method = method
        self.prefit = prefit
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the model (unless ``prefit``) and the calibration map.

        Parameters
        ----------
        X : array-like of shape (n_events, n_features)
        y : array-like of shape (n_events,)
            Two classes; the larger label is signal.
        sample_weight : array-like of shape (n_events,), optional

        Returns
        -------
        self
        """
        check_log_ratio_estimator(self.estimator)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}.")
        if not isinstance(self.prefit, (bool, np.bool_)):
            raise ValueError(f"prefit must be True or False, got {self.prefit!r}.")
        check_event_array(X)
        X, y = validate_data(self, X, y, dtype=np.float64, reset=True)
        self.classes_, y01 = check_binary_labels(y)
        weight = check_sample_weight(sample_weight, len(y01))
        self.log_prior_odds_ = class_log_odds(y01, weight)
        fit_kwargs = {} if sample_weight is None else {"sample_weight": weight}
        if self.prefit:
            check_is_fitted(self.estimator, msg="prefit=True but the estimator is not fitted.")
            self.estimator_ = self.estimator
            cal = np.arange(len(y01))
        else:
            fraction = check_fraction(self.calibration_fraction, "calibration_fraction")
            train, cal = self._split(y01, fraction)
            self.estimator_ = clone(self.estimator)
            kwargs = {k: v[train] for k, v in fit_kwargs.items()}
            self.estimator_.fit(X[train], y[train], **kwargs)
        raw = finite_log_ratio(self.estimator_.decision_function(X[cal]), "estimator.decision_function")
        self._fit_map(raw, y01[cal], weight[cal])
        return self

    def _split(self, y01: np.ndarray, fraction: float):
        rng = check_random_state(self.random_state)
        train, cal = [], []
        for label in (0.0, 1.0):
            idx = rng.permutation(np.flatnonzero(y01 == label))
            n_cal = round(fraction * len(idx))
            if n_cal < 1 or n_cal >= len(idx):
                raise ValueError(
                    f"calibration_fraction={fraction} leaves no events of class {int(label)} for "
                    f"training or for calibration ({len(idx)} events); pass more data."
                )
            cal.append(idx[:n_cal])
            train.append(idx[n_cal:])
        return np.sort(np.concatenate(train)), np.sort(np.concatenate(cal))

    def _fit_map(self, r: np.ndarray, y01: np.ndarray, w: np.ndarray) -> None:
        # The calibration sample's own class balance sets the logit offset, so the
        # fitted map is a log ratio whatever the class balance of the events.
        offset = class_log_odds(y01, w)
        self._offset = offset
        self.scale_, self.bias_ = 1.0, 0.0
        if self.method == "isotonic":
            # Clip probabilities one event's worth inside (0, 1): a pure block at an
            # end of the range would otherwise give an infinite log ratio.
            eps = 1.0 / (len(r) + 2)
            self.isotonic_ = IsotonicRegression(y_min=eps, y_max=1 - eps, out_of_bounds="clip")
            self.isotonic_.fit(r, y01, sample_weight=w)
            return
        start = np.array([1.0] if self.method == "temperature" else [1.0, 0.0])
        result = minimize(_weighted_bce, start, args=(r, y01, w, offset), jac=True, method="L-BFGS-B")
        self.scale_ = float(result.x[0])
        self.bias_ = float(result.x[1]) if self.method == "platt" else 0.0

    @property
    def temperature_(self) -> float:
        """``1 / scale_``; inf when the model carries no information."""
        check_is_fitted(self)
        return float(np.inf) if self.scale_ == 0 else 1.0 / self.scale_

    def _event_log_ratio(self, X) -> np.ndarray:
        r = finite_log_ratio(self.estimator_.decision_function(X), "estimator.decision_function")
        if self.method == "isotonic":
            p = self.isotonic_.predict(r)
            return np.log(p) - np.log1p(-p) - self._offset
        # 0 * inf is NaN: an uninformative model (scale 0) on an overflowing event.
        return finite_log_ratio(self.scale_ * r + self.bias_, "the calibrated model")
