"""Seed bagging of per-event log-ratio models.

Networks trained from different initializations (and shuffles) agree on the bulk of
the data but scatter where events are rare. Summed over an ensemble, that scatter
does not average out: it is the same for every ensemble that visits the region.
Taking the median over a few seeds removes the outlying members' contributions.
"""

from __future__ import annotations

import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._event_wrapper import EventLogRatioMixin, check_log_ratio_estimator, finite_log_ratio
from ._validation import (
    check_binary_labels,
    check_bool,
    check_event_array,
    check_positive_int,
    check_sample_weight,
)
from .per_instance import PerInstanceClassifier, class_log_odds

AGGREGATES = ("median", "mean")


def _fit_member(estimator, X, y, sample_weight, seed: int, bootstrap: bool):
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    if bootstrap:
        rng = np.random.RandomState(seed)
        index = np.concatenate([
            rng.choice(idx, len(idx), replace=True) for idx in (np.flatnonzero(y == c) for c in np.unique(y))
        ])
        X, y = X[index], y[index]
        sample_weight = None if sample_weight is None else sample_weight[index]
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    return estimator.fit(X, y, **kwargs)


class BaggedPerInstanceClassifier(EventLogRatioMixin, ClassifierMixin, BaseEstimator):
    """Per-event log ratio aggregated over models trained with different seeds.

    Parameters
    ----------
    estimator : estimator, default=None
        Per-event log-ratio model to replicate (``PerInstanceClassifier()`` when
        None). Each member is a clone with its own ``random_state``.
    n_estimators : int, default=5
        Number of members, k.
    aggregate : {"median", "mean"}, default="median"
        How per-event log ratios of the members are combined. The median is robust
        to one member that diverged in a sparsely populated region.
    bootstrap : bool, default=False
        Also resample the events of each class with replacement per member (classic
        bagging). By default only the seed differs.
    n_jobs : int or None, default=None
        Members fitted in parallel with joblib (None: one at a time).
    random_state : int, RandomState or None
        Seeds of the members.

    Attributes
    ----------
    estimators_ : list of fitted estimators
    classes_ : ndarray of shape (2,)
    log_prior_odds_ : float
        Log odds of the weighted training classes.
    n_features_in_ : int
    """

    def __init__(self, estimator=None, n_estimators=5, aggregate="median", bootstrap=False, n_jobs=None,
                 random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.aggregate = aggregate
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.non_deterministic = self.random_state is None
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit ``n_estimators`` clones with different seeds.

        Parameters
        ----------
        X : array-like of shape (n_events, n_features)
        y : array-like of shape (n_events,)
        sample_weight : array-like of shape (n_events,), optional

        Returns
        -------
        self
        """
        base = PerInstanceClassifier() if self.estimator is None else self.estimator
        check_log_ratio_estimator(base)
        n = check_positive_int(self.n_estimators, "n_estimators")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {self.aggregate!r}.")
        if self.n_jobs is not None and (
            not isinstance(self.n_jobs, numbers.Integral) or isinstance(self.n_jobs, bool) or self.n_jobs == 0
        ):
            raise ValueError(f"n_jobs must be None or a non-zero integer, got {self.n_jobs!r}.")
        check_bool(self.bootstrap, "bootstrap")
        check_event_array(X)
        X, y = validate_data(self, X, y, dtype=np.float64, reset=True)
        self.classes_, y01 = check_binary_labels(y)
        weight = check_sample_weight(sample_weight, len(y01))
        self.log_prior_odds_ = class_log_odds(y01, weight)
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=n)
        sw = None if sample_weight is None else weight
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(clone(base), X, y, sw, int(seed), bool(self.bootstrap)) for seed in seeds
        )
        return self

    def member_log_ratios(self, X) -> np.ndarray:
        """Per-event log ratio of every member, shape (n_estimators, n_events)."""
        check_is_fitted(self)
        return np.stack([
            finite_log_ratio(member.decision_function(X), "a member's decision_function")
            for member in self.estimators_
        ])

    def _event_log_ratio(self, X) -> np.ndarray:
        values = self.member_log_ratios(X)
        combined = np.median(values, axis=0) if self.aggregate == "median" else values.mean(axis=0)
        # Members at +inf and -inf for one event (overflowing input) average to NaN.
        return finite_log_ratio(combined, "the bagged members")
