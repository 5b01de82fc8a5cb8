"""An sklearn scorer that evaluates classifiers on ensembles built from a fold's events."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics
from sklearn.utils import check_random_state

from ._validation import check_fraction, check_positive_int
from .ensembles import make_ensembles

_METRICS = {
    "roc_auc": (metrics.roc_auc_score, "proba"),
    "average_precision": (metrics.average_precision_score, "proba"),
    "neg_log_loss": (lambda y, p: -metrics.log_loss(y, p, labels=[0, 1]), "proba"),
    "neg_brier_score": (lambda y, p: -metrics.brier_score_loss(y, p), "proba"),
    "accuracy": (metrics.accuracy_score, "label"),
}


class EnsembleScorer:
    """Callable ``scorer(estimator, X, y)``; build it with :func:`ensemble_scorer`."""

    def __init__(self, metric, ensemble_size, random_state, prior):
        self.metric = metric
        self.ensemble_size = ensemble_size
        self.random_state = random_state
        self.prior = prior

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("ensemble_scorer does not support sample_weight.")
        # A fixed integer seed gives every fold and candidate the same kind of draw;
        # a RandomState instance advances between calls.
        if not callable(getattr(estimator, "predict_ensemble_proba", None)):
            raise TypeError(
                f"ensemble_scorer needs an estimator with predict_ensemble_proba (e.g. "
                f"PerInstanceClassifier or PerEnsembleClassifier), got {type(estimator).__name__}."
            )
        rng = self.random_state
        rng = rng if isinstance(rng, np.random.RandomState) else check_random_state(rng)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="make_ensembles: .* dropped", category=UserWarning)
            E, y_ens = make_ensembles(X, y, self.ensemble_size, random_state=rng)
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            classes = np.unique(y_ens)
        elif not np.isin(np.unique(y_ens), classes).all():
            # Labels the model was not trained with would all count as background (NaN
            # AUC) or swap signal and background (e.g. {1, 2} against classes {0, 1}).
            raise ValueError(
                f"y holds the labels {np.unique(y_ens).tolist()} but the estimator was fitted with "
                f"classes {np.asarray(classes).tolist()}; score with the labels used in fit."
            )
        proba = estimator.predict_ensemble_proba(E, prior=self.prior)[:, 1]
        truth = (y_ens == classes[1]).astype(int)
        function, kind = _METRICS[self.metric] if isinstance(self.metric, str) else (self.metric, "proba")
        if kind == "label":
            return float(function(truth, (proba > 0.5).astype(int)))
        return float(function(truth, proba))

    def __repr__(self):
        return (
            f"ensemble_scorer(metric={self.metric!r}, ensemble_size={self.ensemble_size}, "
            f"random_state={self.random_state!r})"
        )


def ensemble_scorer(metric="roc_auc", ensemble_size: int = 10, random_state=None, prior: float = 0.5):
    """Scorer for event-level cross-validation that scores ensemble predictions.

    The fold's events are grouped into same-label ensembles of ``ensemble_size``
    (see :func:`make_ensembles`) and scored with the estimator's
    ``predict_ensemble_proba``; a :class:`PerInstanceClassifier` and a
    :class:`PerEnsembleClassifier` are thus compared on equal footing, whatever
    ensemble size they were trained with.

    Parameters
    ----------
    metric : {"roc_auc", "average_precision", "neg_log_loss", "neg_brier_score", "accuracy"} or callable
        A callable is called as ``metric(y_true, proba_signal)``; greater is better.
    ensemble_size : int, default=10
        Evaluation ensemble size.
    random_state : int, RandomState or None
        Grouping of events into ensembles.
    prior : float in (0, 1), default=0.5
        Prior signal probability for the ensemble probabilities.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, usable as ``scoring=`` in
        ``GridSearchCV`` and ``cross_val_score``.
    """
    if isinstance(metric, str) and metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)} or a callable, got {metric!r}.")
    if not isinstance(metric, str) and not callable(metric):
        raise ValueError(f"metric must be a string or a callable, got {metric!r}.")
    check_positive_int(ensemble_size, "ensemble_size")
    check_fraction(prior, "prior")
    return EnsembleScorer(metric, ensemble_size, random_state, prior)
